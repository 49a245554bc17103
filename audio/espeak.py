"""espeak-ng's C API through ctypes: one session of the library (load, initialize, synthesize or analyse, unload).

The library and its voice data come from the ``espeakng-loader`` wheel (``get_library_path()``,
``get_data_path()``); espeak-ng is GPL-3.0 and is loaded at run time, never linked or vendored.

:class:`Espeak` is one session: a private copy of the library (copied once per process to a temporary directory,
so that loading and unloading it never touches an instance other code holds), initialized in synchronous mode with
phoneme events carrying IPA names, used, terminated and unloaded. A fresh load per synthesis is what makes the
output deterministic (see :class:`Espeak`). :func:`analysis_engine` is one persistent session on a second library
copy for text analysis (``espeak_TextToPhonemes``, ``espeak_ListVoices``). espeak-ng is one global C state: use
either only while holding :data:`ESPEAK_LOCK` (re-created in a forked child). :mod:`facetwin.audio.tts` builds the
speech, its phoneme timeline and the language table on top of this.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

__all__ = ["ESPEAK_LOCK", "EV_PHONEME", "EV_WORD", "Espeak", "Event", "analysis_engine"]

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000  # return an error instead of exit(1) when the data is missing
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02  # espeak_TextToPhonemes phonememode
_POS_CHARACTER = 1
_EE_OK = 0
_PARAM_RATE = 1
_PARAM_PITCH = 3

_EV_LIST_TERMINATED = 0
EV_WORD = 1
_EV_END = 5
_EV_MSG_TERMINATED = 6
EV_PHONEME = 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):
    """``espeak_EVENT`` (speak_lib.h): 6 ints, a pointer, an 8-byte union: 40 bytes on 64-bit."""

    _fields_ = [
        ("type", ctypes.c_int),  # espeak_EVENT_TYPE
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input text
        ("length", ctypes.c_int),  # word length in characters (word events)
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # sample index from the start of the synthesis
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),  # word number, or the phoneme name (up to 8 bytes of UTF-8, not always terminated)
    ]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``: ``languages`` is a list of (priority byte, NUL-terminated tag), ended by a zero byte."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))
_TEXT_TO_PHONEMES = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int)

ESPEAK_LOCK = threading.RLock()


def _reset_lock_after_fork() -> None:
    global ESPEAK_LOCK
    ESPEAK_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)

_PRIVATE_DIR: str | None = None
_PRIVATE_LIBS: dict[str, str] = {}


def _library_path(tag: str = "synth") -> str:
    """A private copy of espeakng-loader's libespeak-ng for ``tag`` (made once per process in a temporary
    directory removed at exit), so that loading and unloading it never touches an instance other code holds
    (``dlopen`` shares a library only by file); the original file if no copy can be made."""
    global _PRIVATE_DIR
    if tag not in _PRIVATE_LIBS:
        import atexit
        import shutil
        import tempfile

        import espeakng_loader

        src = str(espeakng_loader.get_library_path())
        try:
            if _PRIVATE_DIR is None:
                _PRIVATE_DIR = tempfile.mkdtemp(prefix="facetwin-espeak-")
                atexit.register(shutil.rmtree, _PRIVATE_DIR, True)
            dst = os.path.join(_PRIVATE_DIR, f"libespeak-ng-{tag}.so")
            shutil.copyfile(src, dst)
            _PRIVATE_LIBS[tag] = dst
        except OSError:  # pragma: no cover - no writable temporary directory
            _PRIVATE_LIBS[tag] = src
    return _PRIVATE_LIBS[tag]


class Espeak:
    """One espeak-ng session: the library loaded, initialized (synchronous output, phoneme events with IPA
    names), used, terminated and unloaded.

    espeak-ng keeps state in function-level statics that neither ``espeak_Terminate`` nor ``espeak_Initialize``
    reset (the pitch-flutter phase in wavegen's ``AdvanceParameters``, the harmonic-table switch), so the same
    text spoken twice in one process gives slightly different samples and lengths. Loading a fresh copy of the
    library for every synthesis (``dlopen``/``dlclose``) makes each call sound like the first one in a
    fresh process: bit-identical output. Use only while holding :data:`ESPEAK_LOCK`::

        with ESPEAK_LOCK, Espeak() as es:
            es.set_voice("en-us"); pcm, events = es.synth("Hello", 175, 50)
    """

    def __init__(self, tag: str = "synth"):
        self.tag = tag
        self.voice: str | None = None

    def __enter__(self) -> "Espeak":
        import espeakng_loader

        try:
            lib = ctypes.CDLL(_library_path(self.tag))
        except OSError:  # e.g. a temporary directory mounted noexec: use the wheel's file itself
            _PRIVATE_LIBS[self.tag] = str(espeakng_loader.get_library_path())
            lib = ctypes.CDLL(_PRIVATE_LIBS[self.tag])
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.lib = lib
        data_path = str(espeakng_loader.get_data_path())
        sr = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
            _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT,
        )
        if sr <= 0:
            self._unload()
            raise RuntimeError(f"espeak-ng failed to initialize with data {data_path} (error {sr})")
        self.sr = int(sr)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []  # (type, text_pos, length, sample, name)
        self._error: BaseException | None = None
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: the C side holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        self.lib.espeak_Terminate()
        self._unload()

    def _unload(self) -> None:
        import _ctypes

        handle = self.lib._handle
        del self.lib
        try:
            _ctypes.dlclose(handle)
        except OSError:  # pragma: no cover
            pass

    def _on_synth(self, wav, n, events) -> int:
        try:
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while True:
                ev = events[i]
                if ev.type == _EV_LIST_TERMINATED:
                    break
                if ev.type == EV_PHONEME:
                    name = ctypes.string_at(ctypes.addressof(ev) + Event.id.offset, 8).split(b"\0", 1)[0]
                    self._events.append((ev.type, ev.text_position, ev.length, ev.sample, name))
                elif ev.type in (EV_WORD, _EV_END, _EV_MSG_TERMINATED):
                    self._events.append((ev.type, ev.text_position, ev.length, ev.sample, b""))
                i += 1
            return 0
        except BaseException as e:  # pragma: no cover - never let an exception unwind through C
            self._error = e
            return 1  # abort synthesis

    def set_voice(self, voice: str) -> None:
        if voice == self.voice:
            return
        self.voice = None
        err = self.lib.espeak_SetVoiceByName(voice.encode())
        if err != _EE_OK:
            raise RuntimeError(f"espeak-ng has no voice {voice!r} (error {err})")
        self.voice = voice

    def synth(self, text: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, list]:
        """int16 samples and the raw events of one synthesis (voice already set)."""
        # the voice variants' breath and aspiration noise come from espeak-ng's own generator and libc rand(),
        # whose states outlive a call: seed both so that the same call gives the same samples whatever ran before
        _libc_srand(1)
        seed = getattr(self.lib, "espeak_ng_SetRandSeed", None)
        if seed is not None:
            seed.argtypes = [ctypes.c_long]
            seed.restype = None
            seed(1)
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        self._chunks, self._events, self._error = [], [], None
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if self._error is not None:  # pragma: no cover
            raise RuntimeError("espeak-ng synthesis callback failed") from self._error
        if err != _EE_OK:
            raise RuntimeError(f"espeak-ng synthesis failed (error {err})")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events = self._events
        self._chunks, self._events = [], []
        return audio, events

    def list_voices(self) -> list[tuple[str, str, list[tuple[int, str]]]]:
        """(name, identifier, [(priority, language tag), ...]) for every voice in the data."""
        out = []
        arr = self.lib.espeak_ListVoices(None)
        i = 0
        while arr and arr[i]:
            v = arr[i].contents
            langs, p = [], v.languages
            while p:
                prio = ctypes.c_ubyte.from_address(p).value
                if prio == 0:
                    break
                tag = ctypes.string_at(p + 1)
                langs.append((prio, tag.decode("utf-8", "replace")))
                p += len(tag) + 2
            out.append(((v.name or b"").decode("utf-8", "replace"), (v.identifier or b"").decode(), langs))
            i += 1
        return out

    def text_to_phonemes(self, text: str) -> list[str]:
        """espeak-ng's IPA transcription of ``text`` (no control characters), one string per clause
        (``espeak_TextToPhonemes``, voice already set)."""
        to_phonemes = _TEXT_TO_PHONEMES(("espeak_TextToPhonemes", self.lib))
        buf = ctypes.c_char_p(text.encode("utf-8"))
        ptr = ctypes.pointer(buf)
        parts = []
        while ptr.contents.value:  # one clause per call; espeak advances the pointer
            out = to_phonemes(ptr, _CHARS_UTF8, _PHONEMES_IPA)
            if not out:
                break
            parts.append(out.decode("utf-8", "replace").strip())
        return parts


def _libc_srand(seed: int) -> None:
    try:
        ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    except (OSError, AttributeError):  # pragma: no cover - no libc symbol table (not glibc/musl)
        pass


_ANALYSER: Espeak | None = None


def analysis_engine() -> Espeak:
    """A persistent espeak-ng instance (its own library copy, separate from the synthesis sessions) for text
    analysis: ``set_voice(name)``, :meth:`Espeak.text_to_phonemes`, :meth:`Espeak.list_voices`. Not for synthesis
    (its output would not be deterministic: use :func:`facetwin.audio.tts.synthesize`). Call and use it while
    holding :data:`ESPEAK_LOCK`; prefer :func:`facetwin.audio.tts.text_to_phonemes`."""
    global _ANALYSER
    if _ANALYSER is None:
        _ANALYSER = Espeak("analysis").__enter__()
    return _ANALYSER
