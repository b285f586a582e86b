"""The training_budget study read: how far training ended from the optimum, and what that
does to calibration.

A budget level is one (epochs, learning rate) of :data:`l2dlib.studies.BUDGETS`. A model's
distance from the optimum is its test loss minus its surrogate's Bayes risk on the same test
points (MoG, where the truth is known; :func:`l2dlib.data.mog.bayes_risk`); on CIFAR-10,
where the Bayes risk is unknown, the test loss itself stands in (the same ordering). Each of
the four questions is a statistic per replicate (training seed) with its 95% t interval,
judged by the book's one rule (:func:`l2dlib.stats.verdict`) against a stated *m*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import claims, stats

LEVEL = ["max_epochs", "lr"]
#: Below this distance (nats) a model counts as at the optimum on the log axis: test-set noise
#: makes smaller, or negative, distances indistinguishable (0.001 is about the standard error
#: of a loss averaged over 20,000 test points).
DISTANCE_FLOOR = 1e-3
#: The four questions, with the size that matters in each (ECE units).
QUESTIONS = {
    "rises": "Does the softmax ECE rise with J at some budget?",
    "gap": "Does the softmax-OvA gap grow with the distance from the optimum?",
    "random": "Does the random expert's softmax ECE approach 40% at some budget?",
    "sensitive": "Is OvA less sensitive to the budget than softmax?",
}


def with_distance(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``distance``: test loss minus Bayes risk (MoG), else the test loss."""
    known = table["bayes_risk"].notna().all() if "bayes_risk" in table else False
    return table.assign(distance=table["test_loss"] - (table["bayes_risk"] if known else 0.0))


def levels(table: pd.DataFrame) -> pd.DataFrame:
    """Per (budget level, method): the mean over seeds of the oracles' ECE (mean over J and
    experts), of the distance from the optimum, of the share of estimates above 1 and of the
    system accuracy; and the random expert's ECE at p = 0.95 where the table has it."""
    t = with_distance(table)
    oracles = t[t["expert_p"].isna()]
    per_seed = oracles.groupby([*LEVEL, "method", "seed"]).agg(
        ece=("ece", "mean"),
        distance=("distance", "mean"),
        frac_estimates_above_1=("frac_estimates_above_1", "mean"),
        system_accuracy=("system_accuracy", "mean"),
    )
    out = per_seed.groupby([*LEVEL, "method"]).mean()
    random = t[t["expert_p"].notna() & (t["expert_kind"] == "random")]
    if len(random):
        out["random_ece"] = random.groupby([*LEVEL, "method", "seed"])["ece"].mean().groupby([*LEVEL, "method"]).mean()
    return out.reset_index()


def _judged(question: str, where: str, est: stats.Estimate, kind: str, margin: float, source: str) -> dict:
    mean, low, high = est.interval()
    return {
        "question": QUESTIONS[question],
        "where": where,
        "estimate": mean,
        "95% interval": (low, high),
        "m": margin,
        "m from": source,
        "verdict": stats.verdict(kind, low, high, margin),
        "replicates": est.n,
    }


def _level_name(epochs, lr) -> str:
    return f"{int(epochs)} epoch{'s' * (epochs != 1)} at lr {lr:g}"


def judge(table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The four questions on one training_budget table: the per-level ones (softmax rise in
    J, the random expert's level) at every budget level, the others once over the grid."""
    t = with_distance(table)
    oracles = t[t["expert_p"].isna()]
    rise = claims.PAPER_EFFECTS["mog_softmax_rise"] if dataset == "mog" else None
    rise_m, rise_from = (rise / 2, "half the paper's MoG rise") if rise else (claims.MARGINS["ece"], "practical margin")
    rows = []
    for (epochs, lr), level in oracles.groupby(LEVEL):
        est = stats.fitted_change(level, "softmax", "num_experts", "ece")
        rows.append(_judged("rises", _level_name(epochs, lr), est, "direction", rise_m, rise_from))
    dependence = t[t["expert_p"].notna()]
    for (epochs, lr), level in dependence.groupby(LEVEL):
        at = level["expert_p"].iloc[0]
        est = stats.value_at(
            level, "softmax", "expert_p", at, "ece", level=claims.PAPER_EFFECTS["random_level"], expert_kind="random"
        )
        rows.append(_judged("random", _level_name(epochs, lr), est, "level", claims.MARGINS["ece"], "the level 0.40"))
    rows.append(
        _judged("gap", "over the grid", gap_growth(oracles), "direction", claims.MARGINS["ece"], "practical margin")
    )
    rows.append(
        _judged(
            "sensitive", "over the grid", sensitivity(oracles), "direction", claims.MARGINS["ece"], "practical margin"
        )
    )
    return pd.DataFrame(rows)


def _per_seed_levels(oracles: pd.DataFrame, method: str) -> pd.DataFrame:
    d = oracles[oracles["method"] == method]
    return d.groupby(["seed", *LEVEL]).agg(ece=("ece", "mean"), distance=("distance", "mean"))


def gap_growth(oracles: pd.DataFrame) -> stats.Estimate:
    """Per seed, the softmax-OvA ECE gap of each budget level (mean over J) against the log
    of softmax's distance from the optimum (floored at :data:`DISTANCE_FLOOR`): the fitted
    line's rise from the nearest level to the farthest, in ECE."""
    sm, ova = _per_seed_levels(oracles, "softmax"), _per_seed_levels(oracles, "ova")
    both = sm.add_suffix("_sm").join(ova.add_suffix("_ova"), how="inner")
    out = []
    for _, g in both.groupby(level="seed"):
        x = np.log10(np.maximum(g["distance_sm"].to_numpy(), DISTANCE_FLOOR))
        if np.ptp(x) == 0:
            continue
        slope = np.polyfit(x, (g["ece_sm"] - g["ece_ova"]).to_numpy(), 1)[0]
        out.append(float(slope * np.ptp(x)))
    return stats.Estimate(tuple(out))


def sensitivity(oracles: pd.DataFrame) -> stats.Estimate:
    """Per seed, the range of softmax's ECE over the budget levels (mean over J) minus OvA's:
    positive where OvA moves less with the budget."""
    sm, ova = _per_seed_levels(oracles, "softmax"), _per_seed_levels(oracles, "ova")
    spread = lambda d: d["ece"].groupby(level="seed").agg(np.ptp)
    diff = (spread(sm) - spread(ova)).dropna()
    return stats.Estimate(tuple(float(v) for v in diff))


def answers(judged: pd.DataFrame) -> dict[str, str]:
    """One plain sentence per question, from :func:`judge`'s verdicts."""
    out = {}
    rises = judged[judged["question"] == QUESTIONS["rises"]]
    up = rises[rises["verdict"].isin(("reproduced", "direction reproduced, size unresolved"))]
    best = rises.loc[rises["estimate"].idxmax()]
    out["rises"] = (
        f"At {len(up)} of {len(rises)} budget levels the softmax ECE rises with J by a size that matters (verdict "
        f"reproduced, or direction reproduced); the largest fitted rise from J = 1 to 8 is {best['estimate']:+.4f} "
        f"({best['where']}), against *m* = {best['m']:.4f} ({best['m from']})."
    )
    random = judged[judged["question"] == QUESTIONS["random"]]
    if len(random):
        top = random.loc[random["estimate"].idxmax()]
        reached = (random["verdict"] == "reproduced").sum()
        out["random"] = (
            f"The random expert's softmax ECE exceeds 0.40 at {reached} of {len(random)} budget levels; at its "
            f"highest ({top['where']}) it is {top['estimate'] + 0.40:.3f} ({top['verdict']} against 0.40)."
        )
    for key in ("gap", "sensitive"):
        row = judged[judged["question"] == QUESTIONS[key]].iloc[0]
        low, high = row["95% interval"]
        out[key] = f"{row['estimate']:+.4f} [{low:+.4f}, {high:+.4f}] (*m* = {row['m']:.2f}): **{row['verdict']}**."
    return out


def schedule_point(table: pd.DataFrame, num_experts=None) -> dict[str, tuple[float, float]]:
    """Where a whole schedule sits (a study table of increasing_experts): per method, the mean
    over seeds and J (``num_experts``: those J only) of the distance from the optimum and of
    the ECE."""
    from .studies import BUDGET_NUM_EXPERTS

    t = with_distance(table)
    t = t[t["num_experts"].isin(BUDGET_NUM_EXPERTS if num_experts is None else num_experts)]
    per_seed = t.groupby(["method", "seed"])[["distance", "ece"]].mean().groupby("method").mean()
    return {m: (float(r["distance"]), float(r["ece"])) for m, r in per_seed.iterrows()}


def level_table(table: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """One row per budget level: softmax's and OvA's ECE and distance, softmax's fitted rise
    in J with its verdict, and the random expert's softmax ECE with its verdict at 0.40."""
    lv = levels(table).set_index([*LEVEL, "method"])
    distance = "softmax distance" if table["bayes_risk"].notna().all() else "softmax test loss"
    rises = judged[judged["question"] == QUESTIONS["rises"]].set_index("where")
    random = judged[judged["question"] == QUESTIONS["random"]].set_index("where")
    rows = []
    for (epochs, lr), _ in lv.groupby(level=LEVEL):
        where = _level_name(epochs, lr)
        sm, ova = lv.loc[(epochs, lr, "softmax")], lv.loc[(epochs, lr, "ova")]
        r = rises.loc[where]
        row = {
            "epochs": int(epochs),
            "lr": f"{lr:g}",
            "softmax ECE": f"{sm['ece']:.3f}",
            "OvA ECE": f"{ova['ece']:.3f}",
            distance: f"{sm['distance']:.3f}",
            "softmax ECE(8) - ECE(1)": f"{r['estimate']:+.3f}, {r['verdict']}",
        }
        if where in random.index:
            q = random.loc[where]
            row["random expert's softmax ECE (p = 0.95)"] = f"{q['estimate'] + 0.40:.3f}, {q['verdict']}"
        rows.append(row)
    return pd.DataFrame(rows)
