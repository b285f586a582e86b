"""The numbers and verdicts the book's prose states, on hand-made tables."""

import pandas as pd
import pytest

from l2dlib import report


def _table(slope_by_method, noise=((0.0, 0.001), (0.001, -0.001), (-0.001, 0.0))):
    rows = []
    for method, slope in slope_by_method.items():
        for seed, (e0, e1) in enumerate(noise):
            for j in (1, 2, 3, 4):
                for expert, e in enumerate((e0, e1)):  # two experts, averaged per seed
                    rows.append(
                        {
                            "method": method,
                            "seed": seed,
                            "num_experts": j,
                            "expert": expert,
                            "expert_kind": "oracle",
                            "ece": 0.1 + slope * j + e,
                            "system_accuracy": 0.9,
                        }
                    )
    return pd.DataFrame(rows)


def test_trend_recovers_slopes_and_endpoints():
    t = report.trend(_table({"softmax": 0.02, "ova": 0.0}), "num_experts")
    assert t["softmax"]["slope"] == pytest.approx(0.02)
    assert t["softmax"]["first"] == pytest.approx(0.12) and t["softmax"]["last"] == pytest.approx(0.18)
    assert t["ova"]["slope"] == pytest.approx(0.0, abs=1e-12)


def test_describe_trend_verdicts():
    t = report.trend(_table({"softmax": 0.02, "ova": 0.0, "asymmetric_softmax": -0.01}), "num_experts")
    assert report.describe_trend(t["softmax"], per="expert").startswith("rises (+0.0200")
    assert report.describe_trend(t["asymmetric_softmax"], per="expert").startswith("falls (-0.0100")
    assert report.describe_trend(t["ova"], per="expert").startswith("stays flat within noise")


def test_ranking_and_its_stability():
    table = _table({"softmax": 0.02, "ova": 0.0})
    for col in ("ece_10", "ece_30", "ece_adaptive", "ece_uncapped", "brier"):
        table[col] = table["ece"]
    table.loc[table.method == "ova", "ece_adaptive"] += 1.0  # make OvA worst under one binning
    ranking = report.method_ranking(table)
    assert ranking.loc["ECE, 20 bins (the paper's)", "ranking (best first)"] == "ova < softmax"
    assert not report.ranking_is_stable(ranking, list(ranking.index[:4]))
    assert report.ranking_is_stable(ranking, list(ranking.index[:3]))


def test_describe_results_says_plainly_when_there_are_none():
    text = report.describe_results("specialized_experts", None, None, "paper")
    assert text.startswith("No cifar10 results for profile `paper` exist yet: they need a GPU")
    assert "`python -m l2dlib run specialized_experts --dataset cifar10 --profile paper --device cuda`" in text
    assert report.missing_results("increasing_experts", "mog", "quick") == (
        "No mog results for profile `quick` exist yet (`python -m l2dlib run increasing_experts --dataset mog "
        "--profile quick`)."
    )


def test_below_all_others_counts_failed_classifiers():
    table = _table({"softmax": 0.0, "ova": 0.0, "asymmetric_softmax": 0.0})
    table["expert_p"] = None
    bad = (table.method == "asymmetric_softmax") & (table.seed == 1) & (table.num_experts == 4)
    table.loc[bad, "system_accuracy"] = 0.5
    out = report.below_all_others(table, "asymmetric_softmax", "system_accuracy")
    assert out == {"count": 1, "models": 12, "worst": 0.5, "worst_other": 0.9}


def test_describe_failures_states_what_the_numbers_say():
    table = _table({"softmax": 0.0, "ova": 0.0, "asymmetric_softmax": 0.0})
    table["expert_p"] = None
    table["classifier_accuracy"] = 0.9
    assert report.describe_failures(table, "asymmetric_softmax").startswith("None of the 12")
    table.loc[(table.method == "asymmetric_softmax") & (table.seed == 0), "classifier_accuracy"] = 0.6
    text = report.describe_failures(table, "asymmetric_softmax")
    assert text.startswith("In 4 of its 12 models") and text.endswith("trains less reliably here.")
    table.loc[(table.method == "asymmetric_softmax") & (table.seed == 0), "classifier_accuracy"] = 0.895
    assert report.describe_failures(table, "asymmetric_softmax").endswith("no sign of a training problem.")


def test_t_quantiles_match_the_tables():
    for df, value in ((1, 12.706), (4, 2.776), (9, 2.262), (29, 2.045)):
        assert report.t_quantile(0.975, df) == pytest.approx(value, abs=1e-3)


def test_mean_ci_by_hand():
    mean, lo, hi = report.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * (2.5**0.5) / 5**0.5  # t(0.975, 4) * sd / sqrt(n)
    assert mean == 3.0 and lo == pytest.approx(3 - half, abs=1e-4) and hi == pytest.approx(3 + half, abs=1e-4)


@pytest.mark.parametrize(
    "estimate,expect,word",
    [
        ((0.02, 0.01, 0.03), "positive", "holds"),
        ((0.02, 0.01, 0.03), "negative", "fails"),
        ((-0.02, -0.03, -0.01), "positive", "fails"),
        ((0.02, -0.01, 0.05), "positive", "within noise"),
        ((0.001, -0.01, 0.01), "zero", "holds"),
        ((0.02, 0.01, 0.03), "zero", "fails"),
        ((0.02, float("nan"), float("nan")), "positive", "within noise"),
    ],
)
def test_verdicts(estimate, expect, word):
    assert report.verdict(estimate, expect) == word


def test_claims_read_slopes_and_paired_differences_off_the_table():
    # softmax ECE rises 0.02 per expert with seed noise, OvA is flat: the verdicts say so.
    table = _table({"softmax": 0.02, "ova": 0.0}).assign(data_seed=float("nan"))
    claims = report.claims(table, None).set_index("claim")
    rise = claims.loc["Softmax ECE against the number of experts J"]
    assert rise["verdict"] == "holds" and rise["estimate"] == pytest.approx(0.02)
    assert claims.loc["OvA ECE against the number of experts J", "verdict"] == "holds"
    assert claims.loc["Softmax ECE above OvA's (increasing experts)", "verdict"] == "holds"
    assert set(report.format_claims(report.claims(table, None)).columns) >= {"estimate [95% interval]", "verdict"}


def test_the_findings_table_lists_each_regimes_verdicts_and_a_dash_where_it_has_none():
    table = report.findings(None, ["paper", "faithful"])
    mog = report.mog_claims(None, "paper").set_index("claim")["verdict"]
    shown, cifar = report.shown_cifar_claims(None)
    cifar = cifar.set_index("claim")["verdict"]
    assert list(table.columns[:4]) == ["claim", "the paper", "MoG, our schedule", "MoG, the authors' schedule"]
    column = report.SHORT_REGIMES["cifar10", shown]
    for row in table.itertuples(index=False):
        row = dict(zip(table.columns, row))
        assert row["MoG, our schedule"] == mog.get(row["claim"], "-")
        assert row[column] == cifar.get(row["claim"], "-")
    assert set(mog.index) | set(cifar.index) == set(table["claim"])
    html = report.findings_html(table)
    assert html.count("<tr>") == len(table) + 1 and "text-align: right" not in html
