"""The shape of a ``facetwin`` command: a name, a one-line help, an ``add_arguments(parser)`` and a ``run(args)``
that returns the exit code. Each module of :mod:`facetwin.cli` lists its commands in ``COMMANDS``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], object]
    run: Callable[[argparse.Namespace], int]


__all__ = ["Command"]
