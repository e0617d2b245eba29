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


def plot_curves(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(figsize=SIZE_INCHES, dpi=DPI)
    for name in results["ranking_by_daulc"]:
        curve = results["strategies"][name]["curve"]
        labels, mean, std = (np.asarray(curve[key]) for key in ("labels", "mean", "std"))
        # One colour per strategy whatever the order, so that plots of different data sets compare at a glance.
        color = plt.get_cmap("tab20")(ALL_STRATEGIES.index(name) % 20)
        axes.plot(labels, mean, label=name, color=color, linestyle="--" if name == "random" else "-")
        axes.fill_between(labels, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
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
