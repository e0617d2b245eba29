"""Learning curves as images: a metric against the number of labels, one point per model version."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_INCHES, HEIGHT_INCHES, DPI = 8, 5, 100
"""A PNG is 800 x 500 pixels."""


def render(versions: list[dict], metric: str, target: float | None, image_format: str, title: str = "") -> bytes:
    """The curve of `metric` over `versions` (history entries, oldest first) as PNG or SVG bytes, with the
    target as a horizontal line and the first version that recommended stopping marked; the title is
    also the image's metadata title, which stays text where the drawn title becomes glyph paths (SVG)."""
    buffer = io.BytesIO()
    figure(versions, metric, target, title).savefig(
        buffer, format=image_format, dpi=DPI, metadata={"Title": title} if title else None
    )
    return buffer.getvalue()


def figure(versions: list[dict], metric: str, target: float | None, title: str = "") -> Figure:
    """The curve's Figure, titled `title`."""
    # A Figure of its own, never pyplot: pyplot keeps global state, unsafe in a threaded server.
    drawn = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(drawn)
    axes = drawn.add_subplot()
    points = [
        (v["n_labels"], v["metrics"][metric])
        for v in versions
        if v.get("metrics") and v["metrics"].get(metric) is not None
    ]
    estimated = any((v.get("metrics") or {}).get("source") == "cross_validation" for v in versions)
    if points:
        biased = " (cross-validated estimate, biased)" if estimated else ""
        axes.plot(*zip(*points), marker="o", label=metric + biased)
    band = [(v["n_labels"], v["estimate"]["low"], v["estimate"]["high"]) for v in versions if _has_interval(v, metric)]
    if band:
        level = next(v["estimate"]["level"] for v in versions if _has_interval(v, metric))
        axes.fill_between(*zip(*band), alpha=0.2, linewidth=0, label=f"{level:.0%} interval")
    else:
        axes.text(0.5, 0.5, "no evaluated model yet", ha="center", va="center", transform=axes.transAxes)
    if target is not None:
        axes.axhline(target, color="tab:green", linestyle="--", label=f"target {target}")
    stop = next((v for v in versions if (v.get("stop") or {}).get("recommended")), None)
    if stop is not None:
        axes.axvline(
            stop["n_labels"], color="tab:red", linestyle=":", label=f"stop recommended at {stop['n_labels']} labels"
        )
    axes.set_xlabel("labels")
    axes.set_ylabel(metric)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best")
    return drawn


def _has_interval(version: dict, metric: str) -> bool:
    estimate = version.get("estimate")
    return bool(estimate) and estimate.get("metric") == metric
