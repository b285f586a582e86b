"""Frozen CIFAR-10 features for the CPU profile: a small CNN trained once with cross-entropy,
whose pooled penultimate activations replace the images for every L2D configuration.

The CNN trains on a seeded part of the train split (``ExtractorConfig.fit_fraction``); the
features' train split is the rest, so the L2D heads learn from images the CNN has not seen,
like those they are validated and judged on. (Cross-fitting, two CNNs each embedding the
other's half, would give the heads two unaligned feature spaces.)

The expensive part (the extractor) is trained once per (settings, data) and its weights are
stored beside the results (about 2 MB, committed); the features of every split are cached
under the same key. Each configuration then trains only an L2D head on the features, many
heads at once exactly as the MoG models train (see :mod:`l2dlib.runner`). A corrupt or stale
weights or features file is recomputed with a warning naming the file.

The ``cpu_end_to_end`` profile freezes only the extractor's stem and first two groups
(:func:`body_dataset`: their outputs, computed once and cached like the features) and
trains its last group again with a new L2D head per configuration
(:class:`~l2dlib.models.FastTail`).

    python -m l2dlib features          # train the extractor (once) and cache the features
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm  # plain bars: no ipywidgets needed in notebooks

from .config import ExtractorConfig
from .data import SPLITS, Dataset, split_indices
from .data.transforms import augment, normalize
from .files import atomic_write_bytes
from .models import FastResNet


def extractor_folder(results_dir: str | os.PathLike | None = None) -> Path:
    """Where the extractor's weights and features live: ``<results>/cifar10/``, for the
    CIFAR-10 profile and the human-expert datasets alike (one extractor for all)."""
    from .results import resolve_dir

    return resolve_dir(results_dir) / "cifar10"


def weights_path(folder: Path, cfg: ExtractorConfig, images: Dataset) -> Path:
    return folder / f"extractor-{cfg.key(images.fingerprint)}.pt"


def features_path(folder: Path, cfg: ExtractorConfig, images: Dataset) -> Path:
    """The features' cache file, one per numerics mode (the convolutions' bits depend on it)."""
    from . import numerics

    return folder / "cache" / f"features-{cfg.key(images.fingerprint)}-{numerics.mode()}.pt"


def body_path(folder: Path, cfg: ExtractorConfig, images: Dataset) -> Path:
    """The cache file of the frozen body's outputs, one per numerics mode (about 0.5 GB)."""
    from . import numerics

    return folder / "cache" / f"body-{cfg.key(images.fingerprint)}-{numerics.mode()}.pt"


def fit_split(n: int, cfg: ExtractorConfig) -> tuple[Tensor, Tensor]:
    """Sorted indices into a train split of ``n`` images: those the extractor trains on
    (``cfg.fit_fraction`` of them, seeded by ``cfg.seed``) and the rest, the heads'."""
    fit, heads = split_indices(n, (cfg.fit_fraction, 1 - cfg.fit_fraction), cfg.seed)
    return fit.sort().values, heads.sort().values


def train_extractor(images: Dataset, cfg: ExtractorConfig, progress: bool = True) -> tuple[FastResNet, dict]:
    """Train the extractor on its part of the train split (:func:`fit_split`); return it (in
    eval mode) and a summary: validation accuracy per epoch, accuracy on the images it
    trained on, on the heads' images and on the test split, wall seconds."""
    t0 = time.perf_counter()
    fit, heads = fit_split(len(images.y["train"]), cfg)
    x, y = images.x["train"][fit], images.y["train"][fit]
    g = torch.Generator(device=x.device).manual_seed(cfg.seed)
    net = FastResNet(images.num_classes, widths=cfg.widths, seed=cfg.seed).to(x.device)
    net = net.to(memory_format=torch.channels_last)  # about 1.5x faster on a CPU too (measured)
    steps = len(y) // cfg.batch_size  # the last partial batch is dropped
    if steps < 1:
        raise ValueError(f"the train split has {len(y)} images, fewer than one batch of {cfg.batch_size}")
    total = steps * cfg.epochs
    warm = max(1, round(cfg.warmup * total))
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    val_accuracy = []
    bar = tqdm(total=total, unit="step", desc="feature extractor", disable=not progress)
    for _ in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(y), generator=g, device=x.device)
        for i in range(steps):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            batch = augment(normalize(x[idx]), g).contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(net(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
        val_accuracy.append(_accuracy(net, images.x["val"], images.y["val"]))
        bar.set_postfix(val_accuracy=f"{val_accuracy[-1]:.4f}")
    bar.close()
    summary = {
        "val_accuracy_per_epoch": val_accuracy,
        "fit_images": len(fit),
        "head_images": len(heads),
        "fit_accuracy": _accuracy(net, x, y),
        "head_accuracy": _accuracy(net, images.x["train"][heads], images.y["train"][heads]),
        "test_accuracy": _accuracy(net, images.x["test"], images.y["test"]),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "threads": torch.get_num_threads(),
    }
    return net.eval(), summary


@torch.no_grad()
def embed(net: FastResNet, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Features float32 [N, widths[2]] of uint8 images [N, 3, 32, 32]: the mean of the pooled
    penultimate activations of each image and of its mirror image."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        batch = normalize(images[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
        out.append((net.embed(batch) + net.embed(batch.flip(3))) / 2)
    return torch.cat(out) if out else torch.empty(0, net.head.in_features)


@torch.no_grad()
def _accuracy(net: FastResNet, x: Tensor, y: Tensor) -> float:
    logits = net.head(embed(net, x))
    return round((logits.argmax(1) == y).float().mean().item(), 5)


def feature_dataset(
    images: Dataset, cfg: ExtractorConfig, folder: str | os.PathLike, *, progress: bool = True
) -> Dataset:
    """The images' features as a :class:`Dataset`: x float32 [N, D], standardised by the
    (heads') train split's mean and std. Its train split is the heads' part of the images'
    (:func:`fit_split`), val and test are the images' own; labels and ``index`` follow.
    The extractor is trained and the features computed only where ``folder`` does not
    already hold them for this key."""
    folder = Path(folder)
    key = cfg.key(images.fingerprint)
    wpath, fpath = weights_path(folder, cfg, images), features_path(folder, cfg, images)
    _, heads = fit_split(len(images.y["train"]), cfg)
    pick = {"train": heads, "val": slice(None), "test": slice(None)}
    y = {s: images.y[s][pick[s]] for s in SPLITS}
    feats = _load(fpath, key, "features")
    if feats is not None and not _features_ok(feats, y, _sha(wpath)):
        warnings.warn(f"{fpath} does not match the data or the extractor's weights; recomputing it", stacklevel=2)
        feats = None
    if feats is None:
        net = _extractor(images, cfg, wpath, key, progress)
        x = {s: embed(net, images.x[s][pick[s]]).cpu() for s in SPLITS}
        feats = {"key": key, "weights_sha": _sha(wpath), "x": x}
        _save(fpath, feats)
    # Standardised in float64 by numpy (single-threaded): the same bits in every process.
    x = {s: feats["x"][s].numpy().astype(np.float64) for s in SPLITS}
    mean, std = x["train"].mean(0), np.maximum(x["train"].std(0), 1e-6)
    device = images.x["train"].device
    return Dataset(
        name=images.name,
        num_classes=images.num_classes,
        x={s: torch.from_numpy(((v - mean) / std).astype(np.float32)).to(device) for s, v in x.items()},
        y=y,
        label=f"{images.label}; frozen CNN features",
        # The images, the settings and the weights determine the features; their bits may
        # differ on another CPU, so rows are keyed by what made them, not by the floats.
        fingerprint=hashlib.sha256(f"{key}:{feats['weights_sha']}".encode()).hexdigest(),
        index=None if images.index is None else {s: images.index[s][pick[s]] for s in SPLITS},
    )


def body_dataset(images: Dataset, cfg: ExtractorConfig, folder: str | os.PathLike, *, progress: bool = True) -> Dataset:
    """The outputs of the extractor's stem and first two groups (its frozen body), float32
    [N, widths[1], H/4, W/4], for the same splits as :func:`feature_dataset` (train: the
    heads' part, images the extractor has not seen), with the extractor's last group as
    ``tail_state``. Computed on one thread in eval mode (so its bits do not depend on the
    threads at hand) and cached in ``folder``; the extractor is trained where missing."""
    from . import numerics

    folder = Path(folder)
    key = cfg.key(images.fingerprint)
    wpath, bpath = weights_path(folder, cfg, images), body_path(folder, cfg, images)
    net = _extractor(images, cfg, wpath, key, progress)
    _, heads = fit_split(len(images.y["train"]), cfg)
    pick = {"train": heads, "val": slice(None), "test": slice(None)}
    y = {s: images.y[s][pick[s]] for s in SPLITS}
    stored = _load(bpath, key, "frozen body outputs")
    if stored is not None and not _features_ok(stored, y, _sha(wpath), dims=4):
        warnings.warn(f"{bpath} does not match the data or the extractor's weights; recomputing it", stacklevel=2)
        stored = None
    if stored is None:
        with numerics.one_thread(), torch.no_grad():
            x = {}
            for s in SPLITS:
                chunks = torch.split(images.x[s][pick[s]], 500)
                bar = tqdm(chunks, desc=f"frozen body, {s}", unit="chunk", leave=False, disable=not progress)
                x[s] = torch.cat([net.groups[:2](net.stem(normalize(c))).cpu() for c in bar])
        stored = {"key": key, "weights_sha": _sha(wpath), "x": x}
        _save(bpath, stored)
    device = images.x["train"].device
    return Dataset(
        name=images.name,
        num_classes=images.num_classes,
        x={s: v.to(device) for s, v in stored["x"].items()},
        y=y,
        label=f"{images.label}; frozen CNN body",
        fingerprint=hashlib.sha256(f"{key}:{stored['weights_sha']}:body".encode()).hexdigest(),
        index=None if images.index is None else {s: images.index[s][pick[s]] for s in SPLITS},
        tail_state={k: v.detach().cpu().clone() for k, v in net.groups[2].state_dict().items()},
    )


def extractor_summary(folder: str | os.PathLike, cfg: ExtractorConfig, images: Dataset) -> dict | None:
    """The stored summary of the extractor for these images (None where none is stored)."""
    path = weights_path(Path(folder), cfg, images)
    stored = _load(path, cfg.key(images.fingerprint), "weights")
    return None if stored is None else stored["summary"]


def _extractor(images: Dataset, cfg: ExtractorConfig, path: Path, key: str, progress: bool) -> FastResNet:
    stored = _load(path, key, "weights")
    net = FastResNet(images.num_classes, widths=cfg.widths, seed=cfg.seed)
    if stored is not None:
        try:
            net.load_state_dict(stored["state"])
            return net.to(images.x["train"].device).eval()
        except (RuntimeError, KeyError, TypeError) as e:
            warnings.warn(f"{path} does not fit the extractor ({e}); training it again", stacklevel=3)
    # 2.7 min per epoch of 45,000 images on 2 cores (measured)
    minutes = cfg.epochs * cfg.fit_fraction * len(images.y["train"]) / 45_000 * 2.7
    print(f"Training the feature extractor once (about {minutes:.0f} min on 2 CPU cores); it is stored in {path}")
    trained, summary = train_extractor(images, cfg, progress)
    state = {k: v.detach().cpu().contiguous() for k, v in trained.state_dict().items()}
    _save(path, {"key": key, "settings": asdict(cfg), "data": images.label, "summary": summary, "state": state})
    # Features always come from the stored weights (as on a machine that did not train them).
    net.load_state_dict(state)
    return net.to(images.x["train"].device).eval()


def _load(path: Path, key: str, what: str) -> dict | None:
    """A stored dict whose key matches, or None (missing; a corrupt or stale file is warned about)."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is recomputed
        warnings.warn(f"cannot read the {what} file {path} ({type(e).__name__}); recomputing it", stacklevel=3)
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        warnings.warn(f"the {what} file {path} is stale (another key); recomputing it", stacklevel=3)
        return None
    return stored


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _features_ok(feats: dict, y: dict[str, Tensor], weights_sha: str | None, dims: int = 2) -> bool:
    x = feats.get("x")
    if feats.get("weights_sha") != weights_sha or not isinstance(x, dict) or set(x) != set(SPLITS):
        return False
    return all(
        isinstance(x[s], Tensor)
        and x[s].dim() == dims
        and len(x[s]) == len(y[s])
        and x[s].dtype == torch.float32
        and bool(torch.isfinite(x[s]).all())
        for s in SPLITS
    )


def _save(path: Path, obj: dict) -> None:
    """torch.save through a temporary file and a rename: never half a file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def stored_extractors(folder: str | os.PathLike) -> list[dict]:
    """One row per stored extractor in ``folder`` (the reproducibility page's table)."""
    rows = []
    for path in sorted(Path(folder).glob("extractor-*.pt")):
        stored = _load(path, path.stem.removeprefix("extractor-"), "weights")
        if stored is None:
            continue
        s, cfg = stored["summary"], stored["settings"]
        rows.append(
            {
                "file": path.name,
                "data": stored["data"],
                "network": f"FastResNet widths {tuple(cfg['widths'])}",
                "schedule": f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, lr {cfg['lr']}",
                "trained on": f"{s['fit_images']:,} images",
                "accuracy on them": s["fit_accuracy"],
                "on the heads' images": s["head_accuracy"],
                "test accuracy": s["test_accuracy"],
                "train minutes": round(s["train_seconds"] / 60, 1),
                "threads": s["threads"],
                "MB": round(path.stat().st_size / 1e6, 1),
            }
        )
    return rows
