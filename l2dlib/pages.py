"""What a book page shows: the tables it reads (:func:`study_table` runs a MoG study live,
:func:`committed_table` reads committed results), which CIFAR-10 profile, the figure
blocks and notes, the claim and robustness tables, and the Markdown/HTML they are pasted
in as. The notebooks call these; the numbers come from :mod:`l2dlib.aggregate` and
:mod:`l2dlib.claims`, the prose from :mod:`l2dlib.report`.

One concern over 350 lines: what the pages show, one function per kind of section.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import claims, remake, report, results
from .profiles import get_profile, profile_for
from .results import find_table
from .runner import run_studies

# CIFAR-10 profiles a page shows by default, in order of precedence: the paper's network and
# schedule, then the fast GPU network, then the CPU profile (frozen features + L2D heads).
CIFAR_SHOWN = ("faithful", "paper", "frozen_features")
# CIFAR-10 regimes judged beside the one shown, where their tables exist: the CPU regime that
# trains part of the network with the L2D loss (its grid is smaller: 4 J, 3 p, 3 seeds).
CIFAR_ALSO_JUDGED = ("cpu_end_to_end",)


def shown_cifar_profile(results_dir, studies, profile: str | None = None) -> str:
    """``profile`` if given; else the first of :data:`CIFAR_SHOWN` whose tables of all
    ``studies`` exist (GPU results take precedence), else the CPU profile."""
    if profile is not None:
        get_profile("cifar10", profile)
        return profile
    for candidate in CIFAR_SHOWN:
        if all(find_table(results_dir, "cifar10", s, candidate)[0] is not None for s in studies):
            return candidate
    return CIFAR_SHOWN[-1]


def data_title(info: dict | None, dataset: str, profile: str) -> str:
    """A panel title's data line: MoG's data label and profile; for CIFAR-10 whether the data
    is canonical and what the model is (the profile's description)."""
    if dataset == "mog":
        return f"{info['data_label']} ({profile})" if info else f"mixture of Gaussians ({profile})"
    label = info["data_label"] if info else "CIFAR-10"
    data = "CIFAR-10, NON-CANONICAL JPEG copy" if "NON-CANONICAL" in label else label.split(";")[0]
    return f"{data}\n{get_profile(dataset, profile).description}"


def missing_results(study: str, dataset: str, profile: str) -> str:
    """Markdown saying that a study has no results for a profile, and the command that makes them."""
    command = f"python -m l2dlib run {study} --dataset {dataset} --profile {profile}"
    if get_profile(dataset, profile).needs_gpu:
        return f"No {dataset} results for profile `{profile}` exist yet: they need a GPU (`{command} --device cuda`)."
    return f"No {dataset} results for profile `{profile}` exist yet (`{command}`)."


def figure_block(
    table: pd.DataFrame | None,
    path: str,
    name: str | None,
    alt: str,
    caption: str,
    missing: str,
    *,
    remake_fig: str | None = None,
) -> str:
    """A page's MyST figure of committed results, with the "Remake this figure" box of
    ``remake_fig`` under it (:mod:`l2dlib.remake`); where ``table`` is None, a note saying
    what is missing and how to make it instead of a figure of empty frames (the label
    ``name`` stays, so links to the figure still land on the note)."""
    target = f"({name})=\n" if name else ""
    if table is None:
        return f"{target}:::{{admonition}} Not drawn: no results yet\n:class: note\n{missing}\n:::\n"
    label = f":name: {name}\n" if name else ""
    box = "" if remake_fig is None else "\n" + remake.box_markdown(remake_fig)
    # A width makes Sphinx link the image to its full-resolution file.
    return f"```{{figure}} {path}\n{label}:width: 100%\n:alt: {alt}\n\n{caption}\n```\n{box}"


def drawn_figure(
    fig,
    figures_dir,
    png: str,
    table: pd.DataFrame | None,
    name: str | None,
    alt: str,
    caption: str,
    missing: str,
    *,
    remake_fig: str | None = None,
) -> str:
    """Save ``fig`` (None: nothing was drawn) as ``png`` under ``figures_dir``, close it, and
    return its :func:`figure_block`, which the page reads from ``../figures/png``."""
    if fig is not None:
        import matplotlib.pyplot as plt

        from . import plots

        plots.save(fig, f"{figures_dir}/{png}")
        plt.close(fig)
    return figure_block(table, f"../figures/{png}", name, alt, caption, missing, remake_fig=remake_fig)


def describe_results(
    study: str, table: pd.DataFrame | None, info: dict | None, profile: str, dataset: str = "cifar10"
) -> str:
    """Markdown for a page showing committed results: what data, profile, seeds and device
    made them and each method's ECE trend; or, when ``table`` is None, why there are none."""
    if table is None:
        return missing_results(study, dataset, profile)
    label = info["data_label"]
    data = (
        label
        if isinstance(label, str)
        else f"{len(label)} draws of our MoG generator (data seeds {info['data_seeds']})"
    )
    model = get_profile(info["dataset"], profile).description
    model = f" ({model})" if model and info["dataset"] == "cifar10" else ""
    made = f"Data: {data}; profile `{profile}`{model}, seeds {info['seeds']}, device {info['device']}. "
    text = made + report.trend_sentences(study, info["dataset"], table)
    if info["dataset"] == "mog":
        return text
    return f"**Does the claim hold ({claims.regime_name(info['dataset'], profile, short=True)})?** {text}"


def figure1_tables(results_dir, profiles: dict[str, str | None]) -> tuple[dict, dict[str, str], list[str]]:
    """What Figure 1 draws: per (dataset, study) the table on disk or None; per dataset the
    panel title's data line (:func:`data_title`); and a note for each missing table. A
    CIFAR-10 profile of None is chosen by :func:`shown_cifar_profile`."""
    tables, labels, notes = {}, {}, []
    studies = ("increasing_experts", "expert_dependence")
    for dataset, profile in profiles.items():
        if dataset == "cifar10":
            profile = shown_cifar_profile(results_dir, studies, profile)
        labels[dataset] = data_title(None, dataset, profile)
        for study in studies:
            table, info = find_table(results_dir, dataset, study, profile, from_bins=True)
            tables[dataset, study] = table
            if table is not None:
                labels[dataset] = data_title(info, dataset, profile)
            elif (note := missing_results(study, dataset, profile)) not in notes:
                notes.append(note)
    return tables, labels, notes


MOG_STUDIES = ("increasing_experts", "expert_dependence", "authors_experts")


CIFAR_STUDIES = ("increasing_experts", "expert_dependence", "specialized_experts")


def profile_tables(results_dir, dataset: str, profile: str, *, from_bins: bool = False) -> dict | None:
    """The tables of the studies the claims of ``dataset`` read (study -> table or None) for
    one profile; None where none exist. ``from_bins``: see :func:`l2dlib.results.find_table`."""
    studies = MOG_STUDIES if dataset == "mog" else CIFAR_STUDIES
    tables = {s: find_table(results_dir, dataset, s, profile, from_bins=from_bins)[0] for s in studies}
    return None if all(t is None for t in tables.values()) else tables


def judged(results_dir, dataset: str, profile: str) -> pd.DataFrame | None:
    """:func:`l2dlib.claims.judge_all` on one profile's tables (None where none exist)."""
    tables = profile_tables(results_dir, dataset, profile)
    return None if tables is None else claims.judge_all(dataset, tables)


ESTIMATORS = {  # ECE columns the robustness table judges the claims under
    "ece": "20 bins (the paper's)",
    "ece_10": "10 bins",
    "ece_30": "30 bins",
    "ece_adaptive": "20 equal-mass bins",
    "ece_l2_debiased": "debiased l2, 20 bins",
    "smooth_ece": "smooth ECE",
}


def robustness(results_dir, dataset: str, profile: str) -> pd.DataFrame | None:
    """The ECE claims' verdicts on one profile's tables under each of :data:`ESTIMATORS`
    (rows: claims; columns: estimators); None where no table exists."""
    tables = profile_tables(results_dir, dataset, profile, from_bins=True)
    if tables is None:
        return None
    columns = {}
    for column, name in ESTIMATORS.items():
        judged = claims.judge_all(dataset, tables, ece=column)
        if judged.empty:  # no claim applies (e.g. only methods the paper does not judge)
            return None
        judged = judged[judged["key"].map(lambda k: claims.BY_KEY[k].metric == "ece")]
        columns[name] = judged.set_index("claim")["verdict"]
    out = pd.DataFrame(columns)
    out.insert(len(out.columns), "same under all", (out.nunique(axis=1) == 1).map({True: "yes", False: "**no**"}))
    return out.reset_index()


def table_markdown(table: pd.DataFrame | None, missing: str = "*(No results.)*") -> str:
    """A small DataFrame as a Markdown table (cells as they are)."""
    if table is None or table.empty:
        return missing
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def regimes(results_dir, mog_profiles, cifar_profile: str | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """Judged claims per (dataset, profile) whose tables exist: the MoG profiles, then the
    CIFAR-10 profile shown (:func:`shown_cifar_profile`) and :data:`CIFAR_ALSO_JUDGED`."""
    keys = [("mog", p) for p in dict.fromkeys(mog_profiles)]
    shown = shown_cifar_profile(results_dir, CIFAR_STUDIES, cifar_profile)
    keys += [("cifar10", p) for p in dict.fromkeys((shown, *CIFAR_ALSO_JUDGED))]
    out = {k: judged(results_dir, *k) for k in keys}
    return {k: v for k, v in out.items() if v is not None and len(v)}


def markdown_html(text: str) -> str:
    """The little Markdown of :func:`rule_markdown` (paragraphs, "- " lists, **bold**,
    *italics*) as HTML, for pages that only HTML reaches."""
    import html
    import re

    def inline(t: str) -> str:
        t = html.escape(t, quote=False)
        t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
        return re.sub(r"\*(.+?)\*", r"<em>\1</em>", t)

    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in lines) + "</ul>")
        else:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "".join(out)


def bottom_line_html(sentences: list[str]) -> str:
    """:func:`bottom_line` as an HTML list (it is pasted into the introduction)."""
    if not sentences:
        return "<p><em>No results to judge the paper's claims by.</em></p>"
    return markdown_html("\n".join(f"- {s}" for s in sentences))


def findings_html(table: pd.DataFrame) -> str:
    """:func:`findings` as an HTML table in the theme's style (pasted into the introduction:
    only HTML crosses pages), in the theme's container that scrolls sideways on a phone. The
    paper's words go under each claim, in small type, so every regime's column fits the
    page's width."""
    import html

    if table.empty:
        return "<p><em>No results to judge the paper's claims by.</em></p>"
    shown = table.drop(columns="the paper").map(lambda v: html.escape(str(v), quote=False))
    shown["claim"] = [
        f"{html.escape(c, quote=False)}<br><small>{html.escape(p, quote=False)}</small>"
        for c, p in zip(table["claim"], table["the paper"])
    ]
    text = shown.to_html(index=False, border=0, classes="table", escape=False).replace(
        ' style="text-align: right;"', ""
    )
    return f'<div class="pst-scrollable-table-container">{text}</div>'


def provenance_dropdown(info: dict | None, what: str) -> str:
    """A collapsed MyST dropdown under a figure: which table, profile, seeds, data, commit,
    device and date made it (empty where there is no table)."""
    if info is None:
        return ""
    label = info["data_label"]
    data = label if isinstance(label, str) else f"{len(label)} draws of our MoG generator"
    dirty = info["git_commit"].endswith("+dirty")
    rows = {
        "table": f"`{info['dataset']}/{info['study']}-{info['profile']}.csv`",
        "profile": f"`{info['profile']}`, seeds {', '.join(map(str, info['seeds']))}",
        "data": data,
        "commit": f"`{info['git_commit'][:12]}`" + " (with uncommitted changes)" * dirty,
        "device": info["device"],
        "created": info["created"],
        "configurations": f"{info['num_configs']} ({info['num_computed']} computed by the last run)",
    }
    body = "\n".join(f"- **{k}**: {v}" for k, v in rows.items())
    return f":::{{dropdown}} Provenance of {what}\n{body}\n:::\n"


# ------------------------------------------------------------------ the tables a page reads


def study_table(
    study: str,
    dataset: str = "mog",
    profile: str | None = None,
    *,
    recompute: bool = False,
    reliability: bool = False,
    results_dir: str | Path | None = None,
    **kwargs,
) -> tuple[pd.DataFrame, dict]:
    """What a study page shows: the rows of the configurations asked for (with
    ``reliability``, their reliability-diagram bins) and the table's provenance. MoG runs
    live on the CPU (finished configurations come from the cache or the table; ``recompute``
    retrains them); CIFAR-10 reads the committed table unless ``recompute`` is set (a GPU)."""
    profile = profile_for(dataset, profile).name  # a clear error for a pair that does not exist
    if not isinstance(recompute, bool):  # papermill's -p recompute no is the string "no"
        raise ValueError(f"recompute must be True or False, got {recompute!r}")
    if dataset == "mog" or recompute:
        table = run_studies([study], dataset, profile, results_dir=results_dir, force=recompute, **kwargs)[study]
        _, provenance = results.load_table(results_dir, dataset, study, profile)
    else:
        table, provenance = results.load_table(results_dir, dataset, study, profile)
    if reliability:
        bins, _ = results.load_table(results_dir, dataset, study, profile, reliability=True)
        return bins[bins["config_key"].isin(set(table["config_key"]))].reset_index(drop=True), provenance
    return results.with_bin_metrics(results_dir, dataset, study, profile, table), provenance


def committed_table(
    study: str, dataset: str, profile: str, *, results_dir: str | Path | None = None, recompute: bool = False, **kwargs
) -> tuple[pd.DataFrame | None, dict | None]:
    """A table a page shows where it exists: (table, provenance), or (None, None).
    With ``recompute`` the study is run first (CIFAR-10: on a GPU)."""
    if not isinstance(recompute, bool):  # papermill's -p recompute no is the string "no"
        raise ValueError(f"recompute must be True or False, got {recompute!r}")
    if recompute:
        return study_table(study, dataset, profile, results_dir=results_dir, recompute=True, **kwargs)
    return results.find_table(results_dir, dataset, study, profile, from_bins=True)


# ------------------------------------------------------------------ why the numbers differ


def budget_page(results_dir, profile: str, cifar_profile: str | None, figures_dir) -> dict[str, str]:
    """Everything the training_budget page glues, as Markdown: the figure block (ECE against
    the distance from the optimum, MoG and CIFAR-10 where committed, with where our and the
    authors' schedules sit), and per dataset the answers and the per-level table."""
    import matplotlib.pyplot as plt

    from . import budget, plots

    shown = {"mog": profile, "cifar10": cifar_profile or "frozen_features"}
    tables = {d: committed_table("training_budget", d, p, results_dir=results_dir)[0] for d, p in shown.items()}
    present = {d: t for d, t in tables.items() if t is not None}
    out = {}
    fig = None
    if present:
        fig, axes = plt.subplots(
            1, len(present), figsize=(5.2 * len(present), 4.2), squeeze=False, layout="constrained"
        )
        for ax, (dataset, table) in zip(axes[0], present.items()):
            mog = dataset == "mog"
            refs = {}  # CIFAR-10's schedules differ in model, not only in budget: none drawn
            for name, prof in (("our schedule", profile), ("the authors' schedule", "faithful")) if mog else ():
                ref = committed_table("increasing_experts", dataset, prof, results_dir=results_dir)[0]
                if ref is not None:
                    refs[name] = budget.schedule_point(ref)
            title = "mixture of Gaussians" if mog else "CIFAR-10, CPU features"
            kw = {} if mog else {"xlabel": "test loss (nats; the Bayes risk is unknown)"}
            plots.budget_panel(budget.levels(table), ax, references=refs, paper=mog, title=title, **kw)
        axes[0][0].legend(frameon=False, fontsize="small")
    missing = " ".join(missing_results("training_budget", d, p) for d, p in shown.items() if tables[d] is None)
    out["figure"] = drawn_figure(
        fig,
        figures_dir,
        "training_budget.png",
        next(iter(present.values()), None),
        "fig-budget",
        "Scatter plots of ECE against the distance from the optimum on a log axis, one point per budget and method",
        "ECE of the oracles (mean over J = 1, 2, 4, 8 and seeds) against how far training ended from the optimum, "
        "one point per budget (epochs, learning rate; larger points: more epochs) and method. Open symbols: where "
        "our schedule and the authors' sit (their committed increasing-experts tables). Dotted: the paper's Fig. 1 "
        "(a), mean over J (its distance is unknown). " + missing,
        missing or "No training_budget results.",
        remake_fig="budget",
    )
    for dataset, table in present.items():
        judged = budget.judge(table, dataset)
        for key, sentence in budget.answers(judged).items():
            out[f"{dataset}_{key}"] = sentence
        out[f"{dataset}_levels"] = table_markdown(budget.level_table(table, judged))
        out[f"{dataset}_family"] = str(len(judged))
    for dataset in shown:
        if dataset not in present:
            for key in (*budget.QUESTIONS, "levels", "family"):
                out[f"{dataset}_{key}"] = missing_results("training_budget", dataset, shown[dataset])
    return out


def study_section(
    study: str,
    dataset: str,
    profile: str,
    *,
    letters: str,
    file: str,
    alt: str,
    caption: str,
    label: str | None = None,
    name: str | None = None,
    what: str | None = None,
    results_dir=None,
    figures_dir="../figures",
    recompute: bool = False,
    remake_fig: str | None = None,
) -> dict:
    """One committed study shown on a page: its figure (saved as ``file`` under
    ``figures_dir``; panel title ``label``, else the data's) in a MyST figure block labelled
    ``name`` (with the remake box of ``remake_fig``), or a note of what is missing; a
    sentence on its data and trends; its provenance dropdown (``what``: the figure's name
    there); and the table (None if absent)."""

    from . import plots

    table, info = committed_table(study, dataset, profile, results_dir=results_dir, recompute=recompute)
    fig = None  # no figure of empty frames: the note says what is missing
    if table is not None:
        fig = plots.study_figure(study, table, letters=letters, label=label or data_title(info, dataset, profile))
    missing = missing_results(study, dataset, profile)
    return {
        "figure": drawn_figure(fig, figures_dir, file, table, name, alt, caption, missing, remake_fig=remake_fig),
        "text": describe_results(study, table, info, profile, dataset=dataset) if table is not None else "",
        "provenance": provenance_dropdown(info, what or caption.split(":")[0]),
        "table": table,
    }


# ------------------------------------------------------------------ CIFAR-10 trained end to end

END_TO_END = "cpu_end_to_end"
_END_TO_END_FIGURES = {  # study -> (panel letters, label, what it re-makes, its redraw, its file)
    "increasing_experts": (
        "de",
        "fig-1-cifar-increasing-end-to-end",
        "Figure 1 (d, e)",
        "1de-e2e",
        "increasing_experts_cifar10_end_to_end.png",
    ),
    "expert_dependence": (
        "f",
        "fig-1-cifar-dependence-end-to-end",
        "Figure 1 (f)",
        "1f-e2e",
        "expert_dependence_cifar10_end_to_end.png",
    ),
}


def end_to_end_section(study: str, *, results_dir=None, figures_dir="../figures") -> dict:
    """A CIFAR-10 study under the CPU regime that trains the network's last group with the
    L2D loss (:data:`END_TO_END`): :func:`study_section`'s parts, its verdict paragraph
    among them; ``gap``: the train-test gap of both CPU regimes (:func:`gap_markdown`);
    ``cap``: increasing experts' :func:`cap_table` and ``cap_text`` its
    :func:`cap_sentence` (else empty)."""
    letters, name, what, fig, file = _END_TO_END_FIGURES[study]
    drawn = (
        "ECE and system accuracy against the number of experts"
        if study == "increasing_experts"
        else "the random expert's ECE against the other experts' quality p"
    )
    sec = study_section(
        study,
        "cifar10",
        END_TO_END,
        letters=letters,
        file=file,
        name=name,
        what=f"{what}, trained end to end",
        alt=f"Line charts for CIFAR-10 trained end to end on a CPU: {drawn}, one line per method",
        caption=f"{what}, CIFAR-10, the network's last group and an L2D head trained per configuration (profile "
        f"`{END_TO_END}`): {drawn}; mean over seeds with a band of one standard deviation.",
        results_dir=results_dir,
        figures_dir=figures_dir,
        remake_fig=fig,
    )
    sec["gap"] = gap_markdown(study, results_dir)
    # The paper's CIFAR-10 observation (18-20% of softmax estimates above 1): per J here.
    have_j = study == "increasing_experts" and sec["table"] is not None
    sec["cap"] = table_markdown(cap_table(sec["table"]) if have_j else None, "")
    sec["cap_text"] = cap_sentence(sec["table"]) if have_j else ""
    return sec


def cap_sentence(increasing: pd.DataFrame) -> str:
    """The range over J of the share of softmax estimates above 1, and of the uncapped gap
    to OvA's ECE as a multiple of the capped one, in a sentence."""
    t = increasing
    by = lambda m, col: t[t["method"] == m].groupby("num_experts")[col].mean()
    above = by("softmax", "frac_estimates_above_1")
    ratio = (by("softmax", "ece_uncapped") - by("ova", "ece")) / (by("softmax", "ece") - by("ova", "ece"))
    return (
        f"Between {above.min():.1%} and {above.max():.1%} of the softmax estimates exceed 1 (over J; the paper: "
        f"18-20% on CIFAR-10), and without the cap softmax's ECE gap to OvA is {ratio.min():.1f} to "
        f"{ratio.max():.1f} times the capped gap."
    )


def gap_markdown(study: str, results_dir=None) -> str:
    """The train-test gap per method (:func:`l2dlib.aggregate.train_test_gap`) of ``study``
    under both CPU regimes, as a Markdown table ("-" where a table predates the training
    accuracy); a note where neither table exists."""
    from .aggregate import LABELS, train_test_gap

    def cell(value, fmt: str = ".4f") -> str:  # "-" where a table predates the column
        return "-" if pd.isna(value) else format(value, fmt)

    rows = []
    for profile in ("frozen_features", END_TO_END):
        table = committed_table(study, "cifar10", profile, results_dir=results_dir)[0]
        if table is None:
            continue
        for method, r in train_test_gap(table).iterrows():
            rows.append(
                [claims.regime_name("cifar10", profile, short=True), LABELS[method], int(r["configurations"])]
                + [cell(r["train_accuracy"]), cell(r["test_accuracy"]), cell(r["accuracy_gap"], "+.4f")]
                + [cell(r["train_loss"]), cell(r["test_loss"]), cell(r["loss_gap"], "+.4f")]
            )
    columns = ["regime", "method", "models", "train accuracy", "test accuracy", "gap", "train loss", "test loss", "gap"]
    return table_markdown(pd.DataFrame(rows, columns=columns), missing_results(study, "cifar10", END_TO_END))


def cpu_costs(results_dir=None) -> pd.DataFrame:
    """What each committed CIFAR-10 CPU regime's tables cost, from their provenance: per
    (regime, study) the models it holds and its minutes, the study's share (by models) of
    the wall time of the runs that trained them; a run of several studies counts once."""
    import json

    rows = []
    folder = results.resolve_dir(results_dir) / "cifar10"
    for profile in ("frozen_features", END_TO_END):
        tables = {}
        for path in sorted(folder.glob(f"*-{profile}.json")):
            info = json.loads(path.read_text())
            tables[info["study"]] = info
        runs = {}  # (created, command) -> [wall seconds, models it trained across the tables]
        for info in tables.values():
            for run in info["runs"]:
                entry = runs.setdefault((run["created"], run["command"]), [run["wall_seconds"], 0])
                entry[1] += run["num_computed"]
        trained = [r for r in runs.values() if r[1]]
        if not trained:
            continue
        per_model = sum(w for w, _ in trained) / sum(n for _, n in trained)
        for study, info in tables.items():
            rows.append(
                {
                    "regime": claims.regime_name("cifar10", profile, short=True),
                    "study": study,
                    "models": info["num_configs"],
                    "wall s per model": round(per_model, 1),
                    "minutes": round(info["num_configs"] * per_model / 60, 1),
                    "device": info["device"],
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ CIFAR-10 calibration detail


def cifar_calibration(results_dir, cifar_profile: str | None, figures_dir) -> dict[str, str]:
    """What the 'beyond the paper' page shows for CIFAR-10, as Markdown: reliability
    diagrams (the largest J of increasing experts; the random expert at the largest p), the
    degeneracy figure (softmax estimates above 1, uncapped ECE, Brier) and the capped and
    uncapped softmax ECE per J; or notes of what is missing."""
    import matplotlib.pyplot as plt

    from . import plots

    shown = shown_cifar_profile(results_dir, ("increasing_experts", "expert_dependence"), cifar_profile)
    inc, _ = committed_table("increasing_experts", "cifar10", shown, results_dir=results_dir)
    dep, _ = committed_table("expert_dependence", "cifar10", shown, results_dir=results_dir)
    missing = " ".join(
        missing_results(s, "cifar10", shown)
        for s, t in (("increasing_experts", inc), ("expert_dependence", dep))
        if t is None
    )
    regime = claims.regime_name("cifar10", shown)
    blocks = {"regime": claims.regime_name("cifar10", shown, short=True)}  # pasted as plain text
    have = inc is not None and dep is not None
    reliability = degeneracy = None
    if have:
        bins = {
            s: results.load_table(results_dir, "cifar10", s, shown, reliability=True)[0]
            for s in ("increasing_experts", "expert_dependence")
        }
        j_max, p_max = inc["num_experts"].max(), dep["expert_p"].max()
        reliability, axes = plt.subplots(1, 2, figsize=(7, 3.8), layout="constrained")
        b = bins["increasing_experts"]
        plots.reliability_diagram(b[b["num_experts"] == j_max], axes[0], title=f"{j_max} oracle experts (pooled)")
        b = bins["expert_dependence"]
        plots.reliability_diagram(
            b[(b["expert_p"] == p_max) & (b["expert"] == 0)], axes[1], title=f"random expert, p = {p_max:g}"
        )
        plots.one_legend(reliability, axes)
        degeneracy = plots.degeneracy_figure(inc, dep)
    blocks["reliability"] = drawn_figure(
        reliability,
        figures_dir,
        "reliability_cifar10.png",
        inc if have else None,
        "fig-reliability-cifar10",
        "Two reliability diagrams for CIFAR-10, one line per method, against the diagonal of perfect calibration",
        f"Reliability diagrams on CIFAR-10 ({regime}), pooled over seeds.",
        missing,
        remake_fig="beyond",
    )
    blocks["degeneracy"] = drawn_figure(
        degeneracy,
        figures_dir,
        "degeneracy_cifar10.png",
        inc if have else None,
        "fig-degeneracy-cifar10",
        "Six line charts in two rows for CIFAR-10: how often the softmax estimate exceeds 1, the uncapped ECE and "
        "the Brier score",
        f"CIFAR-10 ({regime}). Top: increasing experts; bottom: expert dependence (random expert). Left: fraction "
        "of softmax estimates above 1. Middle: ECE without the cap. Right: Brier score of the capped estimates.",
        missing,
        remake_fig="beyond",
    )
    blocks["cap_table"] = table_markdown(cap_table(inc) if inc is not None else None, missing or "*(No results.)*")
    return blocks


def cap_table(increasing: pd.DataFrame) -> pd.DataFrame:
    """Per J, means over experts and seeds: the share of softmax estimates above 1, the
    softmax ECE capped (the paper's) and uncapped, and the OvA ECE; the gaps to OvA."""
    t = increasing
    by = lambda m, col: t[t["method"] == m].groupby("num_experts")[col].mean()
    out = pd.DataFrame(
        {
            "softmax estimates > 1": by("softmax", "frac_estimates_above_1").map("{:.1%}".format),
            "softmax ECE, capped": by("softmax", "ece"),
            "softmax ECE, uncapped": by("softmax", "ece_uncapped"),
            "OvA ECE": by("ova", "ece"),
        }
    )
    out["gap to OvA, capped"] = out["softmax ECE, capped"] - out["OvA ECE"]
    out["gap to OvA, uncapped"] = out["softmax ECE, uncapped"] - out["OvA ECE"]
    for col in out.columns[1:]:
        out[col] = out[col].map("{:.4f}".format)
    return out.rename_axis("J").reset_index()
