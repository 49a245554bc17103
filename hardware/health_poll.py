"""The safety layer's health polls: which servos each poll asks, how many fit its budget, how fast a fault is found.

While commands flow, :class:`facetwin.hardware.safety.SafeBus` polls every ``1 / health_hz`` s (after the tick's
write) each bus's :meth:`~facetwin.hardware.bus.ServoBus.health` on its next few motors, round robin: as many as fit
``health_budget`` of a control period (the budget shared by the buses) by the bus's ``health_cost_s``, at least one.
:class:`HealthPolls` keeps that schedule; the layer makes the bus calls and handles what they raise.

How fast a fault is found (:attr:`HealthPolls.detect_s`, the layer's ``health_detect_s`` = polls to cover every motor
/ ``health_hz`` + one control period + the bus's reply timeout), for 26 Dynamixel servos at 30 Hz with the defaults:
1 Mbaud and Return Delay Time 0, all 26 per poll (4.3 ms), 0.18 s; the factory 57600 baud and 500 us delay, 1 per
poll (5.7 ms), 2.7 s. The PCA9685 poll is one register read (0.4 ms), so a board that vanishes or resets is found
within 0.13 s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterator, Mapping, Sequence

import numpy as np

from facetwin.hardware.bus import ServoBus
from facetwin.hardware.safety_config import SafetyConfig

log = logging.getLogger("facetwin.hardware.safety")  # the safety layer's log: all of its lines under one name


class HealthPolls:
    """The health-poll schedule of a safety layer's buses.

    ``groups``: the layer's buses as ``(bus name, motor indices, channels)``, in polling order; ``period``: the
    control period (s). :meth:`plan` sizes the polls once the buses are open.
    """

    def __init__(self, buses: Mapping[str, ServoBus], groups: Sequence[tuple[str, np.ndarray, list[int]]],
                 config: SafetyConfig, period: float) -> None:
        self.buses, self.groups, self.config, self.period = buses, groups, config, period
        self.next_t = 0.0  # when the next poll is due (the layer's clock)
        self.cursor = [0] * len(groups)  # per bus: where its next poll starts in its channels
        self.batch = [len(ch) for _, _, ch in groups]  # motors per poll, set by plan

    @property
    def detect_s(self) -> float:
        """Worst-case seconds from a servo or board fault to the poll that finds it while streaming (module
        docstring); ``inf`` without polling."""
        if self.config.health_hz is None:
            return math.inf
        worst = 0.0
        for (name, _, channels), k in zip(self.groups, self.batch):
            polls = math.ceil(len(channels) / k)
            worst = max(worst, polls / self.config.health_hz + float(getattr(self.buses[name], "timeout_s", 0.0)))
        return worst + self.period

    def plan(self) -> None:
        """Motors per health poll on each bus: the most whose ``health_cost_s`` fits ``health_budget`` of a period
        (the budget shared by the buses), at least one."""
        budget = self.config.health_budget * self.period / max(1, len(self.groups))
        for g, (name, _, channels) in enumerate(self.groups):
            cost = getattr(self.buses[name], "health_cost_s", lambda n: 0.0)  # duck-typed buses: no round trip
            k = len(channels)
            while k > 1 and cost(k) > budget:
                k -= 1
            self.batch[g] = k
            if cost(k) > budget:
                log.warning("bus %s: one health read takes %.1f ms, over the %.1f ms budget", name, 1e3 * cost(k),
                            1e3 * budget)
        if self.config.health_hz is not None:
            log.info("health polls at %g Hz: motors per poll %s; a fault is found within %.2f s",
                     self.config.health_hz, dict(zip([g[0] for g in self.groups], self.batch)), self.detect_s)

    def due(self, now: float) -> bool:
        """Whether a poll is due at ``now`` (half a period early at most); never without ``health_hz``."""
        return self.config.health_hz is not None and now >= self.next_t - 0.5 * self.period

    def advance(self, fresh_t: float) -> None:
        """Set the next poll's time: one ``1 / health_hz`` on, and not before the last fresh command ``fresh_t``."""
        self.next_t = max(self.next_t + 1.0 / self.config.health_hz, fresh_t)

    def batches(self, skip: Collection[str]) -> Iterator[tuple[str, list[int]]]:
        """One poll: ``(bus name, channels)`` for each bus not in ``skip``, its cursor moved on as it is yielded."""
        for g, (name, _, channels) in enumerate(self.groups):
            if name in skip:
                continue
            n, k, c = len(channels), self.batch[g], self.cursor[g]
            chosen = [channels[(c + j) % n] for j in range(k)]
            self.cursor[g] = (c + k) % n
            yield name, chosen


__all__ = ["HealthPolls"]
