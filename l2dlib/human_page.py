"""What the book's "Real human experts" page shows, as Markdown blocks: the data and its
licences, the three studies with human experts beside their simulated counterparts, the
claims' verdicts (the same registry and rule as everywhere), reliability diagrams of one
human expert, and the shifted crowd. Everything comes from the committed tables."""

from __future__ import annotations

import pandas as pd

from . import claims, report
from .aggregate import LABELS
from .pages import CIFAR_STUDIES, committed_table, drawn_figure, figure_block, missing_results, table_markdown

PROFILE = "frozen_features"  # the CPU regime's profile, the one with committed human-expert tables
ROWS = {  # dataset -> its row title in the figures
    "cifar10": "simulated experts (the paper's)",
    "cifar10h": "CIFAR-10H annotators",
    "cifar10n": "CIFAR-10N workers",
}
STUDY_NAMES = {
    "increasing_experts": "Increasing the number of experts",
    "expert_dependence": "Expert dependence",
    "specialized_experts": "Specialised experts",
}


def load(results_dir, profile: str = PROFILE) -> dict:
    """(dataset, study) -> (table, provenance) of ``profile``, where committed; and under
    "profile" and "results_dir" where they came from."""
    out: dict = {(d, s): committed_table(s, d, profile, results_dir=results_dir) for d in ROWS for s in CIFAR_STUDIES}
    out["cifar10n", "shifted_crowd"] = committed_table("shifted_crowd", "cifar10n", profile, results_dir=results_dir)
    return out | {"profile": profile, "results_dir": results_dir}


def data_markdown(loaded) -> str:
    """The releases, their licences, and how often a random one of an image's people is
    right, over the images each dataset uses (exact, from the counts)."""
    lines = ["| labels | what | licence | source | a random annotator is right |", "| --- | --- | --- | --- | --- |"]
    synthetic = False
    for dataset, name in (("cifar10h", "CIFAR-10H"), ("cifar10n", "CIFAR-10N")):
        human = ((loaded[dataset, "increasing_experts"][1]) or {}).get("human_labels")
        if not human:
            continue
        synthetic |= not human["releases"]
        r = next((r for r in human["releases"] if r["name"] == name), None)
        if r is None:  # synthetic annotators (the smoke profile): no release to cite
            continue
        right = human["crowd_accuracy"]["all"]
        lines.append(f"| {name} | {r['covers']} | {r['licence']} | [{r['source']}]({r['url']}) | {right:.4f} |")
    if len(lines) == 2:
        if synthetic:
            return "*(These tables use synthetic annotators: no release of human labels to cite.)*"
        return "*(No human-expert tables are committed yet.)*"
    workers = ((loaded["cifar10n", "increasing_experts"][1] or {}).get("human_labels") or {}).get("worker_accuracy")
    text = "\n".join(lines)
    if workers:
        acc = ", ".join(f"{a:.4f}" for a in workers["test"])
        text += f"\n\nThe three recorded CIFAR-10N workers (slots 1, 2, 3) are right on {acc} of the test images."
    return text


def study_figure(study: str, loaded, figures_dir) -> str:
    """The study's panels with simulated experts (CIFAR-10, the same features and heads) and
    with each kind of human expert, one row each."""

    from . import plots

    tables = {ROWS[d]: loaded[d, study][0] for d in ROWS}
    present = [t for t in tables.values() if t is not None]
    fig = plots.beside(study, tables) if present else None
    missing = " ".join(missing_results(study, d, loaded["profile"]) for d in ROWS if loaded[d, study][0] is None)
    return drawn_figure(
        fig,
        figures_dir,
        f"human_{study}.png",
        present[0] if present else None,
        f"fig-human-{study.replace('_', '-')}",
        f"{STUDY_NAMES[study]}: one row of line charts each for simulated experts, CIFAR-10H annotators and "
        "CIFAR-10N workers",
        f"{STUDY_NAMES[study]} on CIFAR-10 with the frozen features: simulated experts (top), "
        "CIFAR-10H annotators, CIFAR-10N workers. Mean over seeds with a band of one standard deviation."
        + (f" Missing: {missing}" if missing else ""),
        missing,
        remake_fig="human",
    )


def verdicts_markdown(loaded) -> str:
    """The claims judged on the human experts' tables beside the simulated experts' (the
    same features and heads), one row per claim: estimate [95% interval] and verdict."""
    judged = {}
    for dataset in ROWS:
        tables = {s: loaded[dataset, s][0] for s in CIFAR_STUDIES}
        if any(t is not None for t in tables.values()):
            judged[dataset] = claims.judge_all(dataset, tables).set_index("key")
    if not {"cifar10h", "cifar10n"} & set(judged):
        return "*(No human-expert tables are committed yet.)*"
    shown = [d for d in ROWS if d in judged]
    lines = ["| claim | *m* | " + " | ".join(ROWS[d] for d in shown) + " |", "|" + " --- |" * (2 + len(shown))]
    for c in (c for c in claims.CLAIMS if c.dataset == "cifar10h"):  # the human claims, in registry order
        suffix = c.key.removeprefix("cifar10h_")
        cells = []
        for d in shown:
            key = f"{d}_{suffix}"
            row = judged[d].loc[key] if key in judged[d].index else None
            cells.append(report.verdict_cell(row))
        if any(cell != "-" for d, cell in zip(shown, cells) if d != "cifar10"):  # judged with people
            lines.append(f"| {c.text} | {c.margin:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reliability_figure(loaded, figures_dir) -> str:
    """Reliability diagrams of one human expert under each method: a CIFAR-10H crowd member
    and CIFAR-10N's first worker, each the only expert (J = 1), pooled over seeds."""
    import matplotlib.pyplot as plt

    from . import plots, results

    panels = []
    for dataset, who in (("cifar10h", "one CIFAR-10H annotator"), ("cifar10n", "CIFAR-10N worker 1")):
        if loaded[dataset, "increasing_experts"][0] is not None:
            bins = results.load_table(
                loaded["results_dir"], dataset, "increasing_experts", loaded["profile"], reliability=True
            )[0]
            panels.append((bins[bins["num_experts"] == 1], f"{who} (J = 1)"))
    if not panels:
        return figure_block(
            None,
            "",
            "fig-human-reliability",
            "",
            "",
            missing_results("increasing_experts", "cifar10h", loaded["profile"]),
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.6 * len(panels) + 0.4, 3.8), squeeze=False, layout="constrained"
    )
    for ax, (bins, title) in zip(axes[0], panels):
        plots.reliability_diagram(bins, ax, title=title)
    plots.one_legend(fig, axes[0])
    return drawn_figure(
        fig,
        figures_dir,
        "human_reliability.png",
        panels[0][0],
        "fig-human-reliability",
        "Reliability diagrams for a human expert, one line per method, against the diagonal",
        "Reliability diagrams of one human expert (J = 1): observed frequency with which the person was right "
        "against the estimate, per bin of 0.05, pooled over seeds.",
        "",
        remake_fig="human",
    )


def shift_table(loaded) -> pd.DataFrame | None:
    """Per method and J: the ECE and system accuracy of the same heads judged with the
    CIFAR-10N workers they were trained with (held-out training images) and with CIFAR-10H
    annotators (the test images), and the change."""
    same, shifted = loaded["cifar10n", "increasing_experts"][0], loaded["cifar10n", "shifted_crowd"][0]
    if same is None or shifted is None:
        return None
    key = ["method", "seed", "num_experts"]

    def per_model(t):
        return t.groupby(key)[["ece", "system_accuracy", "expert_accuracy"]].mean()

    both = per_model(same).merge(
        per_model(shifted), left_index=True, right_index=True, suffixes=(" (CIFAR-10N)", " (CIFAR-10H)")
    )
    both["ECE change"] = both["ece (CIFAR-10H)"] - both["ece (CIFAR-10N)"]
    mean = both.groupby(["method", "num_experts"]).mean()
    sd = both.groupby(["method", "num_experts"])["ECE change"].std()
    out = mean.assign(**{"ECE change sd": sd}).reset_index()
    return out.rename(columns={"num_experts": "J"})


def shift_markdown(loaded, figures_dir) -> dict[str, str]:
    """The shifted-crowd table and figure (ECE and system accuracy against J, judged with
    the training crowd, solid, and with the shifted one, dashed)."""
    import matplotlib.pyplot as plt

    from . import plots

    table = shift_table(loaded)
    missing = missing_results("shifted_crowd", "cifar10n", loaded["profile"])
    if table is None:
        return {"table": missing, "figure": figure_block(None, "", "fig-human-shift", "", "", missing), "text": ""}
    shown = table[
        [
            "method",
            "J",
            "expert_accuracy (CIFAR-10N)",
            "expert_accuracy (CIFAR-10H)",
            "ece (CIFAR-10N)",
            "ece (CIFAR-10H)",
            "ECE change",
            "ECE change sd",
            "system_accuracy (CIFAR-10N)",
            "system_accuracy (CIFAR-10H)",
        ]
    ].rename(
        columns=lambda c: c.replace("expert_accuracy", "expert right").replace("system_accuracy", "system accuracy")
    )
    shown["method"] = shown["method"].map(LABELS)
    for c in shown.columns[2:]:
        shown[c] = shown[c].map("{:.4f}".format)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), layout="constrained")
    for method, d in table.groupby("method", sort=False):
        colour, shown_as = plots.COLORS[method], LABELS[method]
        for ax, col in zip(axes, ("ece", "system_accuracy")):
            ax.plot(
                d["J"], d[f"{col} (CIFAR-10N)"], color=colour, marker="o", label=f"{shown_as}, CIFAR-10N (trained with)"
            )
            ax.plot(
                d["J"],
                d[f"{col} (CIFAR-10H)"],
                color=colour,
                marker="s",
                ls="--",
                label=f"{shown_as}, CIFAR-10H (shifted)",
            )
    for ax, name in zip(axes, ("ECE (mean over experts)", "system accuracy")):
        ax.set(xlabel="number of experts (workers) J", ylabel=name, xticks=sorted(table["J"].unique()))
        ax.grid(alpha=0.3)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False, fontsize="small"
    )
    figure = drawn_figure(
        fig,
        figures_dir,
        "human_shift.png",
        table,
        "fig-human-shift",
        "Two line charts: ECE and system accuracy against J, for heads judged with the CIFAR-10N workers "
        "they were trained with (solid) and with CIFAR-10H annotators (dashed)",
        "The shifted crowd: heads trained with J CIFAR-10N workers, judged with workers like them on held-out "
        "training images (solid) and with J CIFAR-10H annotators on the test images (dashed). Means over seeds.",
        missing,
        remake_fig="human",
    )
    return {"table": table_markdown(shown), "figure": figure, "text": shift_sentence(table)}


def shift_sentence(table: pd.DataFrame) -> str:
    """Per method, the ECE with the training crowd and with the shifted one, and the change
    (means over J and seeds)."""
    per = table.groupby("method", sort=False)[["ece (CIFAR-10N)", "ece (CIFAR-10H)", "ECE change"]].mean()
    parts = [
        f"{LABELS[method]}'s ECE goes from {r['ece (CIFAR-10N)']:.4f} with workers like those it was trained with to "
        f"{r['ece (CIFAR-10H)']:.4f} with CIFAR-10H annotators ({r['ECE change']:+.4f})"
        for method, r in per.iterrows()
    ]
    return "Averaged over J and seeds, " + "; ".join(parts) + "."


def human_page(results_dir, figures_dir, profile: str | None = None) -> dict[str, str]:
    """Every block the page glues (name -> Markdown), from ``profile``'s tables (None: the
    CPU regime's, :data:`PROFILE`)."""
    loaded = load(results_dir, profile or PROFILE)
    out = {"data": data_markdown(loaded), "verdicts": verdicts_markdown(loaded)}
    for study in CIFAR_STUDIES:
        out[study] = study_figure(study, loaded, figures_dir)
    out["reliability"] = reliability_figure(loaded, figures_dir)
    shift = shift_markdown(loaded, figures_dir)
    out["shift_table"], out["shift_figure"], out["shift_text"] = shift["table"], shift["figure"], shift["text"]
    out["accuracy"] = accuracy_markdown(loaded)
    return out


def accuracy_markdown(loaded) -> str:
    """System accuracy at J = 1 per method against the expert alone (a random annotator,
    exact from the counts) and the classifier alone."""
    lines = [
        "| experts | method | system accuracy | classifier accuracy | coverage | the expert alone |",
        "| --- |" * 1 + " --- |" * 5,
    ]
    for dataset in ("cifar10h", "cifar10n"):
        table, info = loaded[dataset, "increasing_experts"]
        if table is None:
            continue
        one = table[table["num_experts"] == 1]
        human = (info or {}).get("human_labels") or {}
        alone = (
            (human.get("worker_accuracy", {}).get("test") or [None])[0]
            if dataset == "cifar10n"
            else human.get("crowd_accuracy", {}).get("test")
        )
        for method, d in one.groupby("method", sort=False):
            lines.append(
                f"| {ROWS[dataset]} (J = 1) | {LABELS.get(method, method)} | {d['system_accuracy'].mean():.4f} | "
                f"{d['classifier_accuracy'].mean():.4f} | {d['coverage'].mean():.4f} | "
                f"{'-' if alone is None else f'{alone:.4f}'} |"
            )
    return "\n".join(lines) if len(lines) > 2 else "*(No human-expert tables are committed yet.)*"
