"""Live audio sources: 16 kHz mono float32 chunks, each with the wall time of its samples, from a microphone, a file,
stdin or an array (:func:`open_source`; ``facetwin live`` reads them).

| spec | source | sample times |
|---|---|---|
| ``"mic"``, ``"mic:NAME"`` | the default (or named) input device: :class:`SoundDeviceSource` (PortAudio through the ``sounddevice`` package) when it imports and the device takes 16 kHz mono, else :class:`FfmpegSource` capturing ``-f pulse -i default`` (or ``NAME``) with the ffmpeg of ``imageio-ffmpeg`` when a PulseAudio server is reachable, else an ``OSError`` saying what was tried | arrival |
| a file path | :class:`FileSource`: the file (any format :func:`facetwin.audio.io.load_audio` reads) paced in real time, ``block_s`` at a time | exact: ``t0 + i / 16000`` |
| ``"-"`` | :class:`PipeSource` on stdin: raw signed 16-bit little-endian 16 kHz mono (``arecord -q -f S16_LE -r 16000 -c 1 - \\| facetwin live -``, ``ffmpeg -re -i talk.mp3 -ac 1 -ar 16000 -f s16le - \\| facetwin live -``), or a 16-bit PCM WAV stream at 16 kHz (channels averaged). A producer that is not real time (``cat``) delivers at once and overruns: give the file instead | arrival |
| (tests, benchmarks) | :class:`SignalSource`: an array, paced in real time, optionally looped | exact |

Every source runs a reader thread that puts :class:`Chunk` s into a bounded queue (``queue_s`` of audio);
:meth:`AudioSource.read` drains it without blocking. ``realtime=True`` (live use): a full queue (the consumer fell
behind) drops its oldest chunk, counted in ``overruns`` / ``dropped_samples`` (the chunk indices keep counting, so
the consumer sees the gap); ``realtime=False``: the reader waits for room instead (a file as fast as it is read). A
read that finds nothing while the source runs counts an ``underrun``. An error of the device (a capture process
that dies, a stream error) ends the source: ``error`` holds it (:class:`AudioDeviceError` naming the source; a bad
stream format stays a ``ValueError``), ``finished`` turns true once the queue is empty. :meth:`AudioSource.close`
always stops the thread and any capture process (also from ``with``).

>>> with open_source("speech.wav") as src:         # or "mic", "-"
...     src.start()
...     while not src.finished:
...         for chunk in src.read():                 # chunk.audio (n,) float32, chunk.start, chunk.t_end
...             ...
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facetwin.sim.rates import AUDIO_SR

SR = AUDIO_SR
BLOCK_S = 0.01
QUEUE_S = 1.0
MIC_HINT = ("give an audio file, or '-' with raw s16le 16 kHz mono on stdin (e.g. arecord -q -f S16_LE -r 16000 -c 1 - "
            "| facetwin live -)")


class AudioDeviceError(RuntimeError):
    """An audio source failed while running (the message names it): not bad input, the device or its process."""


@dataclass(frozen=True)
class Chunk:
    """Samples ``start .. start + len(audio) - 1`` of a source (indices count dropped audio too); ``t_end``: the
    ``time.perf_counter()`` wall time at which the chunk's audio ended (sample ``i`` is at
    ``t_end - (stop - i) / SR``)."""

    audio: np.ndarray
    start: int
    t_end: float

    @property
    def stop(self) -> int:
        return self.start + len(self.audio)

    def time_of(self, i: int) -> float:
        """Wall time of sample ``i`` (an index of this chunk's range)."""
        return self.t_end - (self.stop - i) / SR


def _check_times(block_s: float, queue_s: float) -> None:
    if not (isinstance(block_s, (int, float)) and 0.001 <= block_s <= 0.1):
        raise ValueError(f"block_s must be between 0.001 and 0.1 s, got {block_s!r}")
    if not (isinstance(queue_s, (int, float)) and queue_s >= 2 * block_s and math.isfinite(queue_s)):
        raise ValueError(f"queue_s must be at least two blocks ({2 * block_s:g} s), got {queue_s!r}")


class AudioSource:
    """Base of the sources: the reader thread, the bounded queue and the counters (module doc). Subclasses
    implement :meth:`_run` (produce with :meth:`_emit` until the end or :attr:`stopping`) and may extend
    :meth:`start` / :meth:`close`."""

    def __init__(self, name: str, *, realtime: bool = True, block_s: float = BLOCK_S, queue_s: float = QUEUE_S):
        _check_times(block_s, queue_s)
        self.name, self.realtime, self.block_s = name, bool(realtime), float(block_s)
        self.block = max(1, int(round(block_s * SR)))
        self.max_chunks = max(2, int(math.ceil(queue_s / block_s)))
        self.error: BaseException | None = None
        self.overruns = self.dropped_samples = self.underruns = 0
        self._q: deque[Chunk] = deque()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False
        self._next = 0  # index of the next sample produced

    # ------------------------------------------------------------------------------------------ consumer side
    def start(self) -> AudioSource:
        """Start the reader thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=f"facetwin-audio-{self.name}", daemon=True)
            self._thread.start()
        return self

    def read(self) -> list[Chunk]:
        """Every chunk queued now (oldest first), without blocking; an empty read of a running source is an
        underrun."""
        with self._cv:
            out = list(self._q)
            self._q.clear()
            self._cv.notify_all()
            if not out and not self._done and self._thread is not None:
                self.underruns += 1
        return out

    def wait(self, timeout: float) -> bool:
        """Block until a chunk is queued or the source has ended (True), or ``timeout`` seconds pass (False)."""
        with self._cv:
            return self._cv.wait_for(lambda: bool(self._q) or self._done, timeout)

    @property
    def finished(self) -> bool:
        """The source has ended (end of file, closed, or ``error``) and everything it produced was read."""
        with self._cv:
            return self._done and not self._q

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def native_id(self) -> int | None:
        """The reader thread's OS thread id once started (to raise its scheduling priority), else None."""
        return None if self._thread is None else self._thread.native_id

    def stats(self) -> dict:
        """Counters: samples produced (the next index), overruns, dropped samples, underruns, error."""
        return {"samples": self._next, "overruns": self.overruns, "dropped_samples": self.dropped_samples,
                "underruns": self.underruns, "error": "" if self.error is None else str(self.error)}

    def close(self) -> None:
        """Stop the reader thread (and subclasses' processes or streams); idempotent."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        with self._cv:
            self._done = True

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ producer side
    def _run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        try:
            self._run()
        except BaseException as e:  # the reader thread never dies silently: the consumer gets the error
            if not self._stop.is_set():
                self.error = e if isinstance(e, (ValueError, AudioDeviceError)) else AudioDeviceError(
                    f"audio source {self.name}: {type(e).__name__}: {' '.join(str(e).split())}")
        finally:
            with self._cv:
                self._done = True
                self._cv.notify_all()

    def _emit(self, audio: np.ndarray, t_end: float | None = None) -> bool:
        """Queue the next samples (float32 mono 16 kHz; ``t_end`` default now); False once the source is closing."""
        chunk = Chunk(np.asarray(audio, dtype=np.float32), self._next, time.perf_counter() if t_end is None else t_end)
        self._next = chunk.stop
        with self._cv:
            if not self.realtime:
                self._cv.wait_for(lambda: len(self._q) < self.max_chunks or self._stop.is_set())
            elif len(self._q) >= self.max_chunks:
                old = self._q.popleft()
                self.overruns += 1
                self.dropped_samples += len(old.audio)
            self._q.append(chunk)
            self._cv.notify_all()
        return not self._stop.is_set()


# ---------------------------------------------------------------------------------------------------- arrays, files
class SignalSource(AudioSource):
    """An array (mono, ``sr`` Hz, resampled to 16 kHz) delivered ``block_s`` at a time: in real time with exact
    sample times (``realtime``: sample ``i`` at ``t0 + i / SR``, ``t0`` the thread's start), else as fast as it is
    read. ``repeat``: times through the array (``None``: for ever)."""

    def __init__(self, audio: np.ndarray, sr: int = SR, *, realtime: bool = True, block_s: float = BLOCK_S,
                 queue_s: float = QUEUE_S, repeat: int | None = 1, name: str = "signal"):
        super().__init__(name, realtime=realtime, block_s=block_s, queue_s=queue_s)
        a = np.asarray(audio, dtype=np.float64)
        if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
            raise ValueError(f"{name}: audio must be a non-empty finite 1-D array, got shape {a.shape}")
        if int(sr) != SR:
            from .io import resample

            a = resample(a, int(sr), SR)
        if repeat is not None and (int(repeat) != repeat or repeat < 1):
            raise ValueError(f"repeat must be a whole number >= 1 or None, got {repeat!r}")
        self.audio = a.astype(np.float32)
        self.repeat = repeat
        self.t0: float | None = None

    @property
    def total_samples(self) -> int | None:
        return None if self.repeat is None else len(self.audio) * int(self.repeat)

    def sample_time(self, i) -> np.ndarray | float:
        """Wall time (``time.perf_counter``) of sample(s) ``i`` when paced in real time."""
        if self.t0 is None:
            raise RuntimeError(f"{self.name}: not started")
        return self.t0 + np.asarray(i) / SR

    def _run(self) -> None:
        total, n, i = self.total_samples, len(self.audio), 0
        self.t0 = time.perf_counter()
        while total is None or i < total:
            stop = i + self.block if total is None else min(i + self.block, total)
            block = np.take(self.audio, np.arange(i, stop) % n)
            t_end = None
            if self.realtime:
                t_end = self.t0 + stop / SR
                while (left := t_end - time.perf_counter()) > 0:
                    if self._stop.wait(left):
                        return
            if not self._emit(block, t_end):
                return
            i = stop


class FileSource(SignalSource):
    """An audio file (:func:`facetwin.audio.io.load_audio`: any format, resampled to 16 kHz mono) as a
    :class:`SignalSource`: paced in real time with exact sample times, or as fast as read."""

    def __init__(self, path: str | Path, *, realtime: bool = True, block_s: float = BLOCK_S, queue_s: float = QUEUE_S,
                 repeat: int | None = 1):
        from .io import load_audio

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"audio source {str(path)!r}: no such file (give an audio file, 'mic', "
                                    "'mic:NAME', or '-' for raw 16 kHz s16le on stdin)")
        super().__init__(load_audio(p, SR, allow_silent=True), SR, realtime=realtime, block_s=block_s,
                         queue_s=queue_s, repeat=repeat, name=str(path))


# ---------------------------------------------------------------------------------------------------- pipes
def _wav_header(head: bytes) -> tuple[int, int] | None:
    """``(data offset, channels)`` of a 16-bit PCM WAV stream at 16 kHz starting with ``head``; None when more
    bytes are needed; ValueError for any other WAV."""
    pos = 12
    channels = None
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"data":
            if channels is None:
                raise ValueError("WAV on stdin: the data chunk comes before the format chunk")
            return pos + 8, channels
        if cid == b"fmt ":
            if pos + 8 + 16 > len(head):
                return None
            fmt = head[pos + 8:pos + 24]
            tag, channels, rate = (int.from_bytes(fmt[0:2], "little"), int.from_bytes(fmt[2:4], "little"),
                                   int.from_bytes(fmt[4:8], "little"))
            bits = int.from_bytes(fmt[14:16], "little")
            if tag not in (1, 0xFFFE) or bits != 16 or rate != SR or channels < 1:
                raise ValueError(f"WAV on stdin must be 16-bit PCM at {SR} Hz, got format {tag}, {bits} bits, "
                                 f"{rate} Hz (convert: ffmpeg -i IN -ac 1 -ar {SR} -f s16le -)")
        pos += 8 + size + (size & 1)
    if len(head) > 1 << 16:
        raise ValueError("WAV on stdin: no data chunk in the first 64 KiB")
    return None


class PipeSource(AudioSource):
    """Raw s16le 16 kHz audio (or a 16-bit PCM WAV stream at 16 kHz, recognised by its ``RIFF`` header) read from a
    file descriptor: stdin (``"-"``) or a capture process's output. Samples get their arrival time: the bytes of
    one read end when they arrive."""

    def __init__(self, fd: int | None = None, name: str = "stdin", *, realtime: bool = True, block_s: float = BLOCK_S,
                 queue_s: float = QUEUE_S, channels: int = 1):
        super().__init__(name, realtime=realtime, block_s=block_s, queue_s=queue_s)
        self.fd = sys.stdin.fileno() if fd is None else int(fd)
        self.channels = int(channels)

    def _chunks(self, pending: bytearray, t_arrival: float) -> bool:
        """Emit the whole frames of ``pending`` (kept: the rest), the last ending at ``t_arrival``."""
        width = 2 * self.channels
        n = len(pending) // width
        if n == 0:
            return True
        x = np.frombuffer(bytes(pending[:n * width]), dtype="<i2").astype(np.float32) / 32768.0
        del pending[:n * width]
        x = x.reshape(n, self.channels).mean(axis=1) if self.channels > 1 else x
        for a in range(0, n, self.block):
            if not self._emit(x[a:a + self.block], t_arrival - (n - min(a + self.block, n)) / SR):
                return False
        return True

    def _run(self) -> None:
        pending, head, started = bytearray(), bytearray(), False
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            data = os.read(self.fd, 1 << 16)
            t = time.perf_counter()
            if not data:
                self._ended()
                return
            if not started:  # a WAV header? (only at the very start of the stream)
                head += data
                if len(head) < 12 and b"RIFF".startswith(bytes(head[:4])):
                    continue  # maybe a WAV header: wait for its first 12 bytes
                started = True
                data = bytes(head)
                if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                    found = _wav_header(data)
                    if found is None:
                        started = False
                        continue
                    offset, self.channels = found
                    data = data[offset:]
            pending += data
            if not self._chunks(pending, t):
                return

    def _ended(self) -> None:
        """End of the stream (stdin closed); subclasses check their process."""


class FfmpegSource(PipeSource):
    """A capture by the ffmpeg of ``imageio-ffmpeg``: ``input_args`` (e.g. ``["-f", "pulse", "-i", "default"]``)
    converted to s16le 16 kHz mono on its stdout. The process starts with :meth:`start` and is always ended by
    :meth:`close`; one that exits with an error ends the source with its message."""

    def __init__(self, input_args: list[str], name: str, *, realtime: bool = True, block_s: float = BLOCK_S,
                 queue_s: float = QUEUE_S):
        import imageio_ffmpeg

        super().__init__(-1, name, realtime=realtime, block_s=block_s, queue_s=queue_s)
        self.cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
                    *input_args, "-ac", "1", "-ar", str(SR), "-f", "s16le", "pipe:1"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> FfmpegSource:
        if self.proc is None:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            self.fd = self.proc.stdout.fileno()
        super().start()
        return self

    def _ended(self) -> None:
        code = self.proc.wait(timeout=5.0)
        if code != 0:
            err = " ".join(self.proc.stderr.read().decode(errors="replace").split())[-300:]
            raise AudioDeviceError(f"audio source {self.name}: ffmpeg exited with code {code}: {err}")

    def close(self) -> None:
        super().close()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            f.close()


# ---------------------------------------------------------------------------------------------------- microphones
class SoundDeviceSource(AudioSource):
    """An input device through PortAudio (``sounddevice``): blocking reads of ``block_s`` at 16 kHz mono; the
    device's own overflows count as overruns."""

    def __init__(self, device: str | int | None = None, *, realtime: bool = True, block_s: float = BLOCK_S,
                 queue_s: float = QUEUE_S):
        super().__init__(f"mic:{device}" if device is not None else "mic", realtime=realtime, block_s=block_s,
                         queue_s=queue_s)
        self.device = device

    def _run(self) -> None:
        import sounddevice

        with sounddevice.InputStream(samplerate=SR, channels=1, dtype="float32", blocksize=self.block,
                                     device=self.device) as stream:
            while not self._stop.is_set():
                data, overflowed = stream.read(self.block)
                self.overruns += int(bool(overflowed))
                if not self._emit(data[:, 0].copy()):
                    return


def pulse_unreachable() -> str | None:
    """Why no PulseAudio server can be reached (``PULSE_SERVER``, else the user's or the system's socket), or None."""
    server = os.environ.get("PULSE_SERVER", "")
    if server:
        path = server[5:] if server.startswith("unix:") else None
        return None if path is None or os.path.exists(path) else f"PULSE_SERVER socket {path} does not exist"
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    sockets = [os.path.join(runtime, "pulse", "native"), "/var/run/pulse/native"]
    if any(os.path.exists(s) for s in sockets):
        return None
    return f"no PulseAudio server (PULSE_SERVER unset, no socket at {' or '.join(sockets)})"


def _open_mic(device: str | None, **kw) -> AudioSource:
    tried = []
    try:
        import sounddevice

        dev = int(device) if device is not None and device.isdigit() else device
        sounddevice.check_input_settings(device=dev, samplerate=SR, channels=1, dtype="float32")
        return SoundDeviceSource(dev, **kw)
    except Exception as e:  # ImportError, OSError (no PortAudio), PortAudioError, ValueError (no such device)
        tried.append(f"sounddevice: {' '.join(str(e).split()) or type(e).__name__}")
    reason = pulse_unreachable()
    if reason is None:
        block = int(round(kw.get("block_s", BLOCK_S) * SR))
        return FfmpegSource(["-f", "pulse", "-fragment_size", str(2 * block), "-i", device or "default"],
                            f"mic:{device or 'default'} (PulseAudio)", **kw)
    tried.append(f"ffmpeg PulseAudio capture: {reason}")
    raise OSError(f"no microphone: tried {'; '.join(tried)}; {MIC_HINT}")


def open_source(spec: str, *, realtime: bool = True, block_s: float = BLOCK_S, queue_s: float = QUEUE_S) -> AudioSource:
    """The source named by ``spec`` (module doc: ``"mic"``, ``"mic:NAME"``, a file path, ``"-"``), not started.
    ``realtime``: drop the oldest audio when the consumer falls behind (live) rather than wait (files as fast as
    read)."""
    kw = {"realtime": realtime, "block_s": block_s, "queue_s": queue_s}
    spec = str(spec)
    if spec == "-":
        return PipeSource(None, "stdin", **kw)
    if spec == "mic" or spec.startswith("mic:"):
        return _open_mic(spec[4:] or None, **kw)
    return FileSource(spec, **kw)


__all__ = ["AudioDeviceError", "AudioSource", "Chunk", "FfmpegSource", "FileSource", "PipeSource", "SignalSource",
           "SoundDeviceSource", "open_source", "pulse_unreachable"]
