"""Eqs. 1-3, the rejector and the system prediction on hand-made cases."""

import pytest
import torch

from l2dlib import estimators


def _bayes_softmax_logits(eta, q):
    """Logits whose softmax is Eq. 1's optimum: p_k = eta_k / (1 + sum q), p_perp_j = q_j / (1 + sum q)."""
    z = 1 + q.sum(-1, keepdim=True)
    return torch.log(torch.cat([eta / z, q / z], -1))


def test_eq2_inverts_eq1_exactly():
    gen = torch.Generator().manual_seed(0)
    eta = torch.softmax(torch.randn(500, 10, generator=gen, dtype=torch.float64), -1)
    q = torch.rand(500, 8, generator=gen, dtype=torch.float64)
    logits = _bayes_softmax_logits(eta, q)
    est = estimators.expert_correctness(logits, 10, "softmax").double()
    torch.testing.assert_close(est, q, rtol=1e-6, atol=1e-7)


def test_eq2_as_written_in_the_paper():
    """Our stable form equals p_perp_j / (1 - sum_j' p_perp_j') computed literally."""
    logits = torch.tensor([[1.0, 0.2, -0.5, 2.5, 0.7]])
    p = torch.softmax(logits, -1)
    literal = p[:, 3:] / (1 - p[:, 3:].sum(-1, keepdim=True))
    torch.testing.assert_close(estimators.expert_correctness(logits, 3, "softmax"), literal)
    assert literal[0, 0] > 1  # a degenerate (above 1) estimate is kept raw


def test_ova_is_sigmoid_of_deferral_score():
    logits = torch.tensor([[0.0, 1.0, 2.0, -2.0]])
    expected = torch.sigmoid(torch.tensor([[2.0, -2.0]]))
    torch.testing.assert_close(estimators.expert_correctness(logits, 2, "ova"), expected)


def test_asymmetric_softmax_estimate_is_bounded_and_matches_its_formula():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(200, 7, generator=gen, dtype=torch.float64) * 6
    est = estimators.expert_correctness(logits, 4, "asymmetric_softmax")
    e = logits.exp()
    rest = e[:, :4].sum(1, keepdim=True) - e[:, :4].max(1, keepdim=True).values
    torch.testing.assert_close(est, e[:, 4:] / (e[:, 4:] + rest))
    assert bool(((est > 0) & (est < 1)).all())
    # the shared rejector rule: defer to j exactly when psi_j beats the top class probability
    top_class = torch.softmax(logits[:, :4], 1).max(1).values
    beats = est.max(1).values > top_class
    assert torch.equal(estimators.defer(logits, 4, "asymmetric_softmax") > 0, beats)


def test_decoupled_estimate_and_rejector_compare_probabilities():
    """sigmoid of the expert's own score; defer exactly when the best expert's probability
    beats the top class probability, even where the raw scores say otherwise."""
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(400, 7, generator=gen, dtype=torch.float64) * 4
    est = estimators.expert_correctness(logits, 4, "decoupled")
    torch.testing.assert_close(est, torch.sigmoid(logits[:, 4:]))
    top_class = torch.softmax(logits[:, :4], 1).max(1).values
    best, which = est.max(1)
    expected = torch.where(best > top_class, which + 1, torch.zeros_like(which))
    assert torch.equal(estimators.defer(logits, 4, "decoupled"), expected)
    # the score rule would differ on some rows: the decoupled rule is not the shared one
    assert not torch.equal(estimators.defer(logits, 4, "ova"), expected)
    # by hand: classes [2, 0] (top probability 0.881) against expert scores 1.5 (0.818: keep)
    # and 2.5 (0.924: defer); here both rules agree
    hand = torch.tensor([[2.0, 0.0, 1.5], [2.0, 0.0, 2.5]])
    assert estimators.defer(hand, 2, "decoupled").tolist() == [0, 1]
    # where they do not: top class 0.5 < sigmoid(1) = 0.731 defers, though the score 1 < 3
    hand = torch.tensor([[3.0, 3.0, 1.0]])
    assert estimators.defer(hand, 2, "decoupled").tolist() == [1]
    assert estimators.defer(hand, 2, "softmax").tolist() == [0]


def test_pointwise_minimisers_satisfy_eqs_1_to_3():
    from l2dlib import theory

    gen = torch.Generator().manual_seed(0)
    eta = torch.softmax(torch.randn(5, generator=gen, dtype=torch.float64), 0)
    q = torch.rand(3, generator=gen, dtype=torch.float64)
    checks = theory.check_equations(eta, q)
    for col in ("Eq. 2 estimate", "Eq. 3 estimate", "asymmetric softmax estimate", "decoupled estimate"):
        assert (checks[col] - checks["q_j"]).abs().max() < 1e-6, col
    assert (checks["p*_perp_j (softmax minimiser)"] - checks["Eq. 1: q_j / (1 + sum q)"]).abs().max() < 1e-6


def test_rejector_and_system_predictions():
    # K = 3, J = 2. Row 0: classifier wins (class 2). Row 1: expert 1 (index 0) wins.
    # Row 2: expert 2 wins. Row 3: tie between classifier and expert: classifier keeps it.
    logits = torch.tensor(
        [
            [0.0, 1.0, 3.0, 2.0, 1.0],
            [0.0, 1.0, 0.5, 2.0, 1.0],
            [0.0, 1.0, 0.5, 0.2, 4.0],
            [0.0, 2.0, 0.5, 2.0, 1.0],
        ]
    )
    experts = torch.tensor([[0, 0], [2, 1], [0, 1], [2, 2]])
    for method in ("softmax", "ova", "asymmetric_softmax"):
        assert estimators.defer(logits, 3, method).tolist() == [0, 1, 2, 0]
        assert estimators.system_predictions(logits, experts, 3, method).tolist() == [2, 2, 1, 1]


def test_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        estimators.expert_correctness(torch.zeros(1, 4), 3, "bogus")
    with pytest.raises(ValueError, match="K\\+J"):
        estimators.expert_correctness(torch.zeros(1, 3), 3, "ova")


def test_eq2_reads_each_expert_from_its_own_score_and_the_class_scores_only():
    """The derivations page's demo: lowering the class scores multiplies every softmax
    estimate by e^shift and moves no OvA estimate; raising expert 0's score moves expert 0
    alone under either read-out."""
    import math

    from l2dlib import theory

    g = torch.tensor([0.3, -0.2, 0.1, 0.5, -1.0, 0.2])  # K = 3, J = 3
    lowered = theory.shifted_estimates(g, 3, [0.0, 1.5], scores="classes").pivot(index="shift", columns="expert")
    sm, ova = lowered["softmax (Eq. 2)"], lowered["OvA (Eq. 3)"]
    assert (sm.loc[1.5] / sm.loc[0.0]).to_numpy() == pytest.approx([math.exp(1.5)] * 3, rel=1e-5)
    assert (ova.loc[1.5] == ova.loc[0.0]).all()
    raised = theory.shifted_estimates(g, 3, [0.0, 2.0], scores="expert").pivot(index="shift", columns="expert")
    for col in ("softmax (Eq. 2)", "OvA (Eq. 3)"):
        assert (raised[col].loc[2.0, [1, 2]] == raised[col].loc[0.0, [1, 2]]).all()
        assert raised[col].loc[2.0, 0] > raised[col].loc[0.0, 0]


@pytest.mark.parametrize("method", ["softmax", "ova", "asymmetric_softmax", "decoupled"])
def test_the_closed_form_bayes_risk_is_the_minimum_of_the_pointwise_risk(method):
    from l2dlib import theory

    eta, q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), torch.tensor([0.9, 0.4], dtype=torch.float64)
    g = theory.minimise_pointwise_risk(eta, q, method)
    best = theory.minimal_risk(eta, q, method)
    assert float(theory.pointwise_risk(g, eta, q, method)) == pytest.approx(float(best), abs=1e-7)
    # Any other scores do worse: the gap to the Bayes risk is 0 at the optimum only.
    for shift in (torch.tensor([0.3, 0, 0, 0, 0]), torch.tensor([0, 0, 0, -0.5, 0.2])):
        assert float(theory.pointwise_risk(g + shift.double(), eta, q, method)) > float(best) + 1e-4
    # A posterior too small to divide without underflow still gives a finite risk.
    tiny = torch.tensor([1.0, 5e-324], dtype=torch.float64)
    assert torch.isfinite(theory.minimal_risk(tiny, torch.tensor([0.5], dtype=torch.float64), method))
    # A certain expert and a certain class cost nothing under OvA.
    if method == "ova":
        zero = theory.minimal_risk(torch.tensor([1.0, 0.0]), torch.tensor([1.0]), method)
        assert float(zero) == 0.0


def test_the_bayes_risk_of_a_mixture_is_the_mean_of_its_pointwise_minima():
    import numpy as np

    from l2dlib import theory
    from l2dlib.data import mog
    from l2dlib.experts import oracle

    x, _ = mog.sample(mog.PAPER, 200, np.random.default_rng(0))
    post = mog.posteriors(mog.PAPER, x)
    experts = (oracle((2, 3)),)
    q = torch.from_numpy(mog.expert_correct_prob(experts, post))
    by_point = [float(theory.minimal_risk(torch.from_numpy(p), qi, "softmax")) for p, qi in zip(post, q)]
    assert mog.bayes_risk(post, experts, "softmax") == pytest.approx(np.mean(by_point), rel=1e-12)


def test_the_decoupled_minimiser_recovers_the_class_posterior_and_every_expert_on_a_grid():
    """Montreuil et al.'s consistency, numerically: at the pointwise minimiser the class
    softmax is eta and each sigmoid is q_j, over a small grid of (eta, q); the rejector
    read off it is then the Bayes rule max_j q_j > max_k eta_k."""
    from l2dlib import theory

    for top in (0.4, 0.7, 0.9):
        eta = torch.tensor([top, (1 - top) * 0.75, (1 - top) * 0.25], dtype=torch.float64)
        for q in ([0.1, 0.5], [0.6, 0.95], [0.85, 0.3]):
            q = torch.tensor(q, dtype=torch.float64)
            g = theory.minimise_pointwise_risk(eta, q, "decoupled")
            torch.testing.assert_close(torch.softmax(g[:3], 0), eta, atol=1e-6, rtol=0)
            torch.testing.assert_close(estimators.expert_correctness(g[None], 3, "decoupled")[0], q, atol=1e-6, rtol=0)
            bayes = int(q.argmax()) + 1 if q.max() > eta.max() else 0
            assert int(estimators.defer(g[None], 3, "decoupled")[0]) == bayes


def test_the_decoupled_weight_moves_no_minimiser(monkeypatch):
    """beta scales the experts' terms only: at beta = 0.3 the minimiser still gives eta and
    every q_j, and the closed-form Bayes risk follows beta."""
    from l2dlib import losses, theory

    monkeypatch.setattr(losses, "DECOUPLED_BETA", 0.3)
    monkeypatch.setattr(theory, "DECOUPLED_BETA", 0.3)
    eta = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    q = torch.tensor([0.2, 0.9], dtype=torch.float64)
    g = theory.minimise_pointwise_risk(eta, q, "decoupled")
    torch.testing.assert_close(torch.softmax(g[:3], 0), eta, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.sigmoid(g[3:]), q, atol=1e-6, rtol=0)
    entropy = lambda p: float(-(p * p.log()).sum())
    binary = sum(entropy(torch.stack([v, 1 - v])) for v in q)
    assert float(theory.minimal_risk(eta, q, "decoupled")) == pytest.approx(entropy(eta) + 0.3 * binary, rel=1e-12)
    assert float(theory.pointwise_risk(g, eta, q, "decoupled")) == pytest.approx(entropy(eta) + 0.3 * binary, abs=1e-9)
