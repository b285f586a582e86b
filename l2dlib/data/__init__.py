"""Datasets as device-resident tensors, split into train / val / test."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")
DATASETS = ("mog", "cifar10", "cifar10h", "cifar10n")
HUMAN_DATASETS = ("cifar10h", "cifar10n")  # CIFAR-10 images with real annotators as experts


@dataclass
class Dataset:
    """Features and labels per split. ``x[split]`` is [N, ...], ``y[split]`` is [N] int64.

    ``label`` names the data wherever it is shown (e.g. that a CIFAR-10 copy is
    non-canonical); ``fingerprint`` is a sha256 of the bytes, recorded in provenance.
    ``index[split]`` [N] int64, where known, is each example's position in the official
    file it came from (CIFAR-10: train and val in the 50,000 training images, test in the
    10,000 test images), which per-image data such as human labels are published against.
    Human-expert datasets (:mod:`l2dlib.data.crowds`) add per split the annotators' ``crowd``
    counts [N, K] and, where recorded, the ``workers``' labels [N, W] (int64, on the CPU),
    and may hold a split ``shift`` beside the three. ``tail_state``: where x is the output of a
    frozen network's first layers (profile ``cpu_end_to_end``), the weights its trainable
    rest starts from (:class:`~l2dlib.models.FastTail`).
    """

    name: str
    num_classes: int
    x: dict[str, Tensor]
    y: dict[str, Tensor]
    label: str
    fingerprint: str = field(default="")
    index: dict[str, Tensor] | None = None
    crowd: dict[str, Tensor] | None = None
    workers: dict[str, Tensor] | None = None
    tail_state: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(*(t for s in SPLITS for t in (self.x[s], self.y[s])))

    def to(self, device: str | torch.device) -> Dataset:
        return Dataset(
            self.name,
            self.num_classes,
            {s: t.to(device) for s, t in self.x.items()},
            {s: t.to(device) for s, t in self.y.items()},
            self.label,
            self.fingerprint,
            None if self.index is None else dict(self.index),
            self.crowd,
            self.workers,
            self.tail_state,
        )


def fingerprint(*tensors: Tensor) -> str:
    """sha256 over the raw bytes of the tensors, in order."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[Tensor]:
    """A seeded random partition of range(n) into parts of the given fractions (last takes the rest)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [int(n * f) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return list(torch.split(perm, sizes))
