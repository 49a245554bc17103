"""Audio files in and out: any common audio file (wav, flac, ogg, mp3, m4a, ...) to mono float32 at one rate.

* :func:`load_audio` reads a file, mixes it down to mono (the mean of the channels) and resamples it to ``sr``
  (16 kHz by default). WAV, FLAC, OGG, AIFF, ... are read with ``soundfile`` (libsndfile); MP3, M4A/AAC/MP4 and
  anything libsndfile cannot read are decoded by the ffmpeg binary that ships with ``imageio-ffmpeg`` (a
  subprocess writing 32-bit float WAV at the file's own rate and channel count to a pipe; the mixdown and the
  resampling are then the same as for every other format).
* :func:`resample` changes the rate with ``scipy.signal.resample_poly`` (polyphase, Kaiser-windowed FIR) at the
  exact rational ratio ``sr_out / sr_in`` (approximated with denominators up to 1000 for non-integer rates).
* :func:`save_wav` writes 16-bit PCM WAV (clipped to [-1, 1]), creating parent folders.

Every problem with an input file raises :class:`AudioError` (a ``ValueError``) whose message starts with the
file's path and names the problem: ``file not found``, ``is a directory``, ``empty file (0 bytes)``,
``not an audio file``, ``truncated``/``corrupt``, ``no audio stream``, ``no audio samples``, ``non-finite
samples`` and, unless ``allow_silent=True``, ``silent`` (peak amplitude below :data:`SILENCE_PEAK`).
"""

from __future__ import annotations

import re
import struct
import subprocess
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from facetwin.sim.rates import AUDIO_SR, check_audio

DEFAULT_SR = AUDIO_SR
SILENCE_PEAK = 1e-4  # a file whose mono peak amplitude is below this is "silent" (about 3 LSB of 16-bit audio)
MAX_RATIO_DENOMINATOR = 1000  # resampling ratios are rationals p/q with q (and p) kept this small or exact

# decoded straight by ffmpeg (libsndfile reads some MP3 but not M4A/AAC; one decoder keeps MP3 consistent)
FFMPEG_SUFFIXES = frozenset(
    {".mp3", ".m4a", ".mp4", ".aac", ".m4b", ".mov", ".webm", ".mkv", ".mka", ".wma", ".opus", ".amr"}
)

# leading bytes of audio containers -> a short format name; used to tell "corrupt audio" from "not audio at all"
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"RIFF", "wav"),
    (0, b"RIFX", "wav"),
    (0, b"RF64", "wav"),
    (0, b"BW64", "wav"),
    (0, b"riff\x2e\x91\xcf\x11", "w64"),
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (4, b"ftyp", "mp4"),
    (4, b"moov", "mp4"),
    (4, b"mdat", "mp4"),
    (4, b"free", "mp4"),
    (4, b"wide", "mp4"),
    (0, b"FORM", "aiff"),
    (0, b".snd", "au"),
    (0, b"caff", "caf"),
    (0, b"\x1aE\xdf\xa3", "matroska"),
    (0, b"0&\xb2u\x8ef\xcf\x11", "asf"),
    (0, b"#!AMR", "amr"),
    (0, b"MAC ", "ape"),
    (0, b"wvpk", "wavpack"),
    (0, b"ADIF", "aac"),
)


class AudioError(ValueError):
    """A file that cannot be used as audio. ``str(err)`` is ``"<path>: <problem>"``; ``.path`` and ``.problem``."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


# ---------------------------------------------------------------------------------------------------- resample
def _ratio(sr_in: float, sr_out: float) -> Fraction:
    ratio = Fraction(sr_out) / Fraction(sr_in)
    if ratio.denominator > MAX_RATIO_DENOMINATOR or ratio.numerator > MAX_RATIO_DENOMINATOR * 100:
        ratio = ratio.limit_denominator(MAX_RATIO_DENOMINATOR)
    return ratio


def resample(audio: np.ndarray, sr_in: float, sr_out: float) -> np.ndarray:
    """Resample 1-D ``audio`` from ``sr_in`` to ``sr_out`` Hz; float32 out, ``ceil(len * sr_out / sr_in)`` samples.

    Polyphase filtering (``scipy.signal.resample_poly``, computed in float64) at the ratio ``up/down =
    sr_out/sr_in`` reduced to lowest terms, e.g. 44100 -> 16000 is 160/441; non-integer or unusual rates use the
    closest ratio with a denominator up to 1000 (a relative rate error below about 1e-6).
    """
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"resample expects 1-D (mono) audio, got shape {x.shape}")
    for name, rate in (("sr_in", sr_in), ("sr_out", sr_out)):
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"resample: {name} must be a positive sample rate in Hz, got {rate!r}")
    ratio = _ratio(sr_in, sr_out)
    if ratio == 1 or len(x) == 0:
        return x.astype(np.float32, copy=True)
    y = resample_poly(x.astype(np.float64, copy=False), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- sniffing
def _sniff(head: bytes) -> str | None:
    """A container name from the file's first bytes, or None if they match no audio format known here."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mpeg audio"  # an MP3 (or ADTS AAC) frame sync without an ID3 tag
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("utf-8", errors="ignore")
        if len(text) < 0.9 * len(head):
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _not_audio(path: Path, head: bytes, detail: str = "") -> AudioError:
    what = "looks like a text file" if _looks_like_text(head) else f"unrecognised format, starts with {head[:8]!r}"
    return AudioError(f"not an audio file ({what}){': ' + detail if detail else ''}", path)


def _check_wav_size(path: Path, size: int) -> None:
    """Raise if a RIFF/WAVE file's data chunk declares more bytes than the file holds (a cut-off download)."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # RIFX/RF64/odd variants: left to the decoder
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - (pos + 8)
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > present:
                    raise AudioError(
                        f"truncated WAV file: the header declares {chunk_size} bytes of sample data but only "
                        f"{present} are present",
                        path,
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)


def _check_ogg_pages(path: Path, size: int) -> None:
    """Raise if an Ogg file's page chain is cut off: a partial last page, or a stream without its end-of-stream page."""
    open_streams: set[int] = set()
    pos = 0
    with path.open("rb") as f:
        while pos < size:
            f.seek(pos)
            header = f.read(27)
            if len(header) < 27 or header[:4] != b"OggS":
                if len(header) < 27 and header == b"OggS"[: len(header)]:
                    raise AudioError(f"truncated OGG file: cut off inside the page header at byte {pos}", path)
                raise AudioError(f"corrupt OGG file: no page where one should start (byte {pos} of {size})", path)
            flags, serial, n_segments = header[5], struct.unpack("<I", header[14:18])[0], header[26]
            table = f.read(n_segments)
            end = pos + 27 + n_segments + sum(table)
            if len(table) < n_segments or end > size:
                raise AudioError(f"truncated OGG file: the last page is cut off ({size} of {end} bytes present)", path)
            open_streams.add(serial)
            if flags & 0x04:  # end of stream
                open_streams.discard(serial)
            pos = end
    if open_streams:
        raise AudioError("truncated OGG file: the stream ends without its end-of-stream page", path)


# ---------------------------------------------------------------------------------------------------- decoders
class _Unreadable(Exception):
    """soundfile could not read the file; ffmpeg gets a try."""


def _read_soundfile(path: Path, kind: str | None) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(str(path)) as f:
            declared = f.frames
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except (sf.SoundFileError, RuntimeError) as e:
        raise _Unreadable(str(e).replace(f"'{path}'", "the file").strip()) from e
    if kind in ("flac", "ogg") and 0 < len(data) < declared:
        raise AudioError(
            f"truncated {kind.upper()} file: decoded {len(data)} of the {declared} frames its header declares", path
        )
    return data, int(rate)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise RuntimeError("decoding MP3/M4A needs imageio-ffmpeg (pip install imageio-ffmpeg)") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


def _parse_wav_pipe(raw: bytes) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 and the rate from ffmpeg's streamed float WAV (its size fields are unreliable)."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("ffmpeg wrote no WAV header")
    pos, channels, rate = 12, 0, 0
    while pos + 8 <= len(raw):
        chunk_id, chunk_size = struct.unpack("<4sI", raw[pos : pos + 8])
        if chunk_id == b"fmt ":
            _tag, channels, rate = struct.unpack("<HHI", raw[pos + 8 : pos + 16])
        elif chunk_id == b"data":
            if channels < 1 or rate < 1:
                raise ValueError("ffmpeg's WAV header has no format chunk")
            body = raw[pos + 8 :]
            n = len(body) // (4 * channels)
            return np.frombuffer(body[: n * 4 * channels], dtype="<f4").reshape(n, channels), rate
        pos += 8 + chunk_size + (chunk_size & 1)
    raise ValueError("ffmpeg's WAV output has no data chunk")


def _read_ffmpeg(path: Path, kind: str | None, head: bytes, sf_problem: str = "") -> tuple[np.ndarray, int]:
    cmd = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-i", str(path), "-vn", "-sn", "-dn", "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True)
    log = proc.stderr.decode("utf-8", errors="replace")
    errors = [ln.split(tag, 1)[1].strip() for ln in log.splitlines() for tag in ("[error]", "[fatal]") if tag in ln]
    errors = [e for e in errors if e and not e.startswith("Error opening input file")]  # restates the path only
    detail = "; ".join(dict.fromkeys(e for e in errors if e))[:300]
    if sf_problem:
        detail = f"soundfile: {sf_problem}; ffmpeg: {detail}" if detail else f"soundfile: {sf_problem}"

    if proc.returncode != 0 or not proc.stdout:
        if kind is None:
            raise _not_audio(path, head, detail)
        if "matches no streams" in log or "does not contain any stream" in log:
            raise AudioError(f"no audio stream in this {kind} file", path)
        if "Cannot determine format of input" in log and "after EOF" in log:
            raise AudioError(f"no audio samples (the {kind} stream is empty)", path)
        if "no decoder found" in log or "unimplemented format" in sf_problem:
            raise AudioError(f"unsupported {kind} sample encoding: neither libsndfile nor ffmpeg decodes it ({detail})", path)
        raise AudioError(f"truncated or corrupt {kind} file ({detail or 'ffmpeg could not decode it'})", path)
    try:
        data, rate = _parse_wav_pipe(proc.stdout)
    except ValueError as e:
        raise AudioError(f"could not decode ({e}; {detail})", path) from e
    if kind is None and data.shape[0] == 0:
        raise _not_audio(path, head, "ffmpeg decodes no audio from it")
    if errors:
        what = f"{kind} file" if kind else "file"
        raise AudioError(f"truncated or corrupt {what}: decoding failed part way ({detail})", path)
    if data.shape[0] and "Video:" not in log.replace("(attached pic)", ""):  # a video track may outlast the audio
        m = _DURATION.search(log)
        if m:
            declared = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            decoded = data.shape[0] / rate
            if decoded < declared - max(0.1, 0.05 * declared):
                raise AudioError(
                    f"truncated {kind or 'audio'} file: decoded {decoded:.2f} s of the {declared:.2f} s "
                    "its header declares",
                    path,
                )
    return data, rate


# ---------------------------------------------------------------------------------------------------- public API
def load_audio(path: str | Path, sr: int = DEFAULT_SR, *, allow_silent: bool = False) -> np.ndarray:
    """Read an audio file as mono float32 at ``sr`` Hz (channels averaged, then resampled with :func:`resample`).

    Raises :class:`AudioError` naming the file and the problem (missing, empty, not audio, truncated or corrupt,
    no audio samples, non-finite samples, or silent: peak below :data:`SILENCE_PEAK`, unless ``allow_silent``).
    """
    path = Path(path)
    if isinstance(sr, bool) or not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ValueError(f"load_audio: sr must be a positive integer rate in Hz, got {sr!r}")
    if not path.exists():
        raise AudioError("file not found", path)
    if path.is_dir():
        raise AudioError("is a directory, not an audio file", path)
    size = path.stat().st_size
    if size == 0:
        raise AudioError("empty file (0 bytes)", path)
    with path.open("rb") as f:
        head = f.read(512)
    kind = _sniff(head)
    if kind == "wav":
        _check_wav_size(path, size)
    elif kind == "ogg":
        _check_ogg_pages(path, size)

    if path.suffix.lower() in FFMPEG_SUFFIXES or kind in ("mp3", "mpeg audio", "mp4", "matroska", "asf", "amr", "aac"):
        data, rate = _read_ffmpeg(path, kind, head)
    else:
        try:
            data, rate = _read_soundfile(path, kind)
        except _Unreadable as e:
            data, rate = _read_ffmpeg(path, kind, head, sf_problem=str(e))

    if data.shape[0] == 0:
        raise AudioError(f"no audio samples (0 frames{', ' + kind if kind else ''})", path)
    mono = data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0].astype(np.float64)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"corrupt: {int(np.count_nonzero(~np.isfinite(mono)))} non-finite samples (NaN or inf)", path)
    out = resample(mono, rate, sr)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if not allow_silent and peak < SILENCE_PEAK:
        raise AudioError(
            f"silent: peak amplitude {peak:.2g} is below {SILENCE_PEAK:g} over {len(out) / sr:.2f} s: no sound to "
            "follow",
            path,
        )
    return out


def save_wav(path: str | Path, audio: np.ndarray, sr: int) -> Path:
    """Write ``audio`` (1-D mono, or (samples, channels)) as 16-bit PCM WAV at ``sr`` Hz; values clipped to [-1, 1].

    Creates missing parent folders; returns the path.
    """
    path = Path(path)
    if sr is None:
        raise ValueError("save_wav: sr must be a positive integer rate in Hz, got None")
    x = check_audio(audio, sr, what=f"save_wav: audio for {path}", channels=True, allow_empty=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(x, -1.0, 1.0), int(sr), subtype="PCM_16", format="WAV")
    return path
