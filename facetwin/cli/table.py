"""The shape of a ``facetwin`` command: a name, a one-line help, an ``add_arguments(parser)`` and a ``run(args)``
that returns the exit code. Each module of :mod:`facetwin.cli` lists its commands in ``COMMANDS``, filled by the
:func:`command` decorator on each ``run``::

    COMMANDS: list[Command] = []

    @command(COMMANDS, "say", add_say_arguments, "speak a text offline ...")
    def cmd_say(args: argparse.Namespace) -> int: ...
"""

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


Run = Callable[[argparse.Namespace], int]


def command(table: list[Command], name: str, add_arguments: Callable[[argparse.ArgumentParser], object],
            help: str) -> Callable[[Run], Run]:
    """Decorator: add the decorated ``run(args) -> exit code`` to ``table`` as the command ``name``."""

    def register(run: Run) -> Run:
        if any(c.name == name for c in table):
            raise ValueError(f"command {name!r} is defined twice")
        table.append(Command(name, help, add_arguments, run))
        return run

    return register


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    """The ``--quiet`` flag every long-running command has."""
    parser.add_argument("--quiet", action="store_true", help=help)


def add_behaviour(parser: argparse.ArgumentParser, default_on: bool = True) -> None:
    """The behaviour layer's options (:mod:`facetwin.agents.behaviour`): on by default for a performance
    (``--no-behaviour`` for the mouth alone), off by default where the mouth is measured (``--behaviour``)."""
    if default_on:
        parser.add_argument("--no-behaviour", dest="behaviour", action="store_false",
                            help="the mouth only: no blinks, gaze, brows, head motion or emotion")
    else:
        parser.add_argument("--behaviour", action="store_true",
                            help="with the behaviour layer on (blinks, gaze, brows, head, emotion)")
    parser.add_argument("--emotion", default="neutral",
                        help="emotion preset: neutral, happy, sad, angry, surprised, afraid, disgusted")
    parser.add_argument("--emotion-intensity", type=float, default=0.6, help="0..1 (default 0.6)")
    parser.add_argument("--behaviour-seed", type=int, default=0, help="seed of the blinks, gaze and idle motion")


def behaviour_config(args: argparse.Namespace, **extra: Any):
    """The :class:`facetwin.agents.behaviour.BehaviourConfig` of :func:`add_behaviour`'s options, or None when off."""
    if not getattr(args, "behaviour", False):
        return None
    from facetwin.agents.behaviour import BehaviourConfig

    return BehaviourConfig(seed=args.behaviour_seed, emotion=args.emotion, emotion_intensity=args.emotion_intensity,
                           **extra)


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


__all__ = ["Command", "add_behaviour", "add_quiet", "behaviour_config", "command", "parse_key_values"]
