"""The actuator table contract: ``assets/data/actuators.csv`` parsed into typed records.

The CSV is the single source of truth for the 26 motors (names, order, regions, anchors, insertions, strokes,
gains). Everything else (the MJCF builder, environments, calibration, drivers) imports :func:`load_actuators`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

REGIONS = ("lips", "jaw", "brows", "eyelids", "eyes", "neck")
N_ACTUATORS = 26


@dataclass(frozen=True)
class Actuator:
    index: int
    name: str
    region: str
    side: str  # "L", "R" or "C"
    kind: str  # "skin" (spatial tendon to the skin) or "joint" (fixed tendon on a joint)
    anchor_body: str  # skin: "head" or "jaw"
    anchor_offset_mm: tuple[float, float, float] | None  # skin: anchor minus insertion rest position (mm)
    insertion: str  # skin: named skin point; joint: joint name
    stroke: float  # mm (skin) or degrees (joint) at ctrl = +-1
    sign: int  # skin: +1 if ctrl +1 shortens the tendon
    offset_deg: float  # joint: target angle at ctrl = 0
    rest: float  # normalized control of the neutral face
    kp: float
    force_max: float
    bandwidth_hz: float  # servo natural frequency
    description: str

    @property
    def armature(self) -> float:
        """Reflected servo inertia (kg for skin tendons, kg m^2 for joints) giving ``bandwidth_hz`` with ``kp``."""
        return self.kp / (2.0 * math.pi * self.bandwidth_hz) ** 2


def _parse(text: str) -> tuple[Actuator, ...]:
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(rows)))
    out = []
    for i, r in enumerate(reader):
        kind = r["kind"].strip()
        if kind not in ("skin", "joint"):
            raise ValueError(f"actuators.csv row {i} ({r['name']}): unknown kind {kind!r}")
        if r["region"] not in REGIONS:
            raise ValueError(f"actuators.csv row {i} ({r['name']}): unknown region {r['region']!r}")
        anchor = tuple(float(v) for v in r["anchor_offset_mm"].split()) if kind == "skin" else None
        if anchor is not None and len(anchor) != 3:
            raise ValueError(f"actuators.csv row {i} ({r['name']}): anchor_offset_mm needs 3 numbers")
        out.append(
            Actuator(
                index=i,
                name=r["name"].strip(),
                region=r["region"].strip(),
                side=r["side"].strip(),
                kind=kind,
                anchor_body=r["anchor_body"].strip(),
                anchor_offset_mm=anchor,
                insertion=r["insertion"].strip(),
                stroke=float(r["stroke"]),
                sign=int(r["sign"]),
                offset_deg=float(r["offset_deg"]),
                rest=float(r["rest"]),
                kp=float(r["kp"]),
                force_max=float(r["force_max"]),
                bandwidth_hz=float(r["bandwidth_hz"]),
                description=r["description"].strip(),
            )
        )
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise ValueError("actuators.csv: duplicate actuator names")
    if len(out) != N_ACTUATORS:
        raise ValueError(f"actuators.csv: expected {N_ACTUATORS} actuators, found {len(out)}")
    return tuple(out)


@lru_cache(maxsize=1)
def load_actuators() -> tuple[Actuator, ...]:
    """The 26 actuators in control order."""
    text = resources.files("facetwin.assets").joinpath("data/actuators.csv").read_text()
    return _parse(text)


def actuator_names() -> list[str]:
    return [a.name for a in load_actuators()]


def rest_controls() -> np.ndarray:
    """Normalized control vector of the neutral face (all zeros except the jaw, which rests closed at -1)."""
    return np.array([a.rest for a in load_actuators()], dtype=float)


def indices(region: str) -> np.ndarray:
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; known: {', '.join(REGIONS)}")
    return np.array([a.index for a in load_actuators() if a.region == region], dtype=int)
