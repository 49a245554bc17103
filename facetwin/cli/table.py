"""The shape of a ``facetwin`` command: a name, a one-line help, an ``add_arguments(parser)`` and a ``run(args)``
that returns the exit code. Each module of :mod:`facetwin.cli` lists its commands in ``COMMANDS``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], object]
    run: Callable[[argparse.Namespace], int]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_key_values(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` options (``--hp``, ``--env-arg``) as a dict, each value parsed as JSON when it is (else a
    string); ``ValueError`` naming the option for an item without ``=``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must look like key=value, got {item!r}")
        out[key.strip()] = _parse_value(value)
    return out


__all__ = ["Command", "parse_key_values"]
