"""One function per figure panel. Each takes a study table (or data) and an Axes.

Lines are the mean over seeds with a band of +-1 standard deviation across seeds; a
seed's ECE is first averaged over its experts (Fig. 1 a, d and Fig. 2 a) or taken for
the random expert alone (Fig. 1 c, f). Softmax is blue, OvA orange (as in the paper),
the asymmetric softmax green and the decoupled surrogate pink everywhere, each with its own
marker (:data:`COLORS`, :data:`MARKERS`).

One concern over 350 lines: the book's figures, one function per kind of panel.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .aggregate import LABELS, per_seed
from .data import Dataset
from .stats import select_experts
from .studies import AXES

#: Okabe & Ito's colour-blind-safe palette (softmax blue and OvA orange, as in the paper),
#: and a marker per method so that the lines stay apart in grey too.
COLORS = {"softmax": "#0072B2", "ova": "#E69F00", "asymmetric_softmax": "#009E73", "decoupled": "#CC79A7"}
MARKERS = {"softmax": "o", "ova": "s", "asymmetric_softmax": "^", "decoupled": "D"}
CLUSTER_COLORS = ("tab:purple", "tab:green", "tab:red", "tab:olive")


def _lines(data: pd.DataFrame, x: str, y: str, ax: plt.Axes, xlabel: str, ylabel: str) -> plt.Axes:
    methods = [m for m in COLORS if m in set(data["method"])]
    sns.lineplot(
        data=data,
        x=x,
        y=y,
        hue="method",
        hue_order=methods,
        palette=COLORS,
        style="method",
        style_order=methods,
        markers=MARKERS,
        dashes=False,
        errorbar="sd",
        ax=ax,
    )
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [LABELS.get(label, label) for label in labels], frameon=False)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return ax


def noise_floor_band(table: pd.DataFrame, x: str, ax: plt.Axes, *, expert_kind: str | None = None) -> plt.Axes:
    """The ECE a perfectly calibrated estimate reaches on a test set of this size (grey:
    from 0 to the floor's mean + 2 standard deviations; dashed: its mean), where the table
    knows it (MoG). An ECE inside the band cannot be told from perfect calibration; the band
    is a bias of the ECE, not the resolution of a difference between methods."""
    d = select_experts(table, expert_kind)
    own_floor(d, x, ax)
    if "ece_noise_floor" not in table or table["ece_noise_floor"].isna().all():
        return ax
    floor = d.groupby(x)[["ece_noise_floor", "ece_noise_floor_sd"]].mean()
    top = floor["ece_noise_floor"] + 2 * floor["ece_noise_floor_sd"]
    ax.fill_between(floor.index, 0, top, color="0.85", zorder=0, label="noise floor")
    ax.plot(floor.index, floor["ece_noise_floor"], color="0.6", lw=1, ls="--", zorder=0)
    return ax


def own_floor(table: pd.DataFrame, x: str, ax: plt.Axes) -> plt.Axes:
    """Each method's own floor (thin dashed, its colour): the ECE its models would show if
    perfectly calibrated, given their own reliability bins (mean over experts and seeds)."""
    if "ece_own_floor" not in table or table["ece_own_floor"].isna().all():
        return ax
    label = "own floor (dashed)"
    for method in [m for m in COLORS if m in set(table["method"])]:
        floor = table[table["method"] == method].groupby(x)["ece_own_floor"].mean()
        ax.plot(floor.index, floor.to_numpy(), color=COLORS[method], ls="--", lw=0.8, alpha=0.8, label=label)
        label = "_nolegend_"
    return ax


def ece_vs_experts(table: pd.DataFrame, ax: plt.Axes) -> plt.Axes:
    """Fig. 1 (a, d), Fig. 2 (a): ECE averaged over experts against the number of experts."""
    _lines(
        per_seed(table, "num_experts", "ece"),
        "num_experts",
        "ece",
        ax,
        AXES["increasing_experts"].label,
        "ECE (mean over experts)",
    )
    noise_floor_band(table, "num_experts", ax)
    if set(table["study"]) == {"increasing_experts"} and set(table["dataset"]) == {"mog"}:
        paper_values(ax)
    ax.set_xticks(sorted(table["num_experts"].unique()))
    return ax


def paper_values(ax: plt.Axes) -> plt.Axes:
    """The paper's Fig. 1 (a) as the authors plot it (MoG, softmax and OvA), dotted, so our
    curves are read against the paper's own numbers."""
    from .claims import PAPER_FIG1A

    for method in ("softmax", "ova"):
        ax.plot(
            PAPER_FIG1A["num_experts"],
            PAPER_FIG1A[method],
            color=COLORS[method],
            ls=":",
            marker="x",
            lw=1.2,
            label=f"{LABELS[method]}, the paper's plotted values",
        )
    ax.legend(frameon=False, fontsize="small")
    return ax


def accuracy_vs_experts(table: pd.DataFrame, ax: plt.Axes) -> plt.Axes:
    """Fig. 1 (b, e), Fig. 2 (b): system accuracy against the number of experts."""
    _lines(
        per_seed(table, "num_experts", "system_accuracy"),
        "num_experts",
        "system_accuracy",
        ax,
        AXES["increasing_experts"].label,
        "system accuracy",
    )
    ax.set_xticks(sorted(table["num_experts"].unique()))
    return ax


def fixed_expert_name(table: pd.DataFrame) -> str:
    """What the dependence study's fixed expert (expert 0) is in ``table``'s rows."""
    return "random expert" if (table["expert_kind"] == "random").any() else "plain crowd member"


def random_expert_ece(table: pd.DataFrame, ax: plt.Axes) -> plt.Axes:
    """Fig. 1 (c, f): the random expert's ECE (with human experts, the plain crowd
    member's) against the other experts' correctness p."""
    fixed = AXES["expert_dependence"].expert_kind
    _lines(
        per_seed(table, "expert_p", "ece", expert_kind=fixed),
        "expert_p",
        "ece",
        ax,
        AXES["expert_dependence"].label,
        f"ECE of the {fixed_expert_name(table)}",
    )
    noise_floor_band(table, "expert_p", ax, expert_kind=fixed)
    return ax


def frac_above_one(table: pd.DataFrame, x: str, ax: plt.Axes, xlabel: str) -> plt.Axes:
    """How often the softmax estimate (Eq. 2) exceeds 1 on the test split, against ``x``."""
    data = per_seed(table[table["method"] == "softmax"], x, "frac_estimates_above_1")
    return _lines(data, x, "frac_estimates_above_1", ax, xlabel, "fraction of estimates > 1")


def metric_lines(
    table: pd.DataFrame, x: str, y: str, ax: plt.Axes, xlabel: str, ylabel: str, *, expert_kind: str | None = None
) -> plt.Axes:
    """Any per-expert column ``y`` (mean over experts, then seeds) against ``x``."""
    return _lines(per_seed(table, x, y, expert_kind=expert_kind), x, y, ax, xlabel, ylabel)


def one_legend(fig: plt.Figure, axes) -> None:
    """Replace the panels' legends by one legend for the figure, below the panels."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(LABELS.get(label, label), handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncol=len(entries), frameon=False)


def degeneracy_figure(increasing: pd.DataFrame, dependence: pd.DataFrame) -> plt.Figure:
    """Where Eq. 2 leaves [0, 1]: per study (rows), how often the softmax estimate exceeds 1,
    the ECE without the cap, and the Brier score (the dependence study: the random expert)."""
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.4), layout="constrained")
    for row, table, x, label, kind in (
        (0, increasing, "num_experts", AXES["increasing_experts"].label, None),
        (1, dependence, "expert_p", AXES["expert_dependence"].label, AXES["expert_dependence"].expert_kind),
    ):
        who = "" if kind is None else f", {fixed_expert_name(table)}"
        frac_above_one(table, x, axes[row, 0], label)
        metric_lines(table, x, "ece_uncapped", axes[row, 1], label, f"ECE{who}, uncapped", expert_kind=kind)
        metric_lines(table, x, "brier", axes[row, 2], label, f"Brier score{who}", expert_kind=kind)
    one_legend(fig, axes.flat)
    return fig


def reliability_diagram(bins: pd.DataFrame, ax: plt.Axes, *, title: str = "") -> plt.Axes:
    """Observed frequency against mean estimate per bin, one line per method, pooled over
    seeds (counts summed, means weighted by count); marker area shows the bin count."""
    pooled = bins.assign(c_sum=bins["confidence"] * bins["count"], a_sum=bins["accuracy"] * bins["count"])
    pooled = pooled.groupby(["method", "bin_lower"], as_index=False)[["count", "c_sum", "a_sum"]].sum()
    pooled = pooled[pooled["count"] > 0]
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    for method in [m for m in COLORS if m in set(pooled["method"])]:
        d = pooled[pooled["method"] == method]
        share = d["count"] / d["count"].sum()
        ax.plot(
            d["c_sum"] / d["count"],
            d["a_sum"] / d["count"],
            color=COLORS[method],
            lw=1,
            marker=MARKERS[method],
            ms=3,
            label=LABELS[method],
        )
        ax.scatter(
            d["c_sum"] / d["count"],
            d["a_sum"] / d["count"],
            s=10 + 400 * share,
            color=COLORS[method],
            marker=MARKERS[method],
            alpha=0.6,
        )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="estimated P(expert right) (capped)",
        ylabel="observed frequency",
        title=title,
        aspect="equal",
    )
    ax.legend(frameon=False, fontsize="small")
    return ax


def mog_dataset(data: Dataset, ax: plt.Axes, max_points: int = 4000, *, params=None) -> plt.Axes:
    """Fig. 3: the mixture of Gaussians, coloured by cluster (a seeded subsample of all three
    splits); with ``params`` (raw coordinates) the Bayes-optimal decision regions shaded."""
    import numpy as np
    import torch

    x = torch.cat([data.x[s] for s in ("train", "val", "test")]).cpu()
    y = torch.cat([data.y[s] for s in ("train", "val", "test")]).cpu()
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:max_points]
    if params is not None:
        from matplotlib.colors import ListedColormap

        from .data.mog import posteriors

        lo, hi = x.min(0).values.numpy() - 0.5, x.max(0).values.numpy() + 0.5
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
        region = posteriors(params, np.stack([gx.ravel(), gy.ravel()], 1)).argmax(1).reshape(gx.shape)
        ax.contourf(
            gx, gy, region, levels=np.arange(-0.5, data.num_classes), cmap=ListedColormap(CLUSTER_COLORS), alpha=0.12
        )
    for k in range(data.num_classes):
        pts = x[keep][y[keep] == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, color=CLUSTER_COLORS[k], label=f"cluster {k}")
    ax.legend(frameon=False, markerscale=3)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    return ax


def save(fig: plt.Figure, path) -> None:
    """Save a figure as PNG (for the book) at a fixed size and resolution."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")


NO_RESULTS = "no results yet\n(run the study)"


def placeholder(ax: plt.Axes, message: str = NO_RESULTS) -> plt.Axes:
    """An empty panel that says why it is empty (never a stand-in curve)."""
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="0.35", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.8")
    return ax


# What each study contributes to the paper's figures: (draw, what the panel shows).
STUDY_PANELS = {
    "increasing_experts": ((ece_vs_experts, "ECE"), (accuracy_vs_experts, "system accuracy")),
    "expert_dependence": ((random_expert_ece, None),),  # None: the panel's y label
    "specialized_experts": ((ece_vs_experts, "ECE"), (accuracy_vs_experts, "system accuracy")),
    "authors_experts": ((ece_vs_experts, "ECE"), (accuracy_vs_experts, "system accuracy")),
}


def study_panels(study: str, table: pd.DataFrame | None, axes, *, letters: str, missing: str = NO_RESULTS) -> None:
    """Draw a study's panels on ``axes`` (titled "(letter) what"), or placeholders saying
    ``missing`` when ``table`` is None."""
    for ax, (draw, what), letter in zip(axes, STUDY_PANELS[study], letters):
        if table is None:
            placeholder(ax, missing)
        else:
            draw(table, ax)
        ax.set_title(f"({letter}) {what or ax.get_ylabel() or 'ECE of the random expert'}", fontsize=10)


def study_figure(study: str, table: pd.DataFrame | None, *, letters: str, label: str) -> plt.Figure:
    """One study's panels side by side (e.g. Figure 1 d-e, Figure 1 f, Figure 2 a-b), the
    data label once above them and one legend below."""
    count = len(STUDY_PANELS[study])
    fig, axes = plt.subplots(1, count, figsize=(3.6 * count + 0.8, 3.5), squeeze=False, layout="constrained")
    study_panels(study, table, axes[0], letters=letters)
    fig.suptitle(label, fontsize=10)
    one_legend(fig, axes.flat)
    return fig


def figure1(tables: dict[tuple[str, str], pd.DataFrame | None], *, labels: dict[str, str]) -> plt.Figure:
    """Figure 1 as the paper's 2x3 grid: rows MoG and CIFAR-10; columns ECE against J,
    system accuracy against J, the random expert's ECE against p. ``tables`` maps
    (dataset, study) to a table or None (placeholder panels); ``labels`` gives each row's
    title (see :func:`l2dlib.pages.figure1_tables`). One legend for the figure."""
    fig = plt.figure(figsize=(10, 7), layout="constrained")
    rows = fig.subfigures(2, 1)
    axes = []
    for sub, dataset, letters in ((rows[0], "mog", "abc"), (rows[1], "cifar10", "def")):
        inc, dep = tables.get((dataset, "increasing_experts")), tables.get((dataset, "expert_dependence"))
        row = sub.subplots(1, 3)
        study_panels("increasing_experts", inc, row[:2], letters=letters[:2])
        study_panels("expert_dependence", dep, row[2:], letters=letters[2])
        sub.suptitle(labels.get(dataset, dataset).replace("\n", ": "), fontsize=10)
        axes += list(row)
    one_legend(fig, axes)
    return fig


def beside(study: str, tables: dict[str, pd.DataFrame | None], *, letters: str = "abcdefghijkl") -> plt.Figure:
    """One study's panels for several datasets, a row each titled by its key; placeholders where None."""
    count = len(STUDY_PANELS[study])
    fig = plt.figure(figsize=(3.6 * count + 0.8, 3.1 * len(tables)), layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(tables), 1))
    axes = []
    for i, (sub, (title, table)) in enumerate(zip(rows, tables.items())):
        row = np.atleast_1d(sub.subplots(1, count))
        study_panels(study, table, row, letters=letters[i * count : (i + 1) * count])
        sub.suptitle(title, fontsize=10)
        axes += list(row)
    one_legend(fig, axes)
    return fig


def budget_panel(
    levels: pd.DataFrame,
    ax: plt.Axes,
    *,
    references: dict | None = None,
    paper: bool = False,
    title: str = "",
    xlabel: str = "distance from the optimum (test loss - Bayes risk, nats)",
) -> plt.Axes:
    """ECE (the oracles', mean over J) against the distance from the optimum, one point per
    budget level and method (:func:`l2dlib.budget.levels`; larger points: more epochs), on a
    log axis; ``references`` (name -> {method: (distance, ece)}) marks where whole schedules
    sit (open symbols); ``paper`` draws the paper's Fig. 1 (a), mean over its J, as dotted
    lines (its distance from the optimum is unknown)."""
    from .budget import DISTANCE_FLOOR
    from .claims import PAPER_FIG1A

    if paper:
        for method in ("softmax", "ova"):
            ax.axhline(float(np.mean(PAPER_FIG1A[method])), color=COLORS[method], ls=":", lw=1.2)
        ax.plot([], [], color="0.3", ls=":", label="the paper's Fig. 1 (a), mean over J")
    # Open stars and plus signs: no method's marker, so a schedule is never read as a method.
    markers = {"our schedule": "*", "the authors' schedule": "P"}
    for method in [m for m in COLORS if m in set(levels["method"])]:
        d = levels[levels["method"] == method].sort_values("distance")
        x = d["distance"].clip(lower=DISTANCE_FLOOR)
        ax.scatter(
            x,
            d["ece"],
            s=14 + 2 * np.log1p(d["max_epochs"]) ** 2,
            color=COLORS[method],
            marker=MARKERS[method],
            alpha=0.75,
        )
        ax.plot([], [], color=COLORS[method], marker=MARKERS[method], ls="", label=LABELS[method])
    for name, points in (references or {}).items():
        for method, (distance, ece) in points.items():
            marker = markers.get(name, "h")
            x = max(distance, DISTANCE_FLOOR)
            ax.scatter(x, ece, s=90, marker=marker, facecolors="none", edgecolors=COLORS[method], lw=1.6)
        ax.plot([], [], color="0.3", marker=markers.get(name, "h"), mfc="none", ls="", label=name)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ECE (oracles, mean over J)")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
