"""CIFAR-10 from the official python batches, md5-checked, as device-resident uint8 tensors.

The files are ``<data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
(Krizhevsky, 2009). ``data_dir`` is the argument, else ``$L2D_DATA_DIR``, else ``data/``.
Files whose md5 sums match the official ones are labelled canonical; anything else (e.g.
the offline JPEG copy built by ``shared/data/cifar10-jpeg/to_batches.py``) is labelled
non-canonical with a short sha256, and a warning is issued once per process.

Splits: "train" and "val" are a seeded partition of the official 50,000 training images
(45,000 / 5,000 by default), "test" is the official 10,000-image test batch.

Preprocessing is batched tensor work on the data's device (no DataLoader, no torchvision):
:func:`normalize` turns uint8 images into standardised floats, :func:`augment` applies
random 4-pixel-padded crops and horizontal flips to a whole batch with one gather.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import http.client
import io
import os
import pickle
import shlex
import socket
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import Dataset, split_indices

ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # label order of the official files
NUM_CLASSES = 10
CANONICAL_LABEL = "CIFAR-10 (canonical)"
DOWNLOAD_TIMEOUT_S = 5.0
# Per-channel mean and std of the training images in 0..255 units (the values of the
# WideResNet reference code; 0.4914, 0.4822, 0.4465 and 0.2470, 0.2435, 0.2616 on [0, 1]).
MEAN_255 = (125.3, 123.0, 113.9)
STD_255 = (63.0, 62.1, 66.7)
PAD = 4  # random-crop padding, pixels
# The train/val partition of the official training set (the cache key records them too).
VAL_FRACTION = 0.1
SPLIT_SEED = 0

_warned_noncanonical = False  # warn about a non-canonical copy once per process


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py/``, as an absolute path:
    ``data_dir`` if given, else ``$L2D_DATA_DIR``, else ``data/`` in the current directory."""
    chosen = data_dir if data_dir is not None else os.environ.get("L2D_DATA_DIR") or "data"
    return Path(chosen).expanduser().resolve()


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
    missing = _missing(root)
    if missing:
        raise FileNotFoundError(_not_found_message(root.parent, missing, "check_files does not download"))
    return _check(_read(root))


def download_cifar10(data_dir: str | os.PathLike | None = None, *,
                     timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download the official archive, check its md5 and unpack the batch files into
    ``<data_dir>/cifar-10-batches-py/`` (only files that are missing there); return that folder.

    Fails within about ``timeout`` seconds when the host cannot be reached. Raises OSError
    on any network or integrity failure; nothing is left behind in that case.
    """
    data_dir = resolve_data_dir(data_dir)
    _resolve_host(urllib.parse.urlsplit(ARCHIVE_URL).hostname or "", timeout)
    try:
        return _fetch_and_unpack(data_dir, timeout)
    except http.client.HTTPException as e:  # e.g. a truncated response; not an OSError
        raise OSError(f"download interrupted: {e!r}") from e


def load_cifar10(data_dir: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
                 val_fraction: float = VAL_FRACTION, split_seed: int = SPLIT_SEED, download: bool = True) -> Dataset:
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
    if _missing(root):
        reason = "download=False"
        if download:
            try:
                download_cifar10(data_dir)
            except OSError as e:
                reason = f"download failed: {e}"
        missing = _missing(root)
        if missing:
            raise FileNotFoundError(_not_found_message(data_dir, missing, reason)) from None
    blobs = _read(root)
    canonical, sha256 = _check(blobs)
    if canonical:
        label = CANONICAL_LABEL
    else:
        label = f"CIFAR-10 (NON-CANONICAL copy, md5 mismatch; sha256 {sha256[:12]})"
        if not _warned_noncanonical:
            _warned_noncanonical = True
            warnings.warn(f"the CIFAR-10 files in {root} do not match the official md5 sums "
                          f"(e.g. the offline JPEG copy); results are labelled {label!r}",
                          UserWarning, stacklevel=2)
    train_x, train_y = _images_and_labels(blobs, TRAIN_FILES)
    test_x, test_y = _images_and_labels(blobs, ("test_batch",))
    val_idx, train_idx = (i.sort().values for i in
                          split_indices(len(train_y), (val_fraction, 1 - val_fraction), split_seed))
    return Dataset(
        name="cifar10",
        num_classes=NUM_CLASSES,
        x={"train": train_x[train_idx].to(device), "val": train_x[val_idx].to(device),
           "test": test_x.to(device)},
        y={"train": train_y[train_idx].to(device), "val": train_y[val_idx].to(device),
           "test": test_y.to(device)},
        label=label,
        fingerprint=sha256,
    )


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
    return Dataset(name="cifar10", num_classes=NUM_CLASSES, x=x, y=y,
                   label=f"synthetic CIFAR-10-shaped data ({sum(sizes.values())} images)")


def normalize(x: Tensor) -> Tensor:
    """Standardise images per channel: uint8 (or 0..255 float) [B, 3, H, W] -> float32
    [B, 3, H, W] with the CIFAR-10 training mean and std, on x's device."""
    mean, inv_std = _channel_stats(x.device)
    return (x.float() - mean) * inv_std


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip, per image.

    Parameters
    ----------
    x : float [B, C, H, W], on the same device as ``generator``.
    generator : draws the crop offsets (uniform in 0..8 per axis) and flips (p = 1/2).

    Returns
    -------
    float [B, C, H, W] in x's memory format: ``pad(x)[b, :, dy:dy+H, dx:dx+W]``, reversed
    along W where flipped. One gather for the whole batch; padding enters as zeros.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, b, 1), generator=generator, device=x.device)
    flip = torch.rand(b, 1, generator=generator, device=x.device) < 0.5
    cols = torch.arange(w, device=x.device)
    rows = dy + torch.arange(h, device=x.device)  # [B, H]
    cols = dx + torch.where(flip, cols.flip(0), cols)  # [B, W]; a flip is reversed columns
    # Advanced indices separated by a slice go first: [B, H, W, C], i.e. channels_last strides.
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@functools.cache
def _channel_stats(device: torch.device) -> tuple[Tensor, Tensor]:
    # Cached per device: no host-to-device copy per batch.
    mean = torch.tensor(MEAN_255, device=device).view(1, 3, 1, 1)
    inv_std = 1.0 / torch.tensor(STD_255, device=device).view(1, 3, 1, 1)
    return mean, inv_std


def _missing(root: Path) -> list[str]:
    return [name for name in OFFICIAL_MD5 if not (root / name).is_file()]


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
            raise ValueError(f"{name} is not a CIFAR-10 python batch ({e}); delete "
                             f"cifar-10-batches-py/ and get the files again") from None
        well_formed = data.ndim == 2 and data.shape[1] == 3 * 32 * 32 and labels.shape == (len(data),)
        if not well_formed or (labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES):
            raise ValueError(f"{name} holds data {data.shape} and labels {labels.shape}; expected "
                             f"[N, 3072] uint8 and N labels in 0..9: delete cifar-10-batches-py/ "
                             f"and get the files again")
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


def _resolve_host(host: str, timeout: float) -> None:
    """Resolve ``host`` or raise OSError within ``timeout`` s: socket timeouts do not cover
    DNS, which can block for tens of seconds on a machine with no route to its resolver."""
    done, errors = threading.Event(), []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
        except OSError as e:
            errors.append(e)
        finally:
            done.set()

    threading.Thread(target=lookup, daemon=True).start()
    if not done.wait(timeout):
        raise OSError(f"no answer resolving {host} within {timeout:g} s")
    if errors:
        raise OSError(f"cannot resolve {host}: {errors[0]}")


def _fetch_and_unpack(data_dir: Path, timeout: float) -> Path:
    with urllib.request.urlopen(ARCHIVE_URL, timeout=timeout) as response:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".cifar10-download-") as tmp:
            archive = Path(tmp) / "cifar-10-python.tar.gz"
            md5 = hashlib.md5()
            with open(archive, "wb") as f:
                while chunk := response.read(1 << 20):
                    md5.update(chunk)
                    f.write(chunk)
            if md5.hexdigest() != ARCHIVE_MD5:
                raise OSError(f"downloaded archive has md5 {md5.hexdigest()}, expected {ARCHIVE_MD5}")
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    # Only the seven regular files we name are read: no path from the archive is used.
                    for name in OFFICIAL_MD5:
                        member = tar.getmember(f"{BATCH_DIR}/{name}")
                        src = tar.extractfile(member) if member.isfile() else None
                        if src is None:
                            raise tarfile.TarError(f"{member.name} is not a regular file")
                        (Path(tmp) / name).write_bytes(src.read())
            except (tarfile.TarError, KeyError) as e:
                raise OSError(f"cannot unpack the downloaded archive: {e}") from e
            root = data_dir / BATCH_DIR
            root.mkdir(exist_ok=True)
            for name in _missing(root):
                os.replace(Path(tmp) / name, root / name)  # whole files only
    return root


def _to_batches_script() -> Path | None:
    """The offline copy's converter: in ``shared/`` inside the repository or beside it."""
    repo = Path(__file__).resolve().parents[2]
    for base in (repo, repo.parent):
        script = base / "shared" / "data" / "cifar10-jpeg" / "to_batches.py"
        if script.is_file():
            return script
    return None


def _not_found_message(data_dir: Path, missing: list[str], reason: str) -> str:
    script = _to_batches_script()
    script_text = shlex.quote(str(script)) if script else "shared/data/cifar10-jpeg/to_batches.py"
    where = shlex.quote(str(data_dir))
    lacks = "has none of the batch files" if len(missing) == len(OFFICIAL_MD5) else \
        f"lacks {', '.join(missing)}"
    return (
        f"CIFAR-10 not found: {data_dir / BATCH_DIR} {lacks} ({reason}).\n"
        f"Get it one of two ways, then run again:\n"
        f"  1. canonical: on a machine with internet access download {ARCHIVE_URL}\n"
        f"     (md5 {ARCHIVE_MD5}) and unpack it into {data_dir}:\n"
        f"       tar -xzf cifar-10-python.tar.gz -C {where}\n"
        f"  2. offline: build the same layout from the JPEG re-encoding (NON-CANONICAL: lossy\n"
        f"     pixels, reordered batches; results are labelled so), needs numpy and pillow:\n"
        f"       python {script_text} {where}\n"
        f"     (see the README.md beside to_batches.py).\n"
        f"Or point data_dir / $L2D_DATA_DIR at a folder that already holds {BATCH_DIR}/."
    )
