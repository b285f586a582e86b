"""The numbers and verdicts the book's prose states, on hand-made tables."""

import pandas as pd
import pytest

from l2dlib import aggregate, claims, pages, report


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


def test_study_numbers_and_sentences_say_the_registrys_verdicts():
    table = _table({"softmax": 0.02, "ova": 0.0, "asymmetric_softmax": -0.01}).assign(expert_p=None, data_seed=None)
    table["frac_estimates_above_1"] = 0.0
    numbers = report.study_numbers("increasing_experts", table, "mog")
    assert numbers["softmax_first"] == pytest.approx(0.12) and numbers["softmax_last"] == pytest.approx(0.18)
    assert numbers["softmax_verdict"].startswith("changes by +0.0600 [")
    assert numbers["softmax_verdict"].endswith("(the paper: +0.0921; *m* = 0.0461): **reproduced**")
    assert numbers["ova_verdict"].endswith("(the paper: -0.0046; *m* = ±0.0200): **holds**")
    assert numbers["asymmetric_softmax_verdict"].startswith("changes by -0.0300 [")
    assert numbers["asymmetric_softmax_verdict"].endswith("(no claim of the paper)")
    text = report.trend_sentences("increasing_experts", "mog", table)
    assert text.startswith("Softmax: 0.1200 at J = 1, 0.1800 at J = 4; it changes by +0.0600")


def test_ranking_and_its_stability():
    table = _table({"softmax": 0.02, "ova": 0.0})
    for col in ("ece_10", "ece_30", "ece_adaptive", "smooth_ece", "ece_uncapped", "brier"):
        table[col] = table["ece"]
    table.loc[table.method == "ova", "ece_adaptive"] += 1.0  # make OvA worst under one binning
    ranking = aggregate.method_ranking(table)
    assert ranking.loc["ECE, 20 bins (the paper's)", "ranking (best first)"] == "ova < softmax"
    assert not aggregate.ranking_is_stable(ranking, list(ranking.index[:4]))
    assert aggregate.ranking_is_stable(ranking, list(ranking.index[:3]))


def test_describe_results_says_plainly_when_there_are_none():
    text = pages.describe_results("specialized_experts", None, None, "paper")
    assert text.startswith("No cifar10 results for profile `paper` exist yet: they need a GPU")
    assert "`python -m l2dlib run specialized_experts --dataset cifar10 --profile paper --device cuda`" in text
    assert pages.missing_results("increasing_experts", "mog", "quick") == (
        "No mog results for profile `quick` exist yet (`python -m l2dlib run increasing_experts --dataset mog "
        "--profile quick`)."
    )


def test_below_all_others_counts_failed_classifiers():
    table = _table({"softmax": 0.0, "ova": 0.0, "asymmetric_softmax": 0.0})
    table["expert_p"] = None
    bad = (table.method == "asymmetric_softmax") & (table.seed == 1) & (table.num_experts == 4)
    table.loc[bad, "system_accuracy"] = 0.5
    out = aggregate.below_all_others(table, "asymmetric_softmax", "system_accuracy")
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


def test_the_findings_table_lists_each_regimes_verdicts_and_a_dash_where_it_has_none():
    results = pages.regimes(None, ["paper", "faithful"])
    table = report.findings(results)
    mog = results["mog", "paper"].set_index("claim")["verdict"]
    cifar_keys = [k for k in results if k[0] == "cifar10"]
    assert cifar_keys == [("cifar10", "frozen_features"), ("cifar10", "cpu_end_to_end")]  # shown, then beside it
    cifar = {k: results[k].set_index("claim")["verdict"] for k in cifar_keys}
    assert list(table.columns[:4]) == ["claim", "the paper", "MoG, our schedule", "MoG, the authors' schedule"]
    for row in table.itertuples(index=False):
        row = dict(zip(table.columns, row))
        assert row["MoG, our schedule"] == mog.get(row["claim"], "-")
        for key, verdicts in cifar.items():
            assert row[claims.SHORT_REGIMES[key]] == verdicts.get(row["claim"], "-")
    assert set(mog.index).union(*(set(v.index) for v in cifar.values())) == set(table["claim"])
    html = pages.findings_html(table)
    assert html.count("<tr>") == len(table) + 1 and "text-align: right" not in html


def test_the_bottom_line_answers_each_question_from_the_verdicts():
    results = pages.regimes(None, ["paper"])
    sentences = report.bottom_line(results)
    assert len(sentences) == len(report.QUESTIONS)
    mog = results["mog", "paper"].set_index("key")
    gap = mog.loc["mog_gap"]
    lo, hi = gap["95% interval"]
    assert sentences[0].startswith("**Is softmax less calibrated than OvA?** MoG, our schedule: ")
    assert (
        f"{report.PLAIN[gap['verdict']]} ({gap['statistic']}: {gap['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        in sentences[0]
    )
    html = pages.bottom_line_html(sentences)
    assert html.startswith("<ul><li><strong>Is softmax less calibrated than OvA?</strong>") and html.count("<li>") == 6
    assert "(Bonferroni" not in report.claims_markdown(results, "mog")  # only with a level
    n, level = report.family(results)
    assert n == sum(len(v) for v in results.values()) and level == pytest.approx(1 - 0.05 / n)


def test_below_all_others_counts_each_data_draw_as_its_own_model():
    # The same seeds and J on two draws of the data are two models each (the draws tables).
    one = _table({"softmax": 0.0, "asymmetric_softmax": 0.0}).assign(expert_p=None)
    table = pd.concat([one.assign(data_seed=0), one.assign(data_seed=1)], ignore_index=True)
    bad = (table.method == "asymmetric_softmax") & (table.data_seed == 1) & (table.seed == 1)
    table.loc[bad, "system_accuracy"] = 0.1
    out = aggregate.below_all_others(table, "asymmetric_softmax", "system_accuracy")
    assert out["models"] == 2 * aggregate.below_all_others(one, "asymmetric_softmax", "system_accuracy")["models"]
    assert out["count"] == table[bad].groupby("num_experts").ngroups


def test_the_cap_table_against_hand_computed_means():
    from l2dlib.pages import cap_table

    rows = []
    for j in (1, 2):
        for seed, (frac, capped, raw, ova) in enumerate(((0.2, 0.05, 0.10, 0.03), (0.1, 0.03, 0.06, 0.01))):
            for expert in range(j):
                common = dict(seed=seed, num_experts=j, expert=expert)
                rows.append(
                    dict(method="softmax", frac_estimates_above_1=frac * j, ece=capped, ece_uncapped=raw, **common)
                )
                rows.append(dict(method="ova", frac_estimates_above_1=0.0, ece=ova, ece_uncapped=ova, **common))
    table = cap_table(pd.DataFrame(rows)).set_index("J")
    assert table.loc[1, "softmax estimates > 1"] == "15.0%" and table.loc[2, "softmax estimates > 1"] == "30.0%"
    assert table.loc[1, "softmax ECE, capped"] == "0.0400" and table.loc[1, "softmax ECE, uncapped"] == "0.0800"
    assert table.loc[2, "gap to OvA, capped"] == "0.0200" and table.loc[2, "gap to OvA, uncapped"] == "0.0600"
