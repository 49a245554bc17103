"""The results of ``facetwin sweep`` (:mod:`facetwin.agents.sweep`): one row per trial, the markdown table
(``results.md``), the CSV (``results.csv``), the plot of the metric over the steps of every trial (``results.png``)
and the choice of the best trial.

A row (:class:`TrialRow`) holds the trial id, its searched settings, the sweep's metric after its last segment, the
steps it reached, its time in Tune, how many times it started (2 or more: resumed after a kill or a failure), its
status (``done``; ``stopped early`` by the scheduler; ``error: ...``) and its history (the metric after every
segment, from its ``trial.json``). The plot uses matplotlib when it is installed, else draws the same lines with
Pillow.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facetwin.files import atomic_write_bytes

RESULTS_MD, RESULTS_CSV, RESULTS_PNG = "results.md", "results.csv", "results.png"


@dataclass
class TrialRow:
    """One trial of a finished (or stopped) sweep."""

    trial: str
    params: dict[str, Any]
    metric: float | None
    steps: int
    seconds: float
    starts: int
    status: str
    history: list[tuple[int, float]] = field(default_factory=list)  # (steps, metric) after each segment
    checkpoint: Any = None  # the trial's latest Tune checkpoint (not in the table)


def trial_status(error: BaseException | None, steps: int, total_steps: int) -> str:
    """``done``, ``stopped early`` (the scheduler stopped it before ``total_steps``) or ``error: <first line>``."""
    if error is not None:
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        return f"error: {first[:120]}"
    return "done" if steps >= total_steps else "stopped early"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metric_text(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def format_table(rows: list[TrialRow], metric: str) -> str:
    """The markdown table of every trial, in the order of ``rows`` (:func:`sort_rows`: best first)."""
    keys = sorted({k for r in rows for k in r.params})
    head = ["trial", *keys, metric, "steps", "time (s)", "starts", "status"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---|" * len(keys) + "---:|---:|---:|---:|---|"]
    for r in rows:
        cells = [r.trial, *(_fmt(r.params.get(k, "")) for k in keys), _metric_text(r.metric), f"{r.steps:,}",
                 f"{r.seconds:.0f}", str(r.starts), r.status]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sort_rows(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first: finished trials before stopped ones, then by the metric (``mode`` ``min`` or ``max``);
    trials without a metric last."""
    def key(r: TrialRow):
        ok = r.metric is not None and math.isfinite(r.metric)
        value = (r.metric if mode == "min" else -r.metric) if ok else math.inf
        return (not ok, r.status != "done", value, r.trial)

    return sorted(rows, key=key)


def best_row(rows: list[TrialRow], mode: str) -> TrialRow | None:
    """The best trial with a metric and a checkpoint (finished ones first: see :func:`sort_rows`), or None."""
    for r in sort_rows(rows, mode):
        if r.metric is not None and math.isfinite(r.metric) and r.checkpoint is not None:
            return r
    return None


def write_results(rows: list[TrialRow], out_dir: Path, metric: str, header: str = "") -> str:
    """Write ``results.md`` (``header`` + the table) and ``results.csv`` into ``out_dir``; returns the table."""
    table = format_table(rows, metric)
    atomic_write_bytes(out_dir / RESULTS_MD, ((header + "\n\n" if header else "") + table + "\n").encode())
    keys = sorted({k for r in rows for k in r.params})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", *keys, metric, "steps", "seconds", "starts", "status"])
    for r in rows:
        w.writerow([r.trial, *(r.params.get(k, "") for k in keys), "" if r.metric is None else r.metric, r.steps,
                    round(r.seconds, 3), r.starts, r.status])
    atomic_write_bytes(out_dir / RESULTS_CSV, buf.getvalue().encode())
    return table


def plot_history(rows: list[TrialRow], path: Path, metric: str) -> Path:
    """A PNG of ``metric`` over the training steps, one line per trial (matplotlib if installed, else Pillow)."""
    series = [(" ".join([r.trial, *(f"{k.rpartition('/')[2]}={_fmt(v)}" for k, v in r.params.items())]), r.history)
              for r in rows if r.history]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_with_pillow(series, path, metric)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for name, hist in series:
        ax.plot([s for s, _ in hist], [v for _, v in hist], marker="o", label=name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(f"facetwin sweep: {metric} on the held-out episodes")
    if series:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _plot_with_pillow(series: list[tuple[str, list[tuple[int, float]]]], path: Path, metric: str) -> Path:
    from PIL import Image, ImageDraw

    w, h, m = 700, 450, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([m, m // 2, w - m // 2, h - m], outline="black")
    points = [(s, v) for _, hist in series for s, v in hist if math.isfinite(v)]
    if points:
        x0, x1 = 0, max(s for s, _ in points) or 1
        y0, y1 = min(v for _, v in points), max(v for _, v in points)
        y0, y1 = (y0 - 0.5, y1 + 0.5) if y0 == y1 else (y0, y1)

        def xy(s: float, v: float) -> tuple[float, float]:
            return (m + (s - x0) / (x1 - x0) * (w - 1.5 * m), h - m - (v - y0) / (y1 - y0) * (h - 1.5 * m))

        colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
        for i, (name, hist) in enumerate(series):
            pts = [xy(s, v) for s, v in hist if math.isfinite(v)]
            colour = colours[i % len(colours)]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2)
            for x, y in pts:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            draw.text((m + 8, m // 2 + 6 + 12 * i), name, fill=colour)
        draw.text((m, h - m + 6), f"0 ... {x1:,} environment steps", fill="black")
        draw.text((4, 4), f"{metric}: {y0:.3g} (bottom) ... {y1:.3g} (top)", fill="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


__all__ = ["RESULTS_CSV", "RESULTS_MD", "RESULTS_PNG", "TrialRow", "best_row", "format_table", "plot_history",
           "sort_rows", "trial_status", "write_results"]
