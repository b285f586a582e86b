"""Numbers and sentences the book states about each study and claim, computed from the
result tables and the claim registry (:mod:`l2dlib.claims`).

The notebooks glue these into their prose, so no number in the text is typed by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import claims, stats
from .aggregate import BINNINGS, ECE_VARIANTS, LABELS, below_all_others, mean_by, ranking_is_stable
from .claims import regime_name
from .studies import AXES


def describe_change(study: str, dataset: str, table: pd.DataFrame, method: str) -> str:
    """How ``method``'s ECE changes along the study's axis: the fitted change over the grid
    with its 95% interval, and, where the paper makes a claim on it, the paper's effect, *m*
    and the verdict of the claim registry (:mod:`l2dlib.claims`)."""
    axis = AXES[study]
    claim = next(
        (c for c in claims.CLAIMS if (c.dataset, c.study, c.method, c.statistic) == (dataset, study, method, "change")),
        None,
    )
    lo, hi = table[axis.column].min(), table[axis.column].max()
    if claim is not None and claim.applies(table):
        row = claims.judge(claim, table)
        paper = "" if claim.paper_effect is None else f"the paper: {claim.paper_effect:+.4f}; "
        sign = "±" if claim.kind == "flat" else ""
        return (
            f"changes by {interval_text(row)} from {axis.symbol} = {lo:g} to {hi:g} "
            f"({paper}*m* = {sign}{claim.margin:.4f}): **{row['verdict']}**"
        )
    est = stats.fitted_change(table, method, axis.column, expert_kind=axis.expert_kind)
    if est.n == 0:
        return "cannot be judged (one point)"
    mean, low, high = est.interval()
    interval = f"[{low:+.4f}, {high:+.4f}]" if np.isfinite(low) else "(one replicate, no interval)"
    return f"changes by {mean:+.4f} {interval} from {axis.symbol} = {lo:g} to {hi:g} (no claim of the paper)"


def trend_sentences(study: str, dataset: str, table: pd.DataFrame) -> str:
    """One sentence per method: the mean ECE at the smallest and largest point of the
    study's axis and :func:`describe_change`."""
    axis = AXES[study]
    means = mean_by(table, axis.column, "ece", expert_kind=axis.expert_kind)
    lo, hi = means.index.min(), means.index.max()
    return " ".join(
        f"{LABELS.get(m, m)}: {means.loc[lo, m]:.4f} at {axis.symbol} = {lo:g}, {means.loc[hi, m]:.4f} at "
        f"{axis.symbol} = {hi:g}; it {describe_change(study, dataset, table, m)}."
        for m in LABELS
        if m in means.columns
    )


def describe_failures(table: pd.DataFrame, method: str, *, margin: float = 0.01) -> str:
    """A sentence on how many of ``method``'s classifiers fell below every other method's
    model; called a training problem only when its worst is ``margin`` below theirs."""
    if method not in set(table["method"]) or table["method"].nunique() < 2:
        return f"(This comparison needs {method} and at least one other method in `methods`.)"
    f = below_all_others(table, method)
    if f["count"] == 0:
        return (
            f"None of the {f['models']} {method} models has a classifier less accurate than every "
            f"model of the other methods (the worst of those reaches {f['worst_other']:.3f})."
        )
    text = (
        f"In {f['count']} of its {f['models']} models, the {method} classifier is less accurate than "
        f"every model of the other methods (its worst reaches {f['worst']:.3f}, theirs {f['worst_other']:.3f})"
    )
    if f["worst"] < f["worst_other"] - margin:
        return text + ": it trains less reliably here."
    return text + f", by less than {margin:.2f}: no sign of a training problem."


def study_numbers(study: str, table: pd.DataFrame, dataset: str = "mog") -> dict[str, float | int | str]:
    """The numbers a study page glues into its prose: per method the ECE at the first and
    last x, :func:`describe_change` and the mean system accuracy; the x range; the seed count."""
    axis = AXES[study]
    means = mean_by(table, axis.column, "ece", expert_kind=axis.expert_kind)
    out: dict[str, float | int | str] = {}
    for method in means.columns:
        out[f"{method}_first"], out[f"{method}_last"] = float(means[method].iloc[0]), float(means[method].iloc[-1])
        out[f"{method}_verdict"] = describe_change(study, dataset, table, method)
        out[f"{method}_acc"] = float(table.loc[table["method"] == method, "system_accuracy"].mean())
    symbol = axis.symbol.lower()
    out[f"{symbol}_first"] = table[axis.column].min().item()
    out[f"{symbol}_last"] = table[axis.column].max().item()
    out["n_seeds"] = int(table["seed"].nunique())
    if "softmax" in set(table["method"]):
        out["frac_above_1"] = float(table.loc[table["method"] == "softmax", "frac_estimates_above_1"].mean())
    return out


def describe_stability(ranking: pd.DataFrame) -> str:
    """Whether :func:`method_ranking` ranks the methods the same under every binning."""
    if ranking_is_stable(ranking, [ECE_VARIANTS[c] for c in BINNINGS]):
        return "the same under every binning"
    return "not the same under every binning"


def family(results: dict) -> tuple[int, float]:
    """How many intervals all claim tables hold, and each one's level under Bonferroni."""
    return claims.bonferroni(list(results.values()))


def interval_text(row) -> str:
    """A row's estimate and interval, a level claim's as the value itself (not minus the level)."""
    level = row["kind"] == "level"  # a value, not a change: no sign
    shift, f = (row["paper effect"], ".4f") if level else (0.0, "+.4f")
    lo, hi = row["95% interval"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{row['estimate'] + shift:{f}} (one replicate, no interval)"
    return f"{row['estimate'] + shift:{f}} [{lo + shift:{f}}, {hi + shift:{f}}]"


def verdict_cell(row) -> str:
    """A judged claim as a table cell: estimate [interval] and the verdict in bold; "-" for None."""
    return "-" if row is None else f"{interval_text(row)}: **{row['verdict']}**"


def _paper_effect(claim: claims.Claim) -> str:
    if claim.paper_effect is None:
        return "direction only"
    if claim.kind == "level":
        return f"above {claim.paper_effect:.2f}"
    return f"{claim.paper_effect:+.4f} ({claim.paper_source})"


def _margin(claim: claims.Claim) -> str:
    if claim.kind == "level":
        return f"the level {claim.paper_effect:.2f}"
    sign = "±" if claim.kind == "flat" else ""
    return f"{sign}{claim.margin:.4f}: {claim.margin_source}"


def claims_markdown(results: dict, dataset: str, level: float | None = None) -> str:
    """One Markdown table of ``dataset``'s claims: the claim and its statistic, the paper's
    words and effect, *m* and where it comes from, then per regime the estimate, its 95%
    interval and the verdict; where the verdict changes under a Bonferroni correction at
    ``level``, the corrected one in brackets."""
    shown = {k: v.set_index("key") for k, v in results.items() if k[0] == dataset}
    keys = [c.key for c in claims.CLAIMS if any(c.key in v.index for v in shown.values())]
    if not keys:
        return f"*(No {'MoG' if dataset == 'mog' else 'CIFAR-10'} results to judge the claims by.)*"
    names = [regime_name(*k) for k in shown]
    lines = [
        "| claim (statistic) | the paper (section): its effect | *m* | " + " | ".join(names) + " |",
        "|" + " --- |" * (3 + len(names)),
    ]
    for key in keys:
        c = claims.BY_KEY[key]
        cells = []
        for v in shown.values():
            if key not in v.index:
                cells.append("-")
                continue
            row = v.loc[key]
            text = verdict_cell(row)
            if level is not None and (after := claims.corrected_verdict(row, level)) != row["verdict"]:
                text += f" (Bonferroni: {after})"
            cells.append(text)
        lines.append(
            f'| {c.text} ({c.statistic_name}) | "{c.words}" (§{c.section}): {_paper_effect(c)} | '
            f"{_margin(c)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def findings(results: dict) -> pd.DataFrame:
    """The book's first table: one row per claim (the same claim on either dataset shares a
    row), the paper's words, and the verdict under each regime; "-" where a regime does not
    judge it (a CIFAR-10-only claim in a MoG column, or a table that is missing)."""
    columns = {regime_name(*k, short=True): v.set_index("key") for k, v in results.items()}
    rows: dict[str, dict] = {}
    for c in claims.CLAIMS:
        row = rows.setdefault(c.text, {"claim": c.text, "the paper": f'"{c.words}" (§{c.section})'})
        for name, v in columns.items():
            if c.key in v.index:
                row[name] = v.loc[c.key, "verdict"]
    table = pd.DataFrame([r for r in rows.values() if len(r) > 2], columns=["claim", "the paper", *columns])
    return table.fillna("-")


def paper_fig1a_text() -> str:
    """The paper's plotted Fig. 1 (a) values in words (:data:`l2dlib.claims.PAPER_FIG1A`)."""
    fig = claims.PAPER_FIG1A
    js = ", ".join(map(str, fig["num_experts"]))
    return (
        f"softmax ECE {', '.join(f'{v:.4f}' for v in fig['softmax'])} at J = {js}; "
        f"OvA {', '.join(f'{v:.4f}' for v in fig['ova'])}"
    )


def rule_markdown() -> str:
    """The verdict rule in one paragraph and a list (Markdown), *m* from the registry."""
    ece, acc = claims.MARGINS["ece"], claims.MARGINS["system_accuracy"]
    return (
        "Each claim's statistic is oriented so that the paper's direction is positive, and its 95% interval "
        "is placed against 0 and against a size that matters, *m*: half the paper's effect where the paper "
        f"gives numbers, else a practical margin of {ece:g} ECE (across a study's axis, or as a difference: "
        'about a fifth of the paper\'s MoG softmax rise, the spread of its own "roughly stable" OvA curve, '
        f"three times the MoG noise floor) or {acc:g} system accuracy.\n\n"
        "- **Direction claims**: **reproduced** when the interval lies above *m*; **direction reproduced, "
        "size unresolved** when it lies above 0 and contains *m*; **same direction, smaller** when it lies "
        "between 0 and *m*; **not reproduced** when it contains 0 but lies below *m* (the paper's effect is "
        "ruled out); **reversed** when it lies below 0; **inconclusive** when it contains both 0 and *m*.\n"
        "- **Flat claims** (an equivalence test): **holds** when the interval lies within ±*m*, **fails** "
        "when it lies wholly outside, **inconclusive** otherwise.\n"
        '- **Levels** ("above 40%"): **reproduced** or **not reproduced** by which side of the level '
        "the interval lies on, else **inconclusive**.\n\n"
        "Less data widens an interval, and a wider interval can only move a verdict towards inconclusive. "
        "An interval that cannot be computed (one replicate) is inconclusive. The replicates are training "
        "seeds: on MoG each seed is evaluated on a test sample of its own, so the intervals cover test-set "
        "sampling too; CIFAR-10's one test set is shared by all seeds, so its intervals cover training only."
    )


def multiplicity_markdown(results: dict) -> str:
    """How many intervals the claim tables hold, that they are not corrected, and how many
    verdicts survive a Bonferroni correction (the tables name those that do not)."""
    n, level = family(results)
    if n == 0:
        return ""
    changed = sum(
        claims.corrected_verdict(row, level) != row["verdict"] for v in results.values() for _, row in v.iterrows()
    )
    return (
        f"The claim tables on this page hold {n} intervals, each at 95% and not corrected for multiplicity. "
        f"Under a Bonferroni correction (each interval at {level:.2%}, for a family-wise 95%), {n - changed} of the "
        f"{n} verdicts stand; the tables give the corrected verdict in brackets where it differs."
    )


#: The first page's questions, each answered from the registry's verdicts of these claims.
QUESTIONS = (
    ("Is softmax less calibrated than OvA?", ("mog_gap", "cifar10_gap", "cifar10_specialists_gap")),
    (
        "Does the softmax ECE grow as experts are added?",
        ("mog_softmax_rises", "cifar10_softmax_rises", "cifar10_specialists_softmax_rises"),
    ),
    ("Does the random expert's softmax ECE reach the paper's 0.40?", ("mog_random_level", "cifar10_random_level")),
    (
        "Does the random expert's softmax ECE rise as the other experts improve?",
        ("mog_random_rises", "cifar10_random_rises"),
    ),
    (
        "Does the OvA ECE stay flat?",
        ("mog_ova_flat", "mog_random_ova_flat", "cifar10_ova_flat", "cifar10_random_ova_flat"),
    ),
    (
        "Is OvA's system accuracy higher than softmax's?",
        ("mog_accuracy", "cifar10_accuracy", "cifar10_specialists_accuracy"),
    ),
)


PLAIN = {  # verdict -> the answer in words
    "reproduced": "yes, at the paper's size",
    "direction reproduced, size unresolved": "yes in direction, size unresolved",
    "same direction, smaller": "yes, but much less than the paper says",
    "not reproduced": "no: the paper's effect is ruled out",
    "reversed": "no: the opposite",
    "inconclusive": "undecided",
    "holds": "yes",
    "fails": "no",
}


_PLAIN_LEVEL = {"reproduced": "yes", "not reproduced": "no", "inconclusive": "undecided"}


_PLAIN_MARGIN = {  # where the paper gives a direction only, the answer is against m
    "reproduced": "yes, by more than m = {m:g}",
    "same direction, smaller": "yes, but by less than m = {m:g}",
    "not reproduced": "no: an effect of m = {m:g} is ruled out",
}


def bottom_line(results: dict, primary: tuple[str, ...] = ("paper",)) -> list[str]:
    """The first page's plain sentences: each of :data:`QUESTIONS` answered per claim from
    the verdicts of the primary MoG profile(s) and the CIFAR-10 profile shown, with the
    estimate, its interval and the paper's effect."""
    shown = {k: v.set_index("key") for k, v in results.items() if k[0] == "cifar10" or k[1] in primary}
    out = []
    for question, keys in QUESTIONS:
        answers = []
        for key in keys:
            c = claims.BY_KEY[key]
            for (dataset, profile), v in shown.items():
                if key not in v.index:
                    continue
                row = v.loc[key]
                plain = (_PLAIN_LEVEL if c.kind == "level" else PLAIN)[row["verdict"]]
                if c.kind == "direction" and c.paper_effect is None:  # judged against m, not a paper size
                    plain = _PLAIN_MARGIN.get(row["verdict"], plain).format(m=c.margin)
                if row["verdict"] == "reversed" and row["95% interval"][0] > -c.margin:
                    plain = "no: a small effect the other way"  # smaller than m: not a reversal that matters
                where = regime_name(dataset, profile, short=True)
                if c.study == "specialized_experts":
                    where += ", specialists"
                elif c.study == "expert_dependence" and c.method == "ova":
                    where += ", random expert"
                paper = "" if c.paper_effect is None else f"; the paper: {_paper_effect(c)}"
                answers.append(f"{where}: {plain} ({row['statistic']}: {interval_text(row)}{paper})")
        if answers:
            out.append(f"**{question}** " + "; ".join(answers) + ".")
    return out
