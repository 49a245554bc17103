"""Where trained weights live, and how they are written: ``assets/weights/`` (package data ``facetwin.assets``).

Files of :mod:`facetwin.agents` are written with :func:`facetwin.files.atomic_write`. Every learned model saves a torch checkpoint (a dict of tensors and plain metadata,
loadable with ``torch.load(..., weights_only=True)``). The shipped ones are small (< 1 MB each) and are reproduced
from scratch by ``facetwin train-lipsync``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from facetwin.files import atomic_write

#: file names of the shipped weights in ``assets/weights/``
SELF_MODEL_FILE = "self_model.pt"
AUDIO_TO_LIPS_FILES = {"offline": "audio_to_lips_offline.pt", "stream": "audio_to_lips_stream.pt"}
BABBLE_BANK_FILE = "babble_bank.npz"  # lip shapes and commands of babbled expressions (nearest-neighbour baseline)


def shipped_weights_dir() -> Path:
    """The folder of the weights that ship with the package."""
    return Path(str(resources.files("facetwin.assets").joinpath("weights")))


def shipped_path(name: str) -> Path:
    """Path of a shipped weights file; ``FileNotFoundError`` with the command that makes it when it is missing."""
    p = shipped_weights_dir() / name
    if not p.exists():
        raise FileNotFoundError(f"shipped weights {name!r} are missing from {p.parent}; run `facetwin train-lipsync` to make them")
    return p


def load_checkpoint(path: str | os.PathLike, what: str) -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint file: a missing file is a ``FileNotFoundError``, a folder, a
    truncated or corrupt file or anything but a dict a ``ValueError``, each naming the path and ``what`` it should
    be (no code is unpickled)."""
    import torch

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: a folder, not a {what} checkpoint file")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: no such {what} checkpoint") from None
    except Exception:  # a truncated zip, another file type, a pickle with code in it: all the same to a user
        raise ValueError(f"{p}: not a valid {what} checkpoint (truncated, corrupt or another kind of file)") from None
    if not isinstance(ck, dict):
        raise ValueError(f"{p}: not a valid {what} checkpoint (holds a {type(ck).__name__})")
    return ck


def load_state(module, state, path: str | os.PathLike, what: str) -> None:
    """``module.load_state_dict(state)``; a checkpoint made for another architecture is a ``ValueError`` naming
    the path."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: the {what} checkpoint does not fit this model ({first})") from None


def save_torch_atomic(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` with :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


__all__ = ["AUDIO_TO_LIPS_FILES", "BABBLE_BANK_FILE", "SELF_MODEL_FILE", "save_torch_atomic", "shipped_path",
           "shipped_weights_dir"]
