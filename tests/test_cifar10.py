import hashlib
import pickle
import warnings

import pytest
import torch

from l2dlib.data import cifar10, cifar10_files
from l2dlib.data.cifar10 import load_cifar10, synthetic_cifar10
from l2dlib.data.transforms import MEAN_255, STD_255, augment, normalize

# Most tests load fake files, which are non-canonical by design; one test counts the warning.
pytestmark = pytest.mark.filterwarnings("ignore:the CIFAR-10 files:UserWarning")

PER_BATCH = 20  # images per fake batch file: 100 train, 20 test


@pytest.fixture
def fake_dir(tmp_path, monkeypatch, write_fake_cifar10):
    """Small batch files in the official pickle format (conftest's ``write_fake_cifar10``);
    nothing may touch the network, and the once-per-process warning starts unissued."""
    write_fake_cifar10(tmp_path, PER_BATCH)
    monkeypatch.setattr(cifar10, "download_cifar10", _no_network)
    cifar10.warn_again()
    return tmp_path


def _no_network(*args, **kwargs):
    raise OSError("no network in tests")


def _md5s(data_dir) -> dict[str, str]:
    root = data_dir / "cifar-10-batches-py"
    return {name: hashlib.md5((root / name).read_bytes()).hexdigest() for name in cifar10.OFFICIAL_MD5}


def test_matching_md5_is_canonical_and_silent(fake_dir, monkeypatch):
    monkeypatch.setattr(cifar10, "OFFICIAL_MD5", _md5s(fake_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_cifar10(fake_dir)
    assert d.label == "CIFAR-10 (canonical)"
    assert cifar10.check_files(fake_dir) == (True, d.fingerprint)
    root = fake_dir / "cifar-10-batches-py"
    expected = hashlib.sha256(b"".join((root / n).read_bytes() for n in cifar10.OFFICIAL_MD5))
    assert d.fingerprint == expected.hexdigest()


def test_md5_mismatch_is_labelled_non_canonical_and_warns_once(fake_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_cifar10(fake_dir)
        again = load_cifar10(fake_dir, split_seed=1)
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    assert "md5" in str(caught[0].message)
    assert d.label == again.label == f"CIFAR-10 (NON-CANONICAL copy, md5 mismatch; sha256 {d.fingerprint[:12]})"
    assert cifar10.check_files(fake_dir) == (False, d.fingerprint)
    assert d.index["test"].tolist() == list(range(len(d.y["test"])))
    # train and val partition the official training images, in order within each split
    both = torch.cat([d.index["train"], d.index["val"]]).sort().values
    assert both.tolist() == list(range(len(both))) and bool((d.index["val"].diff() > 0).all())


@pytest.mark.parametrize("order", ["official order", "shuffled order"])
def test_the_offline_copy_is_named_by_its_order_and_a_shuffled_one_says_how_to_fix_it(fake_dir, monkeypatch, order):
    sha = cifar10.check_files(fake_dir)[1]
    monkeypatch.setattr(cifar10, "OFFLINE_SHA256", {sha: order})
    cifar10.warn_again()
    with pytest.warns(UserWarning) as caught:
        d = load_cifar10(fake_dir)
    assert d.label == f"CIFAR-10 (NON-CANONICAL offline JPEG copy, {order}; sha256 {sha[:12]})"
    assert ("--official-order" in str(caught[0].message)) == (order == "shuffled order")


@pytest.mark.parametrize("download", [True, False])
def test_missing_files_name_both_ways_to_get_them(fake_dir, download):
    (fake_dir / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(fake_dir, download=download)
    message = str(info.value)
    assert "test_batch" in message
    assert "cifar-10-python.tar.gz" in message and cifar10_files.ARCHIVE_URL in message
    assert "to_batches.py" in message and "NON-CANONICAL" in message
    assert str(fake_dir) in message
    assert ("no network in tests" in message) == download
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_corrupt_file_is_a_value_error(fake_dir):
    (fake_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_cifar10(fake_dir)


def test_unpickling_refuses_code(fake_dir):
    evil = pickle.dumps({b"data": print, b"labels": []}, protocol=2)  # a global outside numpy
    (fake_dir / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(ValueError, match="refusing"):
        load_cifar10(fake_dir)


def test_str_keys_from_the_offline_converter_load(fake_dir):
    path = fake_dir / "cifar-10-batches-py" / "test_batch"
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    path.write_bytes(pickle.dumps({k.decode(): v for k, v in batch.items()}, protocol=4))
    d = load_cifar10(fake_dir)
    assert torch.equal(d.y["test"], torch.arange(100, 120) % 10)


def test_splits_shapes_layout_and_determinism(fake_dir):
    d = load_cifar10(fake_dir)
    assert d.name == "cifar10" and d.num_classes == 10
    assert {s: len(d.y[s]) for s in ("train", "val", "test")} == {"train": 90, "val": 10, "test": 20}
    for s in ("train", "val", "test"):
        assert d.x[s].dtype == torch.uint8 and d.x[s].shape[1:] == (3, 32, 32)
        assert d.y[s].dtype == torch.int64
        index = d.x[s][:, 0, 0, 0].long()  # pixel (0, 0, 0) of image i is i % 256
        assert torch.equal(d.y[s], index % 10)  # each image keeps its own label
        c = torch.arange(3).view(1, 3, 1, 1)
        h = torch.arange(32).view(1, 1, 32, 1)
        assert torch.equal(d.x[s].long(), ((index.view(-1, 1, 1, 1) + 7 * c + h) % 256).expand(-1, 3, 32, 32))
    train, val = d.x["train"][:, 0, 0, 0], d.x["val"][:, 0, 0, 0]
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))  # a partition of the 5 batches
    assert torch.equal(d.x["test"][:, 0, 0, 0], torch.arange(100, 120, dtype=torch.uint8))  # official order

    same, other = load_cifar10(fake_dir, split_seed=0), load_cifar10(fake_dir, split_seed=1)
    assert torch.equal(same.x["val"], d.x["val"]) and torch.equal(same.y["train"], d.y["train"])
    assert not torch.equal(other.x["val"], d.x["val"])
    assert torch.equal(other.x["test"], d.x["test"])
    assert len(load_cifar10(fake_dir, val_fraction=0.25).y["val"]) == 25
    with pytest.raises(ValueError, match="val_fraction"):
        load_cifar10(fake_dir, val_fraction=1.0)


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("L2D_DATA_DIR", raising=False)
    assert cifar10.resolve_data_dir() == tmp_path.resolve() / "data"
    monkeypatch.setenv("L2D_DATA_DIR", str(tmp_path / "env"))
    assert cifar10.resolve_data_dir() == tmp_path.resolve() / "env"
    assert cifar10.resolve_data_dir(tmp_path / "arg") == tmp_path.resolve() / "arg"


def test_synthetic_data_shape_and_learnable_signal():
    d = synthetic_cifar10(n_train=200, n_val=20, n_test=100, seed=3)
    assert d.label == "synthetic CIFAR-10-shaped data (320 images)"
    assert d.x["train"].shape == (200, 3, 32, 32) and d.x["train"].dtype == torch.uint8
    assert d.y["test"].shape == (100,) and d.y["test"].dtype == torch.int64
    assert synthetic_cifar10(seed=3).fingerprint == synthetic_cifar10(seed=3).fingerprint
    # Nearest class-mean colour classifies far above chance (10%).
    colour = {s: d.x[s].float().mean((2, 3)) for s in ("train", "test")}
    means = torch.stack([colour["train"][d.y["train"] == k].mean(0) for k in range(10)])
    pred = torch.cdist(colour["test"], means).argmin(1)
    assert (pred == d.y["test"]).float().mean() > 0.8


def test_normalize_constant_image():
    x = torch.full((2, 3, 32, 32), 200, dtype=torch.uint8)
    out = normalize(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    mean, std = torch.tensor(MEAN_255), torch.tensor(STD_255)
    torch.testing.assert_close(out.mean((0, 2, 3)), (200 - mean) / std)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.zeros(3))
    torch.testing.assert_close(normalize(torch.tensor(MEAN_255).view(1, 3, 1, 1)), torch.zeros(1, 3, 1, 1))


def _find_crop(image: torch.Tensor, out: torch.Tensor) -> list[tuple[int, int, bool]]:
    """Every (dy, dx, flipped) whose crop of the zero-padded image equals ``out``."""
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    found = []
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy : dy + 32, dx : dx + 32]
            found += [(dy, dx, flip) for flip in (False, True) if torch.equal(out, crop.flip(-1) if flip else crop)]
    return found


def test_augment_is_a_padded_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32, generator=g) * 10 - 2  # distinct values: each crop is unique
    out = augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= min(0.0, x.min()) and out.max() <= x.max()
    found = [_find_crop(x[i], out[i]) for i in range(len(x))]
    assert all(len(f) == 1 for f in found)  # every output is exactly one crop (maybe flipped)
    crops = [f[0] for f in found]
    flips = sum(flip for _, _, flip in crops)
    assert 0 < flips < len(x)
    assert len({(dy, dx) for dy, dx, _ in crops}) > 10
    # One image against a manual shifted slice: rows dy-4.., columns dx-4.., zeros outside.
    dy, dx, flip = crops[0]
    manual = torch.zeros(3, 32, 32)
    src = x[0]
    for r in range(32):
        for c in range(32):
            sr, sc = r + dy - 4, c + dx - 4
            if 0 <= sr < 32 and 0 <= sc < 32:
                manual[:, r, 31 - c if flip else c] = src[:, sr, sc]
    assert torch.equal(out[0], manual)


def test_augment_is_deterministic_and_keeps_channels_last():
    x = torch.rand(16, 3, 32, 32)
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    c = augment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.is_contiguous()
    cl = augment(x.contiguous(memory_format=torch.channels_last), torch.Generator().manual_seed(5))
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, a)
