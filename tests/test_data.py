import numpy as np
import pytest
import torch

from l2dlib.data import mog
from l2dlib.data.mog import PAPER, draw_params, make_mog
from l2dlib.experts import oracle, random_expert
from l2dlib.metrics import ece


def test_splits_are_separate_draws_of_the_given_size():
    d = make_mog(PAPER, 2000)
    for split in ("train", "val", "test"):
        assert len(d.y[split]) == sum(PAPER.counts(2000)) == 2000  # 436 + 436 + 564 + 564
        counts = torch.bincount(d.y[split]).tolist()
        assert counts == [436, 436, 564, 564]
    assert not torch.equal(d.x["train"][:10], d.x["val"][:10])  # not one draw cut in three
    assert d.x["train"].shape[1] == 2 and d.num_classes == 4
    assert "the paper's parameters" in d.label


def test_mog_is_deterministic_and_standardized_on_train():
    a, b = make_mog(PAPER, 2000), make_mog(PAPER, 2000)
    assert a.fingerprint == b.fingerprint and make_mog(PAPER, 2000, seed=1).fingerprint != a.fingerprint
    s = make_mog(PAPER, 2000, standardize=True)
    torch.testing.assert_close(s.x["train"].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.x["train"].std(0), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.equal(s.y["test"], a.y["test"])


def test_our_generator_draws_differ_and_seed_0_is_the_easy_one():
    assert draw_params(0) == draw_params(0) and draw_params(0) != draw_params(1)
    assert mog.bayes_accuracy(draw_params(0), step=0.05) > 0.99  # clusters 1 and 2 lie apart


def test_bayes_accuracy_of_the_paper_parameters_against_monte_carlo():
    exact = mog.bayes_accuracy(PAPER)
    x, y = mog.sample(PAPER, 200_000, np.random.default_rng(0))
    monte_carlo = (mog.posteriors(PAPER, x).argmax(1) == y).mean()
    assert exact == pytest.approx(0.888, abs=0.002)
    assert exact == pytest.approx(monte_carlo, abs=0.005)
    # With an oracle on clusters 2 and 3 to defer to, the best system does better.
    system = mog.bayes_accuracy(PAPER, (oracle((2, 3)),))
    post = mog.posteriors(PAPER, x)
    q = mog.expert_correct_prob([oracle((2, 3))], post)[:, 0]
    # Monte Carlo: defer where the expert is likelier right; it is right on clusters 2, 3
    # and one time in four elsewhere.
    expert_right = np.isin(y, (2, 3)) | (np.random.default_rng(1).random(len(y)) < 0.25)
    simulated = np.where(q > post.max(1), expert_right, post.argmax(1) == y).mean()
    assert system > exact and system == pytest.approx(simulated, abs=0.005)


def test_noise_floor_against_a_direct_simulation():
    floor, spread = mog.noise_floor(PAPER, (random_expert(),), 3000, repeats=40, seed=0)
    # A random expert is right 1/4 of the time everywhere: its calibrated estimate is 0.25,
    # and the ECE of a constant estimate is |observed frequency - 0.25|.
    rng = np.random.default_rng(1)
    direct = [ece(np.full(3000, 0.25), rng.random(3000) < 0.25) for _ in range(400)]
    assert floor == pytest.approx(np.mean(direct), abs=0.002)
    assert spread == pytest.approx(np.std(direct), rel=0.35)
    big, _ = mog.noise_floor(PAPER, (oracle((2, 3)),), 20_000, repeats=20)
    small, _ = mog.noise_floor(PAPER, (oracle((2, 3)),), 3000, repeats=20)
    assert big < small  # more test points, less noise


def test_the_faithful_profile_is_the_authors_schedule_on_raw_inputs():
    import math

    from l2dlib.batch import load_data
    from l2dlib.profiles import get_profile

    prof = get_profile("mog", "faithful")
    # Their SGD on a loss in bits: lr 0.001 and weight decay 5e-4 there are these in nats.
    assert prof.train.lr * math.log(2) == pytest.approx(0.001) and prof.train.weight_decay / math.log(
        2
    ) == pytest.approx(5e-4)
    assert (prof.train.batch_size, prof.train.max_epochs, prof.train.patience) == (1024, 200, 50)
    assert prof.data_seeds is None and not prof.standardize
    raw = load_data(prof, torch.device("cpu"))
    assert raw.fingerprint == make_mog(PAPER, prof.points).fingerprint  # the paper's data, not rescaled
    ours = load_data(get_profile("mog", "paper"), torch.device("cpu"))
    assert abs(float(ours.x["train"].mean())) < 1e-4 < abs(float(raw.x["train"].mean()))


def test_the_random_experts_noise_floor_is_the_analytic_one():
    """All of a random expert's points have P(right) = 1/4 exactly, so its floor is
    E|X/N - 1/4| for X ~ Binomial(N, 1/4), computed here from the binomial pmf."""
    import math

    n, q = 2000, 0.25
    k = np.arange(n + 1)
    log_pmf = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    log_pmf += k * math.log(q) + (n - k) * math.log(1 - q)
    analytic = float((np.exp(log_pmf) * np.abs(k / n - q)).sum())
    floor, sd = mog.noise_floor(mog.PAPER, (random_expert(),), n, repeats=400)
    assert abs(floor - analytic) < 3 * sd / 400**0.5, (floor, analytic)


def test_a_fresh_test_draw_per_seed_keeps_training_and_validation():
    base, fresh = make_mog(PAPER, 2000, standardize=True), make_mog(PAPER, 2000, standardize=True, test_seed=3)
    for split in ("train", "val"):
        assert torch.equal(base.x[split], fresh.x[split]) and torch.equal(base.y[split], fresh.y[split])
    assert not torch.equal(base.x["test"], fresh.x["test"])
    assert torch.equal(base.y["test"], fresh.y["test"])  # the same cluster counts, in order
    assert torch.equal(make_mog(PAPER, 2000, test_seed=0).x["test"], make_mog(PAPER, 2000).x["test"])
