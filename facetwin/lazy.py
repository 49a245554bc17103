"""Lazy public names for the subpackages (PEP 562), part of the package base.

``facetwin.agents.LipSyncer`` works without ``import facetwin.agents`` importing torch, SB3 and every other module
of the subpackage: each name is imported from its module on first use.

>>> __getattr__, __dir__, __all__ = lazy_exports(__name__, "LipSyncer:lipsync SelfModel:self_model")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, names: Mapping[str, str] | str
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``'s ``__init__``: ``names`` maps a public name to the
    module of the package that defines it, as a dict or as ``"Name:module Name:module ..."``."""
    if isinstance(names, str):
        names = dict(item.split(":") for item in names.split())

    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)


__all__ = ["lazy_exports"]
