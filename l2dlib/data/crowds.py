"""The human-expert datasets: the CPU profile's CIFAR-10 features with real annotators.

- ``cifar10h``: the 10,000 test images (which the feature extractor has not seen), each with
  its CIFAR-10H counts, in a seeded partition of :data:`FRACTIONS` (6,000 / 1,000 / 3,000)
  into train, val and test, as is usual since Mozannar & Sontag (2020).
- ``cifar10n``: the 23,000 training images the extractor has not seen (the heads' part of
  the train split and the val split), each with its three CIFAR-10N workers (and their
  counts as its crowd), in the same seeded partition (13,800 / 2,300 / 6,900); plus the
  split ``shift``: the 10,000 test images with their CIFAR-10H counts, on which the
  shifted-crowd study judges heads trained with CIFAR-10N workers.

On synthetic images (the smoke profile) the labels are synthetic too: 50 annotators right
with probability 0.9 per image, three workers right with probability 0.8.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from . import SPLITS, Dataset, split_indices
from .human import CIFAR10H, CIFAR10N, cifar10h_counts, cifar10n_workers, counts_of, crowd_accuracy

FRACTIONS = (0.6, 0.1, 0.3)  # train, val, test of the images with human labels
SPLIT_SEED = 0
# The releases each dataset's labels come from (cifar10n: its own, then its shifted test's).
RELEASES = {"cifar10h": (CIFAR10H,), "cifar10n": (CIFAR10N, CIFAR10H)}
SYNTHETIC = "synthetic annotators"  # the smoke profile's labels, and the end of its data label


def crowd_dataset(
    name: str, features: Dataset, data_dir: str | os.PathLike | None = None, *, synthetic: bool = False
) -> Dataset:
    """The human-expert dataset ``name`` (cifar10h | cifar10n) on CIFAR-10 ``features`` (from
    :func:`l2dlib.features.feature_dataset`, with their official ``index``)."""
    if features.index is None:
        raise ValueError("human labels need each image's official index (features of load_cifar10's images)")
    if name == "cifar10h":
        test = _cifar10h(features, data_dir, synthetic)
        pool = {"x": features.x["test"], "y": features.y["test"], "index": features.index["test"], "crowd": test}
        shift = None
    elif name == "cifar10n":
        rec = _cifar10n(features, data_dir, synthetic)
        pool = {
            k: torch.cat([features_of[s] for s in ("train", "val")])
            for k, features_of in (("x", features.x), ("y", features.y), ("index", features.index))
        }
        pool["workers"] = torch.from_numpy(rec[pool["index"].numpy()])
        pool["crowd"] = torch.from_numpy(counts_of(pool["workers"].numpy()))
        shift = _cifar10h(features, data_dir, synthetic)
    else:
        raise ValueError(f"unknown human-expert dataset {name!r}: expected cifar10h or cifar10n")
    parts = dict(zip(SPLITS, (p.sort().values for p in split_indices(len(pool["y"]), FRACTIONS, SPLIT_SEED))))
    device = features.x["train"].device
    x = {s: pool["x"][i.to(device)] for s, i in parts.items()}
    y = {s: pool["y"][i.to(device)] for s, i in parts.items()}
    index = {s: pool["index"][i] for s, i in parts.items()}
    crowd = {s: pool["crowd"][i] for s, i in parts.items()}
    workers = {s: pool["workers"][i] for s, i in parts.items()} if name == "cifar10n" else None
    if shift is not None:
        x["shift"], y["shift"], index["shift"], crowd["shift"] = (
            features.x["test"],
            features.y["test"],
            features.index["test"],
            shift,
        )
    release = RELEASES[name][0]
    labels = SYNTHETIC if synthetic else f"{release.name} annotators ({release.licence})"
    made = f"{features.fingerprint}:{name}:{FRACTIONS}:{SPLIT_SEED}:{synthetic}"
    return Dataset(
        name=name,
        num_classes=features.num_classes,
        x=x,
        y=y,
        label=f"{features.label}; {labels}",
        fingerprint=hashlib.sha256(made.encode()).hexdigest(),
        index=index,
        crowd=crowd,
        workers=workers,
    )


def _cifar10h(features: Dataset, data_dir, synthetic: bool) -> torch.Tensor:
    """CIFAR-10H counts [N_test, K] of the features' test images (checked against their labels)."""
    index, y = features.index["test"].numpy(), features.y["test"].cpu().numpy()
    counts = _synthetic_votes(y, 50, 0.9, seed=1) if synthetic else cifar10h_counts(data_dir, index, y)[index]
    return torch.from_numpy(counts)


def _cifar10n(features: Dataset, data_dir, synthetic: bool) -> np.ndarray:
    """The three CIFAR-10N workers' labels [N_official, 3] by official train index (checked
    against the labels of the training images the features hold)."""
    index = np.concatenate([features.index[s].numpy() for s in ("train", "val")])
    y = np.concatenate([features.y[s].cpu().numpy() for s in ("train", "val")])
    if not synthetic:
        return cifar10n_workers(data_dir, index, y)
    full = np.zeros(int(index.max()) + 1, dtype=np.int64)
    full[index] = y
    return np.stack([_synthetic_labels(full, 0.8, seed=2 + k) for k in range(3)], axis=1)


def _synthetic_labels(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    guess = rng.integers(0, 10, len(y))
    return np.where(rng.random(len(y)) < accuracy, y, guess)


def _synthetic_votes(y: np.ndarray, voters: int, accuracy: float, seed: int) -> np.ndarray:
    return counts_of(np.stack([_synthetic_labels(y, accuracy, seed * 1000 + v) for v in range(voters)], axis=1))


def summary(data: Dataset) -> dict | None:
    """For a human-expert dataset: the releases whose labels it uses (licence, source, md5),
    and per split how often a random annotator of an image is right (exact, from the
    counts) and each recorded worker's accuracy; None for simulated experts."""
    if data.crowd is None:
        return None
    releases = () if data.label.endswith(SYNTHETIC) else RELEASES[data.name]  # synthetic: nothing to cite
    out = {
        "releases": [
            {k: getattr(r, k) for k in ("name", "licence", "source", "url", "md5", "covers")} for r in releases
        ],
        "crowd_accuracy": {s: crowd_accuracy(c.numpy(), data.y[s].cpu().numpy()) for s, c in data.crowd.items()},
    }
    own = [s for s in data.crowd if s != "shift"]  # every image of the dataset (not the shifted test images)
    counts = torch.cat([data.crowd[s] for s in own]).numpy()
    out["crowd_accuracy"]["all"] = crowd_accuracy(counts, torch.cat([data.y[s].cpu() for s in own]).numpy())
    if data.workers is not None:
        out["worker_accuracy"] = {
            s: [float((w[:, k] == data.y[s].cpu()).double().mean()) for k in range(w.shape[1])]
            for s, w in data.workers.items()
        }
    return out
