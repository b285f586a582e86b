"""The paper's synthetic data (Fig. 3): a 2-D mixture of four Gaussians, labels = clusters.

Cluster means are drawn uniformly in [-1,1]^2, [4,6]^2, [5,7]^2 and [-5,-3]^2 (the boxes of
clusters 1 and 2 overlap; whether the clusters do depends on the draw), diagonal variances
uniformly in [0, 2]. A mixing weight gp ~ U(0.02, 0.98)
gives clusters 0 and 1 floor(N gp / 2) points each and clusters 2 and 3
floor(N (1 - gp) / 2) each. One fixed seed draws everything; a seeded 70/15/15 split.
"""

from __future__ import annotations

import numpy as np
import torch

from . import Dataset, split_indices

MEAN_BOXES = ((-1.0, 1.0), (4.0, 6.0), (5.0, 7.0), (-5.0, -3.0))
NUM_CLASSES = 4
FRACTIONS = (0.70, 0.15, 0.15)


def make_mog(num_points: int = 20_000, seed: int = 0, standardize: bool = False) -> Dataset:
    """The mixture of Gaussians: x [N, 2] float32, y [N] int64 in 0..3.

    ``standardize`` rescales x by the training split's mean and standard deviation (what
    the models see; the raw coordinates are for plotting). The points are the same.
    """
    if num_points < 20:
        raise ValueError(f"expected num_points >= 20, got {num_points}")
    rng = np.random.default_rng(seed)
    means = np.array([rng.uniform(lo, hi, size=2) for lo, hi in MEAN_BOXES])
    variances = rng.uniform(0.0, 2.0, size=(NUM_CLASSES, 2))
    gp = rng.uniform(0.02, 0.98)
    counts = [int(num_points * gp / 2)] * 2 + [int(num_points * (1 - gp) / 2)] * 2
    x = np.concatenate([rng.normal(means[k], np.sqrt(variances[k]), size=(c, 2)) for k, c in enumerate(counts)])
    y = np.repeat(np.arange(NUM_CLASSES), counts)
    x_t, y_t = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    parts = split_indices(len(y), FRACTIONS, seed)
    if standardize:
        train = x_t[parts[0]]
        x_t = (x_t - train.mean(0)) / train.std(0)
    return Dataset(
        name="mog",
        num_classes=NUM_CLASSES,
        x={s: x_t[i] for s, i in zip(("train", "val", "test"), parts)},
        y={s: y_t[i] for s, i in zip(("train", "val", "test"), parts)},
        label=f"mixture of Gaussians ({len(y)} points, seed {seed})",
    )
