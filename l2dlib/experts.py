"""Simulated experts, as data.

An expert is competent on a set of labels (its region): there it returns the true label
with probability ``p`` and otherwise a label drawn uniformly from all K classes (which may
still be right by chance); off its region it always draws uniformly. So an oracle is
``p=1`` on its region, a random expert has an empty region, and its chance of being right
anywhere it guesses is 1/K.

Human experts (CIFAR-10H and CIFAR-10N, see :mod:`l2dlib.data.crowds`) are data too:

- a *crowd member* (kind ``crowd``) labels each image of its region with a label drawn from
  the image's annotators (their counts), except that with probability ``p`` it gives the
  true label (``p = 0``: a plain crowd member); off its region it guesses uniformly;
- a *worker* (kind ``worker``) is CIFAR-10N's recorded worker ``slot`` (its labels as
  given); on a split without recorded workers (the shifted-crowd test images) it is a crowd
  member drawn from that split's annotators.

Predictions are drawn once per split (a person labels an item once) from a generator
seeded by (study seed, expert index, split), so reruns are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .rng import generator

KINDS = ("oracle", "random", "probabilistic", "specialist", "authors", "crowd", "worker")
# The expert of the authors' MoG script: right with probability 0.7 on labels {1, 2} and 0.2
# elsewhere (else a uniform guess). They redraw its labels at every batch; we draw them once
# per split, as for every expert here.
AUTHORS_REGION, AUTHORS_P, AUTHORS_P_ELSEWHERE = (1, 2), 0.7, 0.2


@dataclass(frozen=True)
class Expert:
    """One expert: ``kind`` (a label for tables), its ``region`` and ``p``; a worker's
    ``slot`` (None for every other kind)."""

    kind: str
    region: tuple[int, ...] = ()
    p: float = 1.0
    slot: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown expert kind {self.kind!r}: expected one of {KINDS}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"expert correctness probability p must lie in [0, 1], got {self.p}")
        if (self.slot is not None) != (self.kind == "worker"):
            raise ValueError(
                f"a worker needs its slot and no other kind has one, got kind {self.kind!r}, slot {self.slot}"
            )

    def as_dict(self) -> dict:
        """What identifies the expert (cache keys hash it): a slot only where there is one,
        so the simulated experts' keys are what they were before workers existed."""
        d = {"kind": self.kind, "region": self.region, "p": self.p}
        return d if self.slot is None else d | {"slot": self.slot}

    @property
    def p_elsewhere(self) -> float:
        """Probability of knowing the label off the region: 0, except for the authors' expert."""
        return AUTHORS_P_ELSEWHERE if self.kind == "authors" else 0.0

    def predict(
        self,
        y: Tensor,
        num_classes: int,
        generator: torch.Generator,
        crowd: Tensor | None = None,
        workers: Tensor | None = None,
    ) -> Tensor:
        """Predictions [N] for true labels ``y`` [N] (int64, on the CPU); human experts read
        the images' annotator ``crowd`` counts [N, K] or recorded ``workers`` [N, W]."""
        n = y.shape[0]
        if self.kind == "worker":
            if workers is not None:
                return workers[:, self.slot].clone()
            return Expert("crowd", tuple(range(num_classes)), 0.0).predict(y, num_classes, generator, crowd)
        guess = torch.randint(num_classes, (n,), generator=generator)
        in_region = torch.isin(y, torch.tensor(self.region, dtype=y.dtype))
        informed = torch.rand(n, generator=generator) < torch.where(in_region, self.p, self.p_elsewhere)
        if self.kind == "crowd":
            if crowd is None:
                raise ValueError("a crowd member needs the images' annotator counts (a human-expert dataset)")
            member = torch.where(in_region, sample_annotator(crowd, generator), guess)
            return torch.where(informed & in_region, y, member)
        return torch.where(informed, y, guess)


def sample_annotator(counts: Tensor, generator: torch.Generator) -> Tensor:
    """One annotator's label per row of ``counts`` [N, K] (int64): class k with probability
    counts[k] / sum, by an integer inverse CDF (exact, the same on every machine)."""
    total = counts.sum(1)
    pick = (torch.rand(len(counts), generator=generator, dtype=torch.float64) * total).floor().long()
    return (counts.cumsum(1) <= pick[:, None]).sum(1)


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


def crowd_member(region, p: float = 0.0) -> Expert:
    return Expert("crowd", tuple(region), float(p))


def worker(slot: int) -> Expert:
    return Expert("worker", (), 1.0, int(slot))


_SPLIT_IDS = {"train": 0, "val": 1, "test": 2, "shift": 3}


# Stream 1 of every seed is the experts' (see l2dlib.rng); the split picks a sub-stream.
EXPERT_STREAM = 1


def expert_generator(seed: int, expert_index: int, split: str) -> torch.Generator:
    """A CPU generator seeded from (study seed, expert index, split)."""
    return generator(seed, EXPERT_STREAM, expert_index, _SPLIT_IDS[split])


def draw_predictions(
    experts: list[Expert],
    y: Tensor,
    num_classes: int,
    seed: int,
    split: str,
    crowd: Tensor | None = None,
    workers: Tensor | None = None,
) -> Tensor:
    """Predictions of every expert on one split, [N, J] int64 (on the CPU); ``crowd`` and
    ``workers``: the split's human labels, where the dataset has them."""
    y = y.cpu()
    cols = [e.predict(y, num_classes, expert_generator(seed, j, split), crowd, workers) for j, e in enumerate(experts)]
    return torch.stack(cols, dim=1)
