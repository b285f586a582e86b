"""Simulated experts, as data.

An expert is competent on a set of labels (its region): there it returns the true label
with probability ``p`` and otherwise a label drawn uniformly from all K classes (which may
still be right by chance); off its region it always draws uniformly. So an oracle is
``p=1`` on its region, a random expert has an empty region, and its chance of being right
anywhere it guesses is 1/K.

Predictions are drawn once per split (a person labels an item once) from a generator
seeded by (study seed, expert index, split), so reruns are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .rng import generator

KINDS = ("oracle", "random", "probabilistic", "specialist", "authors")
# The expert of the authors' MoG script: right with probability 0.7 on labels {1, 2} and 0.2
# elsewhere (else a uniform guess). They redraw its labels at every batch; we draw them once
# per split, as for every expert here.
AUTHORS_REGION, AUTHORS_P, AUTHORS_P_ELSEWHERE = (1, 2), 0.7, 0.2


@dataclass(frozen=True)
class Expert:
    """One simulated expert: ``kind`` (a label for tables), its ``region`` and ``p``."""

    kind: str
    region: tuple[int, ...] = ()
    p: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown expert kind {self.kind!r}: expected one of {KINDS}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"expert correctness probability p must lie in [0, 1], got {self.p}")

    @property
    def p_elsewhere(self) -> float:
        """Probability of knowing the label off the region: 0, except for the authors' expert."""
        return AUTHORS_P_ELSEWHERE if self.kind == "authors" else 0.0

    def predict(self, y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
        """Predictions [N] for true labels ``y`` [N] (int64, on the CPU)."""
        n = y.shape[0]
        guess = torch.randint(num_classes, (n,), generator=generator)
        in_region = torch.isin(y, torch.tensor(self.region, dtype=y.dtype))
        informed = torch.rand(n, generator=generator) < torch.where(in_region, self.p, self.p_elsewhere)
        return torch.where(informed, y, guess)


def oracle(region) -> Expert:
    return Expert("oracle", tuple(region), 1.0)


def random_expert() -> Expert:
    return Expert("random", (), 1.0)


def probabilistic(region, p: float) -> Expert:
    return Expert("probabilistic", tuple(region), float(p))


def specialist(region) -> Expert:
    return Expert("specialist", tuple(region), 1.0)


def authors_expert() -> Expert:
    return Expert("authors", AUTHORS_REGION, AUTHORS_P)


_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


# Stream 1 of every seed is the experts' (see l2dlib.rng); the split picks a sub-stream.
EXPERT_STREAM = 1


def expert_generator(seed: int, expert_index: int, split: str) -> torch.Generator:
    """A CPU generator seeded from (study seed, expert index, split)."""
    return generator(seed, EXPERT_STREAM, expert_index, _SPLIT_IDS[split])


def draw_predictions(experts: list[Expert], y: Tensor, num_classes: int, seed: int, split: str) -> Tensor:
    """Predictions of every expert on one split, [N, J] int64 (on the CPU)."""
    y = y.cpu()
    cols = [e.predict(y, num_classes, expert_generator(seed, j, split)) for j, e in enumerate(experts)]
    return torch.stack(cols, dim=1)
