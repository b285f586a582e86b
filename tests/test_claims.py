"""The registry of the paper's claims: complete, with the paper's own numbers, and the only
source of the verdicts the book prints."""

import numpy as np
import pandas as pd
import pytest

from l2dlib import claims, pages, report


def test_every_claim_of_sections_5_2_to_5_4_has_a_record():
    have = {(c.dataset, c.study, c.statistic, c.method, c.metric, c.kind) for c in claims.CLAIMS}
    want = set()
    for ds in ("mog", "cifar10"):
        want |= {
            (ds, "increasing_experts", "change", "softmax", "ece", "direction"),  # 5.2: softmax ECE increases
            (ds, "increasing_experts", "change", "ova", "ece", "flat"),  # 5.2: OvA roughly stable
            (ds, "increasing_experts", "gap", "softmax", "ece", "direction"),  # 5.2: softmax above OvA
            (ds, "increasing_experts", "gap", "ova", "system_accuracy", "direction"),  # 5.2: OvA superior
            (ds, "expert_dependence", "change", "softmax", "ece", "direction"),  # 5.3: dramatically increases
            (ds, "expert_dependence", "level", "softmax", "ece", "level"),  # 5.3: above 40%, both datasets
            (ds, "expert_dependence", "change", "ova", "ece", "flat"),  # 5.3: nearly flat for both
        }
    want |= {
        ("mog", "authors_experts", "change", "softmax", "ece", "direction"),
        ("mog", "authors_experts", "change", "ova", "ece", "flat"),
        ("cifar10", "increasing_experts", "dip", "softmax", "ece", "direction"),  # 5.2: the second expert
        ("cifar10", "specialized_experts", "change", "softmax", "ece", "direction"),  # 5.4: accumulates
        ("cifar10", "specialized_experts", "change", "ova", "ece", "flat"),  # 5.4: stable
        ("cifar10", "specialized_experts", "gap", "softmax", "ece", "direction"),  # 5.4: clearly superior
        ("cifar10", "specialized_experts", "gap", "ova", "system_accuracy", "direction"),  # 5.4: slight edge
    }
    # With human experts: the CIFAR-10 claims, but not the 40% level (a random expert's).
    for ds in ("cifar10h", "cifar10n"):
        want |= {(ds, *rest) for d, *rest in want if d == "cifar10" and rest[1] != "level"}
    assert have == want
    assert len({c.key for c in claims.CLAIMS}) == len(claims.CLAIMS)


def test_the_paper_effects_are_its_plotted_numbers():
    j = np.array([1, 2, 4, 6, 8.0])
    design = np.stack([j, np.ones_like(j)], 1)
    softmax = np.array([0.0357, 0.0394, 0.0422, 0.0781, 0.1317])
    ova = np.array([0.0311, 0.0381, 0.0234, 0.0351, 0.0272])
    slope = np.linalg.lstsq(design, softmax, rcond=None)[0][0]
    rise = claims.BY_KEY["mog_softmax_rises"]
    assert rise.paper_effect == pytest.approx(7 * slope) and rise.paper_effect == pytest.approx(0.0921, abs=1e-4)
    assert rise.margin == pytest.approx(rise.paper_effect / 2)
    gap = claims.BY_KEY["mog_gap"]
    assert gap.paper_effect == pytest.approx((softmax - ova).mean()) and gap.margin == pytest.approx(0.0172, abs=1e-4)
    assert claims.BY_KEY["cifar10_random_level"].paper_effect == 0.40 == claims.BY_KEY["mog_random_level"].paper_effect
    flat = claims.BY_KEY["mog_ova_flat"]
    assert flat.margin == claims.MARGINS["ece"] and "practical margin" in flat.margin_source


def _table(slope_by_method, seeds=((0.0, 0.001), (0.001, -0.001), (-0.001, 0.0))):
    rows = []
    for method, slope in slope_by_method.items():
        for seed, noise in enumerate(seeds):
            for j in (1, 2, 3, 4):
                for expert, e in enumerate(noise):
                    rows.append(
                        dict(
                            method=method,
                            seed=seed,
                            num_experts=j,
                            expert_p=None,
                            expert=expert,
                            expert_kind="oracle",
                            ece=0.1 + slope * j + e,
                            system_accuracy=0.9,
                            data_seed=None,
                        )
                    )
    return pd.DataFrame(rows)


def test_judging_a_hand_made_table():
    # Softmax ECE rises 0.02 per expert in every seed (0.06 over J = 1..4, a zero-width
    # interval): above m = 0.046, half the paper's +0.092; OvA is flat.
    table = _table({"softmax": 0.02, "ova": 0.0})
    judged = claims.judge_all("mog", {"increasing_experts": table}).set_index("key")
    rise = judged.loc["mog_softmax_rises"]
    assert rise["estimate"] == pytest.approx(0.06) and rise["verdict"] == "reproduced"
    assert judged.loc["mog_ova_flat", "verdict"] == "holds"
    gap = judged.loc["mog_gap"]  # softmax - ova = 0.02 * J, mean over the paper's J present: 1, 2, 4
    assert gap["estimate"] == pytest.approx(0.02 * 7 / 3) and gap["verdict"] == "reproduced"
    assert gap["statistic"] == "ECE difference, mean over J = 1, 2, 4, 6, 8"
    assert rise["statistic"] == "ECE(J=4) - ECE(J=1), fitted line"  # the table's own grid
    assert set(judged.index) == {"mog_softmax_rises", "mog_ova_flat", "mog_gap", "mog_accuracy"}


def test_every_printed_verdict_comes_from_the_registry():
    results = pages.regimes(None, ["paper", "faithful", "draws"])
    table = report.findings(results)
    for (dataset, profile), judged in results.items():
        column = claims.regime_name(dataset, profile, short=True)
        for _, row in judged.iterrows():
            claim = claims.BY_KEY[row["key"]]
            lo, hi = row["95% interval"]
            assert row["verdict"] == claims.stats.verdict(claim.kind, lo, hi, claim.margin)
            assert table.set_index("claim").loc[claim.text, column] == row["verdict"]
    words = set(table.iloc[:, 2:].to_numpy().ravel()) - {"-"}
    assert words <= set(claims.stats.DIRECTION_VERDICTS) | set(claims.stats.FLAT_VERDICTS)
    text = report.claims_markdown(results, "mog", report.family(results)[1])
    assert text.count("\n") == 1 + sum(c.dataset == "mog" for c in claims.CLAIMS)
    assert "+0.0921 (Fig. 1 (a) as plotted)" in text and "0.0461: half the paper's effect" in text


def test_another_ece_column_is_judged_in_place_of_the_papers():
    table = _table({"softmax": 0.02, "ova": 0.0})
    table["ece_adaptive"] = table["ece"] * 0  # no change anywhere under this estimator
    paper = claims.judge_all("mog", {"increasing_experts": table}).set_index("key")
    other = claims.judge_all("mog", {"increasing_experts": table}, ece="ece_adaptive").set_index("key")
    assert paper.loc["mog_softmax_rises", "verdict"] == "reproduced"
    assert other.loc["mog_softmax_rises", "verdict"] == "not reproduced"
    assert other.loc["mog_accuracy", "estimate"] == paper.loc["mog_accuracy", "estimate"]  # not an ECE claim
    assert other.loc["mog_softmax_rises", "m"] == paper.loc["mog_softmax_rises", "m"]


def test_the_2026_claims_are_judged_apart_and_oriented_as_they_are_stated():
    """Liu et al.: softmax's classifier accuracy falls with J (a fall is positive);
    Montreuil et al.: the decoupled surrogate's stays flat. Neither is in the paper's family."""
    assert not {c.key for c in claims.LATER_CLAIMS} & {c.key for c in claims.CLAIMS}
    assert {c.source for c in claims.LATER_CLAIMS} == {"Liu et al. (2026)", "Montreuil et al. (2026)"}
    table = _table({"softmax": 0.0, "decoupled": 0.0})
    # softmax's classifier falls by 0.01 per expert in every seed (0.03 over J = 1..4); decoupled's is flat
    fall = np.where(table["method"] == "softmax", 0.01 * table["num_experts"], 0.0)
    table["classifier_accuracy"] = 0.9 - fall + table["seed"] * 1e-4
    judged = claims.judge_all("mog", {"increasing_experts": table}, registry=claims.LATER_CLAIMS).set_index("key")
    under = judged.loc["mog_softmax_underfits"]
    assert under["estimate"] == pytest.approx(0.03) and under["verdict"] == "reproduced"
    assert under["statistic"] == "classifier accuracy(J=1) - classifier accuracy(J=4), fitted line"
    assert under["m"] == claims.MARGINS["classifier_accuracy"]
    assert judged.loc["mog_decoupled_stable", "verdict"] == "holds"
    table["classifier_accuracy"] = 0.9 + fall  # a rise is the claim reversed
    judged = claims.judge_all("mog", {"increasing_experts": table}, registry=claims.LATER_CLAIMS).set_index("key")
    assert judged.loc["mog_softmax_underfits", "verdict"] == "reversed"
    # the paper's registry does not judge them
    assert "mog_softmax_underfits" not in set(claims.judge_all("mog", {"increasing_experts": table})["key"])
