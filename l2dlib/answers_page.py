"""What the book's "The 2026 answers" page shows, as Markdown blocks: the 2026 papers' claims
judged on every regime's J-sweep (the same rule as the paper's claims), the four methods
along J (ECE, classifier accuracy, coverage, system accuracy), and each method's values at
the two ends of every J-sweep with intervals. Everything comes from the committed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import claims, report, stats
from .aggregate import LABELS, per_seed
from .data import HUMAN_DATASETS
from .pages import CIFAR_ALSO_JUDGED, committed_table, drawn_figure, figure_block, missing_results
from .profiles import get_profile

METRICS = {
    "ece": "ECE (mean over experts)",
    "classifier_accuracy": "classifier accuracy",
    "coverage": "coverage",
    "system_accuracy": "system accuracy",
}
STUDY_SUFFIX = {
    "increasing_experts": "",
    "authors_experts": ", the authors' expert",
    "specialized_experts": ", specialists",
}
OTHER_MOG_PROFILES = ("faithful", "draws")  # the other committed MoG regimes, read where they exist


def sweeps(mog_profile: str, cifar_profile: str) -> list[tuple[str, str, str]]:
    """Every J-sweep the page reads, (dataset, profile, study): the increasing-experts study
    on every regime, the authors' expert on MoG, the specialists on CIFAR-10."""
    out = [("mog", mog_profile, "increasing_experts"), ("mog", mog_profile, "authors_experts")]
    out += [("mog", p, "increasing_experts") for p in OTHER_MOG_PROFILES if p != mog_profile]
    out += [(d, cifar_profile, "increasing_experts") for d in ("cifar10", *HUMAN_DATASETS)]
    out += [("cifar10", p, "increasing_experts") for p in CIFAR_ALSO_JUDGED if p != cifar_profile]
    return out + [("cifar10", cifar_profile, "specialized_experts")]


def load(results_dir, mog_profile: str = "paper", cifar_profile: str = "frozen_features") -> dict:
    """(dataset, profile, study) -> (table, provenance) for every sweep, (None, None) where
    not committed, and the two profiles shown under "mog" and "cifar"; a MoG profile that
    does not exist is refused."""
    get_profile("mog", mog_profile)
    out: dict = {
        key: committed_table(key[2], key[0], key[1], results_dir=results_dir)
        for key in sweeps(mog_profile, cifar_profile)
    }
    return out | {"mog": mog_profile, "cifar": cifar_profile}


def _tables(loaded) -> dict:
    return {k: v for k, v in loaded.items() if isinstance(k, tuple) and v[0] is not None}


def _name(dataset: str, profile: str, study: str) -> str:
    return claims.regime_name(dataset, profile, short=True) + STUDY_SUFFIX[study]


def verdicts_markdown(loaded) -> str:
    """The 2026 claims judged on every regime's increasing-experts table: one row per regime,
    one column per claim, estimate [95% interval] and verdict."""
    rows = []
    for (dataset, profile, study), (table, _) in _tables(loaded).items():
        if study == "increasing_experts":
            judged = claims.judge_all(dataset, {study: table}, registry=claims.LATER_CLAIMS)
            if not judged.empty:  # a table without the claims' methods judges nothing
                rows.append((claims.regime_name(dataset, profile, short=True), dataset, judged.set_index("key")))
    if not rows:
        return "*(No increasing-experts tables are committed yet.)*"
    shown = [c for c in claims.LATER_CLAIMS if c.dataset == "mog"]  # one column per claim, in registry order
    head = " | ".join(f"{c.text} ({c.source})" for c in shown)  # every *m*: the prose's 0.005
    lines = [f"| regime | {head} |", "|" + " --- |" * (1 + len(shown))]
    for name, dataset, judged in rows:
        cells = []
        for c in shown:
            key = f"{dataset}_{c.key.removeprefix('mog_')}"
            row = judged.loc[key] if key in judged.index else None
            cells.append(report.verdict_cell(row))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ends(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per method: ``metric`` (mean over experts) at the sweep's smallest and largest J and
    the change between them, each as (mean, half-width of its 95% t interval) over the
    replicates (training seeds); the change is paired within each seed."""
    per = per_seed(table, "num_experts", metric).pivot_table(
        index=["method", "seed"], columns="num_experts", values=metric
    )
    lo, hi = per.columns.min(), per.columns.max()
    rows = []
    for method in [m for m in LABELS if m in per.index.get_level_values("method")]:
        d = per.loc[method]
        row = {"method": method, "lo": lo, "hi": hi}
        for name, values in (("at lo", d[lo]), ("at hi", d[hi]), ("change", d[hi] - d[lo])):
            mean, low, _ = stats.mean_ci(values.dropna())  # nan where the method lacks that J
            row[name] = (mean, mean - low)
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(value: tuple[float, float], sign: bool = False) -> str:
    mean, half = value
    text = f"{mean:+.4f}" if sign else f"{mean:.4f}"
    return text if not np.isfinite(half) else f"{text} ± {half:.4f}"


def ends_markdown(loaded, metric: str) -> str:
    """One table per metric: a row per J-sweep, a column per method; each cell the metric at
    the smallest and at the largest J (means over seeds) and the paired change, mean ± the
    half-width of its 95% interval over seeds."""
    methods = [m for m in LABELS if any(m in set(t["method"]) for t, _ in _tables(loaded).values())]
    lines = ["| J-sweep | " + " | ".join(LABELS[m] for m in methods) + " |", "|" + " --- |" * (1 + len(methods))]
    for (dataset, profile, study), (table, _) in _tables(loaded).items():
        by = {r["method"]: r for r in ends(table, metric).to_dict("records")}
        lo, hi = next(iter(by.values()))["lo"], next(iter(by.values()))["hi"]
        cells = [
            "-"
            if m not in by or not np.isfinite(by[m]["change"][0])
            else f"{by[m]['at lo'][0]:.4f} → {by[m]['at hi'][0]:.4f} ({_pm(by[m]['change'], sign=True)})"
            for m in methods
        ]
        lines.append(f"| {_name(dataset, profile, study)} (J = {lo} → {hi}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else "*(No J-sweep tables are committed yet.)*"


def sweep_figure(loaded, figures_dir) -> str:
    """ECE, classifier accuracy, coverage and system accuracy against J, every method, one row
    per regime with the paper's experts (MoG; CIFAR-10 features)."""
    import matplotlib.pyplot as plt

    from . import plots

    regimes = [("mog", loaded["mog"]), ("cifar10", loaded["cifar"])]  # the two with the paper's experts
    shown = [(d, p, loaded[d, p, "increasing_experts"][0]) for d, p in regimes]
    missing = " ".join(missing_results("increasing_experts", d, p) for d, p, t in shown if t is None)
    shown = [s for s in shown if s[2] is not None]
    if not shown:
        return figure_block(None, "", "fig-answers-sweep", "", "", missing)
    fig, axes = plt.subplots(
        len(shown), len(METRICS), figsize=(11, 2.9 * len(shown) + 0.5), squeeze=False, layout="constrained"
    )
    for row, (dataset, profile, table) in zip(axes, shown):
        for ax, (metric, label) in zip(row, METRICS.items()):
            if metric == "ece":
                plots.ece_vs_experts(table, ax)
            else:
                plots.metric_lines(table, "num_experts", metric, ax, "number of experts J", label)
                ax.set_xticks(sorted(table["num_experts"].unique()))
            ax.set_title(claims.regime_name(dataset, profile, short=True), fontsize=9)
    plots.one_legend(fig, axes.flat)
    return drawn_figure(
        fig,
        figures_dir,
        "answers_sweep.png",
        shown[0][2],
        "fig-answers-sweep",
        "A grid of line charts: ECE, classifier accuracy, coverage and system accuracy against the number of "
        "experts, one line per method, for MoG and CIFAR-10 features",
        "The four methods as experts are added (increasing-experts study): ECE, the classifier's own accuracy, "
        "coverage (the share the classifier keeps) and system accuracy. Mean over seeds with a band of one "
        "standard deviation; on MoG, the grey band is the ECE noise floor and the dotted lines the paper's "
        "Fig. 1 (a)." + (f" Missing: {missing}" if missing else ""),
        missing,
        remake_fig="answers",
    )


def bottom_line(loaded) -> str:
    """The page's findings in one sentence per regime with the paper's experts: each method's
    classifier accuracy and ECE at both ends of the sweep."""
    out = []
    shown = [("mog", loaded["mog"]), ("cifar10", loaded["cifar"])]
    shown += [("cifar10", p) for p in CIFAR_ALSO_JUDGED if p != loaded["cifar"]]
    for dataset, profile in shown:
        table = loaded.get((dataset, profile, "increasing_experts"), (None,))[0]
        if table is None:
            continue
        acc, ece = ends(table, "classifier_accuracy"), ends(table, "ece")
        lo, hi = acc["lo"].iloc[0], acc["hi"].iloc[0]
        parts = [
            f"{LABELS[a['method']]} {a['at lo'][0]:.4f} → {a['at hi'][0]:.4f} "
            f"(ECE {e['at lo'][0]:.4f} → {e['at hi'][0]:.4f})"
            for a, e in zip(acc.to_dict("records"), ece.to_dict("records"))
        ]
        out.append(
            f"**{claims.regime_name(dataset, profile, short=True)}**, classifier accuracy from J = {lo} to "
            f"J = {hi}: " + "; ".join(parts) + "."
        )
    return "\n\n".join(out) if out else "*(No increasing-experts tables are committed yet.)*"


def stopping_sentence(loaded) -> str:
    """Where the L2D loss trains shared layers (:data:`~l2dlib.pages.CIFAR_ALSO_JUDGED`), the
    epoch early stopping restored, per method at the smallest and largest J (empty where no
    such table is committed)."""
    for profile in CIFAR_ALSO_JUDGED:
        table = loaded.get(("cifar10", profile, "increasing_experts"), (None,))[0]
        if table is None:
            continue
        configs = table.groupby("config_key").first()
        lo, hi = configs["num_experts"].min(), configs["num_experts"].max()
        parts = []
        for method in [m for m in LABELS if m in set(configs["method"])]:
            mine = configs[configs["method"] == method]
            at = lambda j: mine.loc[mine["num_experts"] == j, "best_epoch"]  # noqa: B023
            parts.append(
                f"{LABELS[method]} {at(lo).min()}-{at(lo).max()} at J = {lo}, {at(hi).min()}-{at(hi).max()} at J = {hi}"
            )
        return (
            f"In {claims.regime_name('cifar10', profile, short=True)}, early stopping restores the epoch of the best "
            f"validation loss, a sum of the classifier's term and one term per expert: " + "; ".join(parts) + "."
        )
    return ""


def answers_page(results_dir, figures_dir, mog_profile: str = "paper", cifar_profile: str | None = None) -> dict:
    """Every block the page glues (name -> Markdown); ``cifar_profile`` None: the CPU regime's."""
    loaded = load(results_dir, mog_profile, cifar_profile or "frozen_features")
    out = {
        "verdicts": verdicts_markdown(loaded),
        "bottom_line": bottom_line(loaded),
        "stopping": stopping_sentence(loaded),
    }
    mog = loaded["mog", loaded["mog"], "increasing_experts"][0]
    known = mog is not None and "bayes_classifier_accuracy" in mog and mog["bayes_classifier_accuracy"].notna().any()
    out["bayes"] = f"{mog['bayes_classifier_accuracy'].mean():.4f}" if known else "unknown here"
    out["sweep"] = sweep_figure(loaded, figures_dir)
    for metric in METRICS:
        out[f"ends_{metric}"] = ends_markdown(loaded, metric)
    return out
