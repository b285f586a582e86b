"""CIFAR-10 from the official python batches, md5-checked, as device-resident uint8 tensors.

The files are ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
(Krizhevsky, 2009). ``data_dir`` is the argument, else ``$L2D_DATA_DIR``, else ``data/``.
Files whose md5 sums match the official ones are labelled canonical; anything else (e.g.
the offline JPEG copy built by ``shared/data/cifar10-jpeg/to_batches.py``) is labelled
non-canonical with a short sha256, and a warning is issued once per process.

Splits: "train" and "val" are a seeded partition of the official 50,000 training images
(45,000 / 5,000 by default), "test" is the official 10,000-image test batch.

Getting the files is in :mod:`l2dlib.data.cifar10_files`; normalisation and augmentation,
batched on the device, in :mod:`l2dlib.data.transforms`.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import Dataset, split_indices
from .cifar10_files import (
    BATCH_DIR,
    OFFICIAL_MD5,
    OFFLINE_SHA256,
    TRAIN_FILES,
    download_cifar10,
    missing_files,
    not_found_message,
    resolve_data_dir,
)

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)  # label order of the official files
NUM_CLASSES = 10
CANONICAL_LABEL = "CIFAR-10 (canonical)"
# The train/val partition of the official training set (the cache key records them too).
VAL_FRACTION = 0.1
SPLIT_SEED = 0

_warned_noncanonical = False  # warn about a non-canonical copy once per process


def warn_again() -> None:
    """Say the non-canonical-copy warning again at the next load (it is said once per process)."""
    global _warned_noncanonical
    _warned_noncanonical = False


def check_files(data_dir: str | os.PathLike | None = None) -> tuple[bool, str]:
    """Whether the batch files match the official md5 sums, and the sha256 of their bytes.

    Returns
    -------
    canonical : bool
        True when every file's md5 equals :data:`OFFICIAL_MD5`.
    sha256 : str
        Hex digest over the files' bytes in :data:`OFFICIAL_MD5` order (the data fingerprint).

    Raises FileNotFoundError (without downloading) when files are missing.
    """
    root = resolve_data_dir(data_dir) / BATCH_DIR
    missing = missing_files(root)
    if missing:
        raise FileNotFoundError(not_found_message(root.parent, missing, "check_files does not download"))
    return _check(_read(root))


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    val_fraction: float = VAL_FRACTION,
    split_seed: int = SPLIT_SEED,
    download: bool = True,
) -> Dataset:
    """CIFAR-10 as a :class:`~l2dlib.data.Dataset` of uint8 images on ``device``.

    Parameters
    ----------
    data_dir : folder holding ``cifar-10-batches-py/`` (see :func:`resolve_data_dir`).
    device : where the tensors live (the whole dataset is 180 MB as uint8).
    val_fraction : share of the official training set held out as "val".
    split_seed : seed of the train/val partition (:func:`~l2dlib.data.split_indices`).
    download : fetch the official archive when files are missing.

    Returns
    -------
    Dataset
        ``x[split]`` uint8 [N, 3, 32, 32], ``y[split]`` int64 [N]; N = 45,000 / 5,000 /
        10,000 for the official data with the default ``val_fraction``. ``label`` says whether
        the files are the official ones; ``fingerprint`` is the sha256 of the files' bytes.

    Raises
    ------
    FileNotFoundError
        Files are missing and cannot be downloaded; the message says how to get them.
    ValueError
        A file is corrupt or not in the CIFAR-10 python format, or ``val_fraction`` is
        outside (0, 1).
    """
    global _warned_noncanonical
    if not 0 < val_fraction < 1:
        raise ValueError(f"expected 0 < val_fraction < 1, got {val_fraction}")
    data_dir = resolve_data_dir(data_dir)
    root = data_dir / BATCH_DIR
    if missing_files(root):
        reason = "download=False"
        if download:
            try:
                download_cifar10(data_dir)
            except OSError as e:
                reason = f"download failed: {e}"
        missing = missing_files(root)
        if missing:
            raise FileNotFoundError(not_found_message(data_dir, missing, reason)) from None
    blobs = _read(root)
    canonical, sha256 = _check(blobs)
    label = CANONICAL_LABEL if canonical else noncanonical_label(sha256)
    if not canonical and not _warned_noncanonical:
        _warned_noncanonical = True
        shuffled = OFFLINE_SHA256.get(sha256) == "shuffled order"
        warnings.warn(
            f"the CIFAR-10 files in {root} do not match the official md5 sums "
            f"(e.g. the offline JPEG copy); results are labelled {label!r}"
            + (
                "; its images are not in the official order, so per-image human labels cannot "
                "be lined up with them: write them again with to_batches.py --official-order"
                if shuffled
                else ""
            ),
            UserWarning,
            stacklevel=2,
        )
    train_x, train_y = _images_and_labels(blobs, TRAIN_FILES)
    test_x, test_y = _images_and_labels(blobs, ("test_batch",))
    val_idx, train_idx = (
        i.sort().values for i in split_indices(len(train_y), (val_fraction, 1 - val_fraction), split_seed)
    )
    return Dataset(
        name="cifar10",
        num_classes=NUM_CLASSES,
        x={"train": train_x[train_idx].to(device), "val": train_x[val_idx].to(device), "test": test_x.to(device)},
        y={"train": train_y[train_idx].to(device), "val": train_y[val_idx].to(device), "test": test_y.to(device)},
        label=label,
        fingerprint=sha256,
        index={"train": train_idx, "val": val_idx, "test": torch.arange(len(test_y))},
    )


def noncanonical_label(sha256: str) -> str:
    """How results from files that are not the official ones are labelled: the offline JPEG
    copy by its order, anything else as an unknown copy; always with the short sha256."""
    order = OFFLINE_SHA256.get(sha256)
    what = f"offline JPEG copy, {order}" if order else "copy, md5 mismatch"
    return f"CIFAR-10 (NON-CANONICAL {what}; sha256 {sha256[:12]})"


def synthetic_cifar10(n_train: int = 256, n_val: int = 64, n_test: int = 128, seed: int = 0) -> Dataset:
    """CIFAR-10-shaped random images whose label is learnable, for smoke runs and tests.

    Each class has a random mean colour; an image is its class's colour plus per-pixel
    Gaussian noise (std 40), clipped to 0..255. x uint8 [N, 3, 32, 32], y int64 [N]
    drawn uniformly from the 10 classes.
    """
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    if min(sizes.values()) < 1:
        raise ValueError(f"expected every split size >= 1, got {sizes}")
    g = torch.Generator().manual_seed(seed)
    colours = torch.rand(NUM_CLASSES, 3, 1, 1, generator=g) * 160 + 48  # [K, 3, 1, 1], 0..255
    x, y = {}, {}
    for split, n in sizes.items():
        y[split] = torch.randint(NUM_CLASSES, (n,), generator=g)
        noise = torch.randn(n, 3, 32, 32, generator=g) * 40
        x[split] = (colours[y[split]] + noise).round().clamp(0, 255).to(torch.uint8)
    return Dataset(
        name="cifar10",
        num_classes=NUM_CLASSES,
        x=x,
        y=y,
        label=f"synthetic CIFAR-10-shaped data ({sum(sizes.values())} images)",
        index={s: torch.arange(n) + (n_train if s == "val" else 0) for s, n in sizes.items()},
    )


def _read(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in OFFICIAL_MD5}


def _check(blobs: dict[str, bytes]) -> tuple[bool, str]:
    sha = hashlib.sha256()
    canonical = True
    for name in OFFICIAL_MD5:
        sha.update(blobs[name])
        canonical &= hashlib.md5(blobs[name]).hexdigest() == OFFICIAL_MD5[name]
    return canonical, sha.hexdigest()


def _images_and_labels(blobs: dict[str, bytes], names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """The files' images uint8 [N, 3, 32, 32] and labels int64 [N], concatenated in order."""
    xs, ys = [], []
    for name in names:
        try:
            batch = _SafeUnpickler(io.BytesIO(blobs[name]), encoding="bytes").load()
            # The official files have bytes keys; to_batches.py writes str keys.
            data = np.asarray(batch.get(b"data", batch.get("data")), dtype=np.uint8)
            labels = np.asarray(batch.get(b"labels", batch.get("labels")), dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
            raise ValueError(
                f"{name} is not a CIFAR-10 python batch ({e}); delete cifar-10-batches-py/ and get the files again"
            ) from None
        well_formed = data.ndim == 2 and data.shape[1] == 3 * 32 * 32 and labels.shape == (len(data),)
        if not well_formed or (labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES):
            raise ValueError(
                f"{name} holds data {data.shape} and labels {labels.shape}; expected "
                f"[N, 3072] uint8 and N labels in 0..9: delete cifar-10-batches-py/ "
                f"and get the files again"
            )
        xs.append(data)
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs)).view(-1, 3, 32, 32)  # rows are channel-planar
    return x, torch.from_numpy(np.concatenate(ys))


_NP_RECONSTRUCT = np.empty(0).__reduce__()[0]  # how numpy pickles arrays, wherever it lives


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file from elsewhere
    cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,  # numpy 1 (official files)
        ("numpy._core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,  # numpy 2
        ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles from Python 3
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None
