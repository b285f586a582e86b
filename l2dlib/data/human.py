"""Real human labels for the CIFAR-10 images, md5-checked and checked against the images.

- CIFAR-10H (Peterson, Battleday, Griffiths & Russakovsky, ICCV 2019; CC BY-NC-SA 4.0):
  ``<data_dir>/cifar10h/cifar10h-counts.npy``, how many of about 51 people chose each class
  for each of the 10,000 **test** images, in the official test order.
- CIFAR-10N (Wei, Zhu, Cheng, Liu, Niu & Liu, ICLR 2022; CC BY-NC 4.0):
  ``<data_dir>/cifar10n/cifar10n-labels.npz``, three crowd workers' labels
  (``random_label1..3``) for each of the 50,000 **training** images, in the official train
  order, with ``clean_label`` (the CIFAR-10 label).

Human labels line up with images only in the official order: the loader checks CIFAR-10N's
``clean_label`` against the training labels and CIFAR-10H's majority vote against the test
labels, so a shuffled copy of the images is refused with the command that fixes it. The
datasets that train on them are in :mod:`l2dlib.data.crowds`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cifar10_files import resolve_data_dir


@dataclass(frozen=True)
class HumanLabels:
    """One release of human labels: where it lives under the data folder, its md5, licence,
    source and what it covers."""

    name: str
    path: str  # under the data folder
    md5: str
    licence: str
    source: str
    url: str
    covers: str


CIFAR10H = HumanLabels(
    "CIFAR-10H",
    "cifar10h/cifar10h-counts.npy",
    "f1284b6fba48a67d3db69bbafb5685ad",
    "CC BY-NC-SA 4.0",
    "Peterson, Battleday, Griffiths & Russakovsky (2019), Human uncertainty makes classification more robust, ICCV",
    "https://github.com/jcpeterson/cifar-10h",
    "about 51 annotators per image, the 10,000 test images",
)
CIFAR10N = HumanLabels(
    "CIFAR-10N",
    "cifar10n/cifar10n-labels.npz",
    "96f0b406a632e1645b8c19be7f842289",
    "CC BY-NC 4.0",
    "Wei, Zhu, Cheng, Liu, Niu & Liu (2022), Learning with noisy labels revisited: "
    "a study using real-world human annotations, ICLR",
    "https://github.com/UCSC-REAL/cifar-10-100n",
    "three crowd workers per image, the 50,000 training images",
)
#: CIFAR-10H's majority vote disagrees with the test labels on 0.8% of the official images.
MIN_MAJORITY_AGREEMENT = 0.98


def _file(release: HumanLabels, data_dir: str | os.PathLike | None) -> Path:
    path = resolve_data_dir(data_dir) / release.path
    if not path.is_file():
        raise FileNotFoundError(
            f"{release.name} labels not found: {path} is missing. They are {release.covers}, "
            f"released under {release.licence} at {release.url}; copy the folder "
            f"{Path(release.path).parent}/ of the offline data (with its README and licence) into "
            f"{path.parent.parent}, or point data_dir / $L2D_DATA_DIR at a folder that holds it"
        )
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    if md5 != release.md5:
        raise ValueError(f"{path} has md5 {md5}, expected {release.md5} ({release.name}): get the file again")
    return path


def cifar10h_counts(
    data_dir: str | os.PathLike | None = None, index: np.ndarray | None = None, labels: np.ndarray | None = None
) -> np.ndarray:
    """CIFAR-10H: int64 [10000, 10], annotators per class for each test image, in the
    official order. With ``labels`` of the test images at official positions ``index``, the
    majority vote there must agree with them on at least :data:`MIN_MAJORITY_AGREEMENT`."""
    counts = np.load(_file(CIFAR10H, data_dir)).astype(np.int64)
    if counts.ndim != 2 or counts.shape[1] != 10 or (counts < 0).any() or (counts.sum(1) < 1).any():
        raise ValueError(f"CIFAR-10H counts have shape {counts.shape}; expected [N, 10] of counts >= 0, each row > 0")
    if labels is not None:
        _check_order("CIFAR-10H", "test", counts.argmax(1), index, labels, MIN_MAJORITY_AGREEMENT)
    return counts


def cifar10n_workers(
    data_dir: str | os.PathLike | None = None, index: np.ndarray | None = None, labels: np.ndarray | None = None
) -> np.ndarray:
    """CIFAR-10N: int64 [50000, 3], the three workers' labels (slot k gave ``random_label{k+1}``)
    of each training image, in the official order. With ``labels`` of training images at
    official positions ``index``, the release's ``clean_label`` there must equal them."""
    with np.load(_file(CIFAR10N, data_dir)) as z:
        workers = np.stack([z[f"random_label{k}"] for k in (1, 2, 3)], axis=1).astype(np.int64)
        clean = z["clean_label"].astype(np.int64)
    if labels is not None:
        _check_order("CIFAR-10N", "training", clean, index, labels, 1.0)
    return workers


def _check_order(name: str, split: str, release: np.ndarray, index, labels, needed: float) -> None:
    """The release's labels at the images' official positions agree with the images' own."""
    index, labels = np.asarray(index), np.asarray(labels)
    fits = len(index) == len(labels) and (len(index) == 0 or 0 <= index.min() <= index.max() < len(release))
    agreement = float((release[index] == labels).mean()) if fits and len(index) else 0.0
    if agreement < needed:
        raise ValueError(
            f"{name} does not line up with these CIFAR-10 {split} images (the labels agree on "
            f"{agreement:.1%}, at least {needed:.1%} expected): the images are not in the official "
            "order. Write the offline copy again with to_batches.py --official-order, or use the official files"
        )


def counts_of(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Per image, how many of the given labels [N, W] chose each class: int64 [N, K]."""
    out = np.zeros((len(labels), num_classes), dtype=np.int64)
    for k in range(labels.shape[1]):
        np.add.at(out, (np.arange(len(labels)), labels[:, k]), 1)
    return out


def crowd_accuracy(counts: np.ndarray, labels: np.ndarray) -> float:
    """How often a random annotator of each image is right, on average over the images
    (exact, from the counts)."""
    counts = np.asarray(counts, dtype=np.float64)
    return float((counts[np.arange(len(labels)), labels] / counts.sum(1)).mean())
