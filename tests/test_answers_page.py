"""The 2026 page's numbers: the ends of a J-sweep against a hand computation, and its
verdicts from the registry's later claims."""

import math

import numpy as np
import pandas as pd
import pytest

from l2dlib import answers_page, claims, stats


def _sweep(fall: float) -> pd.DataFrame:
    """Softmax and decoupled, 4 seeds, J = 1, 2, 4, two experts each; softmax's classifier
    accuracy falls by ``fall`` per expert, decoupled's does not."""
    rows = []
    for method in ("softmax", "decoupled"):
        for seed in range(4):
            for j in (1, 2, 4):
                for expert in range(2):
                    acc = 0.9 - (fall * j if method == "softmax" else 0.0) + 0.001 * seed
                    rows.append(
                        dict(
                            study="increasing_experts",
                            dataset="mog",
                            method=method,
                            seed=seed,
                            num_experts=j,
                            expert_p=None,
                            expert=expert,
                            expert_kind="oracle",
                            ece=0.01 * (seed + 1) + 0.001 * expert,
                            classifier_accuracy=acc,
                            system_accuracy=0.95,
                            coverage=0.5,
                            data_seed=None,
                        )
                    )
    return pd.DataFrame(rows)


def test_the_ends_of_a_sweep_are_the_seed_means_and_their_t_intervals():
    table = _sweep(0.01)
    out = answers_page.ends(table, "ece").set_index("method")
    # ECE per seed (mean over the two experts): 0.01 (seed + 1) + 0.0005, the same at every J
    per_seed = np.array([0.01 * (s + 1) + 0.0005 for s in range(4)])
    half = stats.t_quantile(0.975, 3) * per_seed.std(ddof=1) / math.sqrt(4)
    assert out.loc["softmax", "at lo"] == pytest.approx((per_seed.mean(), half))
    assert out.loc["softmax", "at hi"][0] == pytest.approx(per_seed.mean())
    assert out.loc["softmax", "change"][0] == pytest.approx(0.0, abs=1e-12)
    assert (out["lo"] == 1).all() and (out["hi"] == 4).all()
    acc = answers_page.ends(table, "classifier_accuracy").set_index("method")
    assert acc.loc["softmax", "change"][0] == pytest.approx(-0.03) and acc.loc["decoupled", "change"][0] == 0


def test_the_verdicts_table_judges_the_later_claims():
    table = _sweep(0.01)
    loaded = {("mog", "paper", "increasing_experts"): (table, {}), "mog": "paper", "cifar": "frozen_features"}
    text = answers_page.verdicts_markdown(loaded)
    judged = claims.judge_all("mog", {"increasing_experts": table}, registry=claims.LATER_CLAIMS).set_index("key")
    assert judged.loc["mog_softmax_underfits", "verdict"] == "reproduced"
    assert judged.loc["mog_decoupled_stable", "verdict"] == "holds"
    assert "+0.0300 [+0.0300, +0.0300]: **reproduced**" in text and ": **holds**" in text
    assert text.count("\n") == 2  # the header, its rule and one regime
    assert "Liu et al. (2026)" in text and "Montreuil et al. (2026)" in text
    ends = answers_page.ends_markdown(loaded, "classifier_accuracy")
    assert "| J-sweep | Softmax | Decoupled |" in ends
    # softmax: 0.9 - 0.01 J + 0.001 seed, seeds 0-3: 0.8915 at J = 1, 0.8615 at J = 4
    assert "| MoG, our schedule (J = 1 → 4) | 0.8915 → 0.8615 (-0.0300 ± 0.0000) | 0.9015 → 0.9015 (+0.0000" in ends


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown profile 'bogus'"):
        answers_page.load(None, "bogus")
