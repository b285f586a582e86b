import pytest
import torch

from l2dlib import experts as E


def _labels(n=20_000, k=4):
    return torch.randint(k, (n,), generator=torch.Generator().manual_seed(0))


def test_oracle_is_right_on_its_region_and_random_elsewhere():
    y = _labels()
    pred = E.oracle((2, 3)).predict(y, 4, torch.Generator().manual_seed(1))
    region = (y == 2) | (y == 3)
    assert bool((pred[region] == y[region]).all())
    assert (pred[~region] == y[~region]).float().mean().item() == pytest.approx(0.25, abs=0.015)


def test_random_expert_is_right_one_time_in_k():
    y = _labels(k=10)
    pred = E.random_expert().predict(y, 10, torch.Generator().manual_seed(2))
    assert (pred == y).float().mean().item() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("p", [0.2, 0.95])
def test_probabilistic_expert_rate(p):
    y = _labels()
    pred = E.probabilistic((0, 1, 2, 3), p).predict(y, 4, torch.Generator().manual_seed(3))
    # right with p, else a uniform guess that is right 1/K of the time
    assert (pred == y).float().mean().item() == pytest.approx(p + (1 - p) / 4, abs=0.015)


def test_draws_are_seeded_per_expert_and_split():
    y = _labels(1000)
    experts = [E.random_expert(), E.random_expert()]
    a = E.draw_predictions(experts, y, 4, seed=0, split="train")
    assert torch.equal(a, E.draw_predictions(experts, y, 4, seed=0, split="train"))
    assert not torch.equal(a[:, 0], a[:, 1])  # two experts, two streams
    assert not torch.equal(a, E.draw_predictions(experts, y, 4, seed=0, split="test"))
    assert not torch.equal(a, E.draw_predictions(experts, y, 4, seed=1, split="train"))


def test_bad_input():
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\], got 1.5"):
        E.probabilistic((0,), 1.5)
    with pytest.raises(ValueError, match="unknown expert kind"):
        E.Expert("genius")
