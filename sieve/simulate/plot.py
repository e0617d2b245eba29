"""The learning curves as a PNG: mean ± std over seeds per strategy, and the full-pool accuracy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, or wanted on a server
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sieve.core.selection import ALL_STRATEGIES  # noqa: E402

SIZE_INCHES = (8, 5)
DPI = 100
DASHES = ("-", "--", "-.", ":")
"""Paired with colours so that no two strategies share both, even printed in grey."""


def line_style(name: str) -> dict:
    """The colour and dash of a strategy's curve, the same in every plot so plots compare at a glance:
    tab10's ten distinct hues (tab20 pairs light and dark of one hue, so neighbours looked alike), each
    strategy one step further in the dashes too; random, the baseline, is always black and dashed."""
    if name == "random":
        return {"color": "black", "linestyle": "--"}
    index = [s for s in ALL_STRATEGIES if s != "random"].index(name)
    return {"color": plt.get_cmap("tab10")(index % 10), "linestyle": DASHES[(index + index // 10) % len(DASHES)]}


def plot_curves(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(figsize=SIZE_INCHES, dpi=DPI)
    for name in results["ranking_by_daulc"]:
        curve = results["strategies"][name]["curve"]
        labels, mean, std = (np.asarray(curve[key]) for key in ("labels", "mean", "std"))
        style = line_style(name)
        axes.plot(labels, mean, label=name, **style)
        axes.fill_between(labels, mean - std, mean + std, color=style["color"], alpha=0.15, linewidth=0)
    axes.axhline(
        results["full_pool_accuracy"],
        color="black",
        linewidth=1,
        linestyle=":",
        label=f"full pool ({results['n_pool']} labels)",
    )
    seeds = len(results["full_pool_accuracy_per_seed"])
    axes.set(
        xlabel="labels",
        ylabel="test accuracy",
        title=f"{results['dataset']}: mean ± std over {seeds} seed{'' if seeds == 1 else 's'}",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
