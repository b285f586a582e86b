"""The paper's claims as records, and each judged on a regime's tables; beside them, the
claims of two 2026 papers about adding experts (:data:`LATER_CLAIMS`), judged the same way.

Every verdict the book prints comes from :data:`CLAIMS` through :func:`judge`: the claim
tables, the findings table and the sentences on the first page. A claim's statistic is
oriented so that the paper's direction is positive; its margin *m* is half the paper's
effect where the paper gives numbers, else a stated practical margin (:data:`MARGINS`).

One concern over 350 lines: most of the file is the registry itself, records of data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from . import stats
from .data import HUMAN_DATASETS
from .profiles import get_profile
from .studies import AXES

#: Figure 1 (a) as the authors plot it (MoG, increasing experts), read off their figure.
PAPER_FIG1A = {
    "num_experts": (1, 2, 4, 6, 8),
    "softmax": (0.0357, 0.0394, 0.0422, 0.0781, 0.1317),
    "ova": (0.0311, 0.0381, 0.0234, 0.0351, 0.0272),
}


def _paper_fig1a_change(method: str) -> float:
    """The least-squares rise of the paper's plotted ECE over J = 1..8 (slope x 7)."""
    j = np.asarray(PAPER_FIG1A["num_experts"], dtype=float)
    return float(np.polyfit(j, PAPER_FIG1A[method], 1)[0] * (j.max() - j.min()))


#: The paper's effects where it gives numbers (Figure 1 (a); the 40% of Section 5.3).
PAPER_EFFECTS = {
    "mog_softmax_rise": _paper_fig1a_change("softmax"),  # +0.092
    "mog_ova_change": _paper_fig1a_change("ova"),  # -0.005
    "mog_gap": float(np.mean(np.subtract(PAPER_FIG1A["softmax"], PAPER_FIG1A["ova"]))),  # +0.034
    "random_level": 0.40,  # "reaching values above 40%"
}

#: Practical margins where the paper gives only a direction: an ECE change of 0.02 across a
#: study's axis (about a fifth of the paper's MoG softmax rise, the spread of its own "roughly
#: stable" OvA curve, three times the MoG noise floor) and 0.005 of system accuracy.
MARGINS = {"ece": 0.02, "system_accuracy": 0.005, "classifier_accuracy": 0.005}
ACCURACIES = {"system_accuracy": "system accuracy", "classifier_accuracy": "classifier accuracy"}


#: The ends of each study's grid in the paper, as the statistics' names say them.
GRID_ENDS = {
    "increasing_experts": (1, 8),
    "authors_experts": (1, 8),
    "specialized_experts": (1, 5),
    "expert_dependence": (0.2, 0.95),
}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper on one dataset.

    ``statistic``: ``change`` (the fitted rise of ``metric`` over the study's axis, per
    replicate), ``gap`` (``method`` minus ``other``, paired, each configuration once, on
    ``grid`` where given),
    ``dip`` (the value at J = 1 minus at J = 2) or ``level`` (the random expert's value at
    ``at``, the paper's largest p, minus ``paper_effect``). ``sign`` -1 orients a claimed
    fall as positive. ``source``: whose claim it is.
    """

    key: str
    dataset: str  # mog | cifar10 | cifar10h | cifar10n
    study: str
    text: str  # the claim in our words, as the tables show it
    words: str  # the paper's words
    section: str
    kind: str  # direction | flat | level
    statistic: str  # change | gap | dip | level
    method: str
    metric: str = "ece"
    other: str | None = None
    paper_effect: float | None = None  # in the statistic's units, None: direction only
    paper_source: str = ""
    grid: tuple | None = None  # the axis values the statistic averages over (None: the table's)
    at: float | None = None  # where a level is read
    sign: float = 1.0
    source: str = "the paper"

    def __post_init__(self) -> None:
        if self.sign != 1.0 and self.statistic != "change":
            raise ValueError(f"claim {self.key}: sign orients a change only, not a {self.statistic}")

    @property
    def expert_kind(self) -> str | None:
        return AXES[self.study].expert_kind

    @property
    def margin(self) -> float:
        """*m*: half the paper's effect where it gives one, else :data:`MARGINS`; for a
        level, the level itself is what the interval is read against (0 after subtracting
        it) and *m* only says how far off a miss is."""
        if self.kind == "direction" and self.paper_effect is not None:
            return abs(self.paper_effect) / 2
        return MARGINS[self.metric if self.metric in ACCURACIES else "ece"]  # any ECE estimator

    @property
    def margin_source(self) -> str:
        if self.kind == "level":
            return f"the paper's level {self.paper_effect:.2f}"
        if self.kind == "direction" and self.paper_effect is not None:
            return f"half the paper's effect ({self.paper_source})"
        what = ACCURACIES.get(self.metric, "ECE")
        return f"practical margin ({what}{' across the axis' if self.statistic == 'change' else ''})"

    @property
    def statistic_name(self) -> str:
        """The statistic's name on the paper's grid."""
        return self.name_on(*GRID_ENDS[self.study])

    def name_on(self, lo, hi) -> str:
        """The statistic's name on a grid from ``lo`` to ``hi``."""
        axis = AXES[self.study]
        metric = ACCURACIES.get(self.metric, "ECE")
        if self.statistic == "change":
            if self.sign < 0:
                lo, hi = hi, lo
            return f"{metric}({axis.symbol}={hi:g}) - {metric}({axis.symbol}={lo:g}), fitted line"
        if self.statistic == "gap":
            over = f"{axis.symbol} = {', '.join(map(str, self.grid))}" if self.grid else axis.symbol
            return f"{metric} difference, mean over {over}"
        if self.statistic == "dip":
            return "ECE(J=1) - ECE(J=2)"
        return f"the random expert's ECE at {axis.symbol}={self.at:g}"

    def _rows(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table on the claim's own grid where it has one (the paper's plotted J values)."""
        x = AXES[self.study].column
        if self.grid and table[x].isin(self.grid).any():
            return table[table[x].isin(self.grid)]
        return table

    def estimate(self, table: pd.DataFrame) -> stats.Estimate:
        """The statistic per replicate of ``table`` (this claim's study and dataset)."""
        x = AXES[self.study].column
        table = self._rows(table)
        if self.statistic == "change":
            est = stats.fitted_change(table, self.method, x, self.metric, expert_kind=self.expert_kind)
            return est.scaled(self.sign)
        if self.statistic == "gap":
            return stats.paired_gap(table, self.method, self.other, self.metric, x, expert_kind=self.expert_kind)
        if self.statistic == "dip":
            return stats.value_at(table, self.method, x, 2, self.metric, baseline_at=1, sign=-1.0)
        at = table[x][np.isclose(table[x], self.at)].iloc[0]  # the grid's own float
        return stats.value_at(
            table, self.method, x, at, self.metric, level=self.paper_effect, expert_kind=self.expert_kind
        )

    def applies(self, table: pd.DataFrame | None) -> bool:
        if table is None or self.method not in set(table["method"]):
            return False
        if self.other is not None and self.other not in set(table["method"]):
            return False
        x = table[AXES[self.study].column]
        if self.statistic == "dip":
            return {1, 2} <= set(x)
        if self.statistic == "level":  # the paper's level is at its largest p
            return bool(np.isclose(x, self.at).any())
        return x.nunique() > 1 or self.statistic == "gap"


def _claims() -> tuple[Claim, ...]:
    out = []
    fig1a = "Fig. 1 (a) as plotted"
    for ds in ("mog", "cifar10", *HUMAN_DATASETS):
        mog = ds == "mog"
        # With human experts the dependence study's fixed expert is a plain crowd member, and
        # the paper's 40% (a random expert's) is not its claim.
        fixed = "the plain crowd member" if ds in HUMAN_DATASETS else "the random expert"
        for study, suffix in (("increasing_experts", ""), ("authors_experts", ", the authors' expert")):
            if study == "authors_experts" and not mog:
                continue
            tag = "" if study == "increasing_experts" else "_authors"
            out += [
                Claim(
                    f"{ds}_softmax_rises{tag}",
                    ds,
                    study,
                    f"Softmax ECE rises with the number of experts J{suffix}",
                    "the softmax (blue) ECE tends to increase",
                    "5.2",
                    "direction",
                    "change",
                    "softmax",
                    paper_effect=PAPER_EFFECTS["mog_softmax_rise"] if mog else None,
                    paper_source=fig1a if mog else "",
                ),
                Claim(
                    f"{ds}_ova_flat{tag}",
                    ds,
                    study,
                    f"OvA ECE stays flat in J{suffix}",
                    "the OvA parameterization (orange) is roughly stable w.r.t. expert size",
                    "5.2",
                    "flat",
                    "change",
                    "ova",
                    paper_effect=PAPER_EFFECTS["mog_ova_change"] if mog else None,
                    paper_source=fig1a if mog else "",
                ),
            ]
        out += [
            Claim(
                f"{ds}_gap",
                ds,
                "increasing_experts",
                "Softmax ECE above OvA's (increasing experts)",
                "softmax (blue) ECE tends to increase [...] OvA [...] roughly stable",
                "5.2",
                "direction",
                "gap",
                "softmax",
                other="ova",
                paper_effect=PAPER_EFFECTS["mog_gap"] if mog else None,
                paper_source=fig1a if mog else "",
                grid=PAPER_FIG1A["num_experts"] if mog else None,  # like for like with the paper's mean
            ),
            Claim(
                f"{ds}_accuracy",
                ds,
                "increasing_experts",
                "OvA's system accuracy above softmax's (increasing experts)",
                "the OvA parameterization is slightly-to-moderately superior in all cases",
                "5.2",
                "direction",
                "gap",
                "ova",
                metric="system_accuracy",
                other="softmax",
            ),
        ]
        if not mog:
            out.append(
                Claim(
                    f"{ds}_dip",
                    ds,
                    "increasing_experts",
                    "Softmax ECE dips from J = 1 to J = 2",
                    "we do see some cancellation effect with the addition of second expert in Figure 1 (d)",
                    "5.2",
                    "direction",
                    "dip",
                    "softmax",
                )
            )
        out += [
            Claim(
                f"{ds}_random_rises",
                ds,
                "expert_dependence",
                f"Softmax ECE of {fixed} rises with the others' quality p",
                "the ECE for the random expert dramatically increases for both datasets",
                "5.3",
                "direction",
                "change",
                "softmax",
            ),
        ]
        if ds not in HUMAN_DATASETS:
            out.append(
                Claim(
                    f"{ds}_random_level",
                    ds,
                    "expert_dependence",
                    "Softmax ECE of the random expert above 0.40 at the largest p",
                    "reaching values above 40%",
                    "5.3",
                    "level",
                    "level",
                    "softmax",
                    paper_effect=PAPER_EFFECTS["random_level"],
                    paper_source="Section 5.3",
                    at=0.95,
                )
            )
        out += [
            Claim(
                f"{ds}_random_ova_flat",
                ds,
                "expert_dependence",
                f"OvA ECE of {fixed} stays flat in p",
                "for OvA (orange), the ECE is nearly flat for both datasets",
                "5.3",
                "flat",
                "change",
                "ova",
            ),
        ]
        if not mog:
            out += [
                Claim(
                    f"{ds}_specialists_softmax_rises",
                    ds,
                    "specialized_experts",
                    "Softmax ECE rises with the number of specialists",
                    "the softmax parameterization still accumulates calibration errors",
                    "5.4",
                    "direction",
                    "change",
                    "softmax",
                ),
                Claim(
                    f"{ds}_specialists_ova_flat",
                    ds,
                    "specialized_experts",
                    "OvA ECE stays flat in the number of specialists",
                    "OvA is again clearly superior by being stable across the number of experts",
                    "5.4",
                    "flat",
                    "change",
                    "ova",
                ),
                Claim(
                    f"{ds}_specialists_gap",
                    ds,
                    "specialized_experts",
                    "Softmax ECE above OvA's (specialists)",
                    "For ECE, OvA is again clearly superior",
                    "5.4",
                    "direction",
                    "gap",
                    "softmax",
                    other="ova",
                ),
                Claim(
                    f"{ds}_specialists_accuracy",
                    ds,
                    "specialized_experts",
                    "OvA's system accuracy above softmax's (specialists)",
                    "both methods are competitive, with OvA (orange) having a slight edge",
                    "5.4",
                    "direction",
                    "gap",
                    "ova",
                    metric="system_accuracy",
                    other="softmax",
                ),
            ]
    return tuple(out)


#: Every claim of Sections 5.2-5.4, per dataset, in the order the tables list them.
CLAIMS: tuple[Claim, ...] = _claims()

#: Where each later paper says it (both in the abstract, with no number to size the effect).
LIU_2026 = "Liu et al. (2026), abstract"
MONTREUIL_2026 = "Montreuil et al. (2026), abstract"


def _later_claims() -> tuple[Claim, ...]:
    """What the 2026 papers claim about adding experts, on every dataset's J-sweep: the
    classifier underfits under softmax (Liu et al.; their remedy, PiCCE, is not built: its
    loss could not be found in enough detail), and the decoupled surrogate stays stable
    (Montreuil et al.). Judged on the classifier's own accuracy: the underfitting they describe is
    the classifier's."""
    out = []
    for ds in ("mog", "cifar10", *HUMAN_DATASETS):
        out += [
            Claim(
                f"{ds}_softmax_underfits",
                ds,
                "increasing_experts",
                "Softmax's classifier accuracy falls as J grows",
                "with multiple experts, the classifier's underfitting becomes inherent, which seriously degrades "
                "prediction performance",
                LIU_2026,
                "direction",
                "change",
                "softmax",
                metric="classifier_accuracy",
                sign=-1.0,
                source="Liu et al. (2026)",
            ),
            *(
                Claim(
                    f"{ds}_decoupled_stable{suffix}",
                    ds,
                    "increasing_experts",
                    f"The decoupled surrogate's {ACCURACIES[metric]} stays flat in J",
                    "the only method in our comparison that remains stable as the expert pool grows",
                    MONTREUIL_2026,
                    "flat",
                    "change",
                    "decoupled",
                    metric=metric,
                    source="Montreuil et al. (2026)",
                )
                # their "stable" does not say of what: the classifier, and the whole system
                for metric, suffix in (("classifier_accuracy", ""), ("system_accuracy", "_system"))
            ),
        ]
    return tuple(out)


#: The 2026 papers' claims, kept apart from the paper's (its findings and Bonferroni family).
LATER_CLAIMS: tuple[Claim, ...] = _later_claims()
BY_KEY = {c.key: c for c in CLAIMS + LATER_CLAIMS}


def _ends(claim: Claim, table: pd.DataFrame) -> tuple:
    x = claim._rows(table)[AXES[claim.study].column]
    return x.min(), x.max()


def judge(claim: Claim, table: pd.DataFrame) -> dict:
    """One claim on one table: the statistic per replicate, its 95% interval, *m* and the
    verdict (:func:`l2dlib.stats.verdict`)."""
    est = claim.estimate(table)
    mean, low, high = est.interval()
    return {
        "key": claim.key,
        "claim": claim.text,
        "section": claim.section,
        "the paper": claim.words,
        "kind": claim.kind,
        "statistic": claim.name_on(*_ends(claim, table)),
        "paper effect": claim.paper_effect,
        "m": claim.margin,
        "m from": claim.margin_source,
        "estimate": mean,
        "95% interval": (low, high),
        "replicates": est.n,
        "verdict": stats.verdict(claim.kind, low, high, claim.margin),
        "values": est.values,
    }


def judge_all(
    dataset: str, tables: dict[str, pd.DataFrame | None], *, ece: str = "ece", registry: tuple[Claim, ...] = CLAIMS
) -> pd.DataFrame:
    """Every claim of ``registry`` (the paper's by default) on ``dataset`` that ``tables``
    (study -> table or None) can judge; with ``ece`` another ECE column of the tables (e.g.
    ``ece_adaptive``) in place of the paper's."""
    chosen = [c if c.metric != "ece" else replace(c, metric=ece) for c in registry if c.dataset == dataset]
    return pd.DataFrame([judge(c, tables[c.study]) for c in chosen if c.applies(tables.get(c.study))])


def bonferroni(judged: list[pd.DataFrame], alpha: float = 0.05) -> tuple[int, float]:
    """How many intervals the tables hold, and the level of each under a Bonferroni
    correction of the family at ``alpha``."""
    n = int(sum(len(j) for j in judged if j is not None))
    return n, 1 - alpha / max(n, 1)


def corrected_verdict(row: dict | pd.Series, level: float) -> str:
    """The verdict of a :func:`judge` row with its interval at ``level``."""
    claim = BY_KEY[row["key"] if "key" in row else row.name]
    _, low, high = stats.Estimate(tuple(row["values"])).interval(level)
    return stats.verdict(claim.kind, low, high, claim.margin)


# ------------------------------------------------------------------ regimes

REGIMES = {  # MoG profile -> how the claim table names it
    "paper": "the paper's data, our schedule",
    "quick": "the paper's data, our schedule (3 seeds)",
    "faithful": "the paper's data, the authors' schedule",
    "draws": "10 draws of our generator, our schedule",
    "smoke": "smoke test data",
}


SHORT_REGIMES = {  # (dataset, profile) -> its column in the findings table
    ("mog", "paper"): "MoG, our schedule",
    ("mog", "quick"): "MoG, our schedule (3 seeds)",
    ("mog", "faithful"): "MoG, the authors' schedule",
    ("mog", "draws"): "MoG, 10 data draws",
    ("cifar10", "frozen_features"): "CIFAR-10, CPU features",
    ("cifar10", "cpu_end_to_end"): "CIFAR-10, CPU end to end",
    ("cifar10", "paper"): "CIFAR-10, fast ResNet",
    ("cifar10", "faithful"): "CIFAR-10, WideResNet",
    ("cifar10h", "frozen_features"): "CIFAR-10H annotators, CPU features",
    ("cifar10n", "frozen_features"): "CIFAR-10N workers, CPU features",
}
HUMAN_NAMES = {"cifar10h": "CIFAR-10H annotators", "cifar10n": "CIFAR-10N workers"}


def regime_name(dataset: str, profile: str, *, short: bool = False) -> str:
    if short:
        return SHORT_REGIMES.get((dataset, profile), f"{dataset}, {profile}")
    if dataset == "mog":
        return f"{REGIMES.get(profile, profile)} (`{profile}`)"
    if dataset in HUMAN_NAMES:
        return f"{HUMAN_NAMES[dataset]} as experts, frozen CNN features + MLP L2D head (`{profile}`)"
    return f"CIFAR-10, {get_profile('cifar10', profile).description} (`{profile}`)"
