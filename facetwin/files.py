"""Writing files safely, for every layer of facetwin (the package base: it imports nothing of facetwin).

| function | contract |
|---|---|
| :func:`atomic_write` | ``write(tmp)`` fills a temporary file beside the target (same suffix, so ``np.savez``, ``torch.save``, SB3 and ffmpeg keep the name), then renamed over the target (``durable``: flushed to disk first): a reader sees the old file or the whole new one, never a part; an interrupted or failed write leaves the old file and no temporary one. File mode as for any new file (the umask), not ``mkstemp``'s 0600 |
| :func:`atomic_write_bytes` | the same for bytes already in memory |
| :func:`stray_temporaries` | the temporary files a killed writer left behind (``.NAME.*.partSUFFIX``) |
| :func:`load_json` | a user's JSON file, parsed (and built by ``parse``): missing file, folder, not text, not JSON, nested too deep or refused by ``parse`` are each one error naming the path |
| :func:`check_writable` / :func:`check_writable_folder` | before long work: can a file / a folder be written there? ``ValueError`` naming the path otherwise |
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, durable: bool = False) -> Path:
    """Write ``path`` through ``write(tmp_path)`` and an atomic rename (see the module docstring); creates the
    parent folder; returns ``path``. ``durable``: fsync the file and its folder, so that the new file survives a
    power cut too (checkpoints; a rebuildable cache does not need it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(OSError):
            os.unlink(tmp)
    if not durable:
        return path
    with suppress(OSError):  # the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """The temporary files of :func:`atomic_write` that a killed process left in ``folder`` (safe to delete)."""
    return sorted(p for p in Path(folder).glob(".*.part*") if p.is_file() and ".part" in p.name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), durable=durable)


def load_json(path: str | os.PathLike, what: str, parse: Callable[[Any], Any] | None = None, *,
              error: type[Exception] = ValueError) -> Any:
    """The JSON in the file at ``path`` (``what`` it should be, for the messages), passed through ``parse`` (e.g. a
    dataclass's ``from_dict``). ``FileNotFoundError`` when missing; ``error`` (a ``ValueError`` subclass) naming
    the path when it is a folder, not UTF-8 text, not JSON, nested too deep for the parser, or when ``parse`` raises
    ``error``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such {what}")
    if p.is_dir():
        raise error(f"{p}: a folder, not a {what}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise error(f"{p}: not valid JSON ({type(e).__name__}: {e})") from None
    if parse is None:
        return data
    try:
        return parse(data)
    except error as e:
        raise error(f"{p}: {e}") from None


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any long work, that a file can be written at ``path`` (its folder exists or can be made and is
    writable; ``path`` is not a folder); ``ValueError`` naming the path otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the path of the file to write")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {path}: {parent} is not a writable folder")
    return path


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Check, before any long work, that a folder can be written at ``path`` (it is a folder or can be made inside
    a writable one; it is not a file); ``ValueError`` naming the path otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; give a folder")
    anc = path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {path}: {anc} is not a writable folder")
    return path


__all__ = ["atomic_write", "atomic_write_bytes", "check_writable", "check_writable_folder", "load_json",
           "stray_temporaries"]
