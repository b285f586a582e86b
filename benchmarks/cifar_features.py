"""Candidate feature extractors for the CIFAR-10 CPU profile, measured on the same data:
test accuracy of a softmax-regression classifier on the features, and the one-time cost.

    python benchmarks/cifar_features.py [--data-dir DIR] [--centroids 1600]

1. ``cnn``: the profile's extractor (``l2dlib.features``): a small residual CNN trained
   once with cross-entropy. Its accuracy and training time are read from its stored summary
   (``python -m l2dlib features`` makes it; here it is not retrained).
2. ``kmeans``: a single layer of k-means features (Coates, Lee & Ng, 2011): 6x6 patches,
   normalised and ZCA-whitened, k-means centroids, the "triangle" activation
   max(0, mean_k(d) - d_k) at every position, sum-pooled over the four quadrants. The paper
   reports about 78% with 1,600 centroids (full-size run; we measure ours).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from l2dlib.data.cifar10 import load_cifar10
from l2dlib.features import extractor_summary
from l2dlib.profiles import get_profile
from l2dlib.results import resolve_dir

PATCH = 6


def patches(x: torch.Tensor) -> torch.Tensor:
    """Normalised 6x6 patches of uint8 images [B, 3, 32, 32]: [B, 27 * 27, 108]."""
    p = F.unfold(x.float(), PATCH).transpose(1, 2)
    p = p - p.mean(-1, keepdim=True)
    return p / (p.var(-1, keepdim=True) + 10).sqrt()  # brightness and contrast normalisation


def kmeans_features(images, centroids: int, seed: int = 0) -> tuple[dict, float]:
    g = torch.Generator().manual_seed(seed)
    train = images.x["train"]
    sample = patches(train[torch.randint(len(train), (4000,), generator=g)]).reshape(-1, PATCH * PATCH * 3)
    sample = sample[torch.randperm(len(sample), generator=g)[:200_000]]
    mean = sample.mean(0)
    eigval, eigvec = torch.linalg.eigh(torch.cov((sample - mean).T))
    zca = eigvec @ torch.diag((eigval + 0.1).rsqrt()) @ eigvec.T
    white = (sample - mean) @ zca
    c = white[torch.randperm(len(white), generator=g)[:centroids]].clone()
    for _ in range(10):  # Lloyd iterations
        assign = torch.cdist(white, c).argmin(1)
        counts = torch.bincount(assign, minlength=centroids).clamp_min(1).unsqueeze(1)
        c = torch.zeros_like(c).index_add_(0, assign, white) / counts
    out = {}
    for split, x in images.x.items():
        feats = []
        for i in range(0, len(x), 250):
            w = (patches(x[i : i + 250]) - mean) @ zca  # [B, 729, 108]
            d = (w.pow(2).sum(-1, keepdim=True) - 2 * w @ c.T + c.pow(2).sum(-1)).clamp_min(0).sqrt()
            act = (d.mean(-1, keepdim=True) - d).clamp_min(0).view(-1, 27, 27, centroids)
            q = [act[:, a:b, e:f].sum((1, 2)) for a, b in ((0, 14), (14, 27)) for e, f in ((0, 14), (14, 27))]
            feats.append(torch.cat(q, 1))
        out[split] = torch.cat(feats)
    return out, time.perf_counter()


def softmax_regression(feats: dict, y: dict, epochs: int = 30) -> float:
    """Test accuracy of a linear classifier (standardised features, SGD, weight decay chosen
    on the validation split)."""
    mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
    x = {s: (v - mean) / std for s, v in feats.items()}
    best = (-1.0, 0.0)
    for wd in (1e-4, 1e-3, 1e-2):
        g = torch.Generator().manual_seed(0)
        lin = torch.nn.Linear(x["train"].shape[1], 10)
        opt = torch.optim.SGD(lin.parameters(), lr=0.01, momentum=0.9, weight_decay=wd)
        steps = epochs * (len(y["train"]) // 256)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(epochs):
            order = torch.randperm(len(y["train"]), generator=g)
            for i in range(0, len(order) - 255, 256):
                idx = order[i : i + 256]
                loss = F.cross_entropy(lin(x["train"][idx]), y["train"][idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        with torch.no_grad():
            val = (lin(x["val"]).argmax(1) == y["val"]).float().mean().item()
            test = (lin(x["test"]).argmax(1) == y["test"]).float().mean().item()
        best = max(best, (val, test))
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--centroids", type=int, default=1600)
    args = parser.parse_args()
    images = load_cifar10(args.data_dir)
    rows = []
    cfg = get_profile("cifar10", "frozen_features").extractor
    summary = extractor_summary(resolve_dir(None) / "cifar10", cfg, images)
    if summary is not None:
        rows.append(("cnn", cfg.widths[2], summary["test_accuracy"], summary["train_seconds"] / 60))
    t0 = time.perf_counter()
    feats, t1 = kmeans_features(images, args.centroids)
    acc = softmax_regression(feats, images.y)
    rows.append(("kmeans", 4 * args.centroids, acc, (t1 - t0) / 60))
    print(f"data: {images.label}; {torch.get_num_threads()} threads")
    print("| extractor | features | test accuracy (linear classifier) | one-time minutes |")
    print("| --- | --- | --- | --- |")
    for name, dim, acc, minutes in rows:
        print(f"| {name} | {dim} | {acc:.4f} | {minutes:.1f} |")


if __name__ == "__main__":
    main()
