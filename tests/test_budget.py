"""The training_budget study: its grid through the CLI, and its questions judged by the
book's rule on tables whose answers are known."""

import numpy as np
import pandas as pd

from l2dlib import budget
from l2dlib.__main__ import main
from l2dlib.studies import BUDGETS


def test_the_budget_grid_through_the_cli(tmp_path):
    args = ["run", "training_budget", "--profile", "smoke", "--num-experts", "1", "--methods", "softmax", "ova"]
    assert main([*args, "--results-dir", str(tmp_path), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "mog" / "training_budget-smoke.csv")
    epochs, lrs = BUDGETS["mog"]
    # per level and method: J = 1 (one row) and the dependence experts at p = 0.95 (four)
    assert len(table) == len(epochs) * len(lrs) * 2 * 5
    assert sorted(table["max_epochs"].unique()) == list(epochs) and sorted(table["lr"].unique()) == list(lrs)
    assert (table["best_epoch"] == table["max_epochs"]).all()  # the last state, at the budget
    assert (table["patience"] == table["max_epochs"]).all()
    assert table["bayes_risk"].notna().all() and (table["test_loss"] > 0).all()
    levels = budget.levels(table)
    assert len(levels) == len(epochs) * len(lrs) * 2 and levels["random_ece"].notna().all()


def _table(rise_at, seeds=5):
    """Softmax ECE rising by 0.2 over J = 1..8 at the level ``rise_at`` and flat elsewhere;
    OvA flat at 0.02; on the short budget softmax 0.3 higher, the distance 1 (not 0.01) and
    the random expert's softmax ECE 0.45."""
    rng = np.random.default_rng(0)
    rows = []
    for epochs in (2, 50):
        far = epochs == 2
        for seed in range(seeds):
            for method in ("softmax", "ova"):
                same = dict(max_epochs=epochs, lr=0.05, method=method, seed=seed, frac_estimates_above_1=0.0)
                for j in (1, 2, 4, 8):
                    ece = 0.02 + (0.2 * (j - 1) / 7 if method == "softmax" and epochs == rise_at else 0.0)
                    ece += 0.3 * far * (method == "softmax") + rng.normal(0, 0.002)
                    distance = 1.0 if far else 0.01
                    oracle = dict(num_experts=j, expert_p=np.nan, expert_kind="oracle", ece=ece, system_accuracy=0.9)
                    rows.append(same | oracle | dict(test_loss=1.0 + distance, bayes_risk=1.0))
                random_ece = (0.45 if far and method == "softmax" else 0.05) + rng.normal(0, 0.002)
                random = dict(num_experts=4, expert_p=0.95, expert_kind="random", ece=random_ece, system_accuracy=0.9)
                rows.append(same | random | dict(test_loss=1.0, bayes_risk=1.0))
    return pd.DataFrame(rows)


def test_each_question_gives_the_verdict_its_table_was_made_for():
    judged = budget.judge(_table(rise_at=50), "mog").set_index(["question", "where"])["verdict"]
    rises = judged[budget.QUESTIONS["rises"]]
    assert rises["50 epochs at lr 0.05"] == "reproduced" and rises["2 epochs at lr 0.05"] == "not reproduced"
    random = judged[budget.QUESTIONS["random"]]
    assert random["2 epochs at lr 0.05"] == "reproduced" and random["50 epochs at lr 0.05"] == "not reproduced"
    # The short budget is far from the optimum and has the larger softmax-OvA gap: it grows.
    assert judged[budget.QUESTIONS["gap"]].iloc[0] == "reproduced"
    assert judged[budget.QUESTIONS["sensitive"]].iloc[0] == "reproduced"  # OvA does not move
    flat = budget.judge(_table(rise_at=None).assign(ece=lambda t: 0.02 + 0 * t["ece"]), "mog")
    assert flat.set_index("question").loc[budget.QUESTIONS["sensitive"], "verdict"] == "not reproduced"  # ruled out
    answers = budget.answers(budget.judge(_table(rise_at=50), "mog"))
    assert answers["rises"].startswith("At 1 of 2 budget levels")
