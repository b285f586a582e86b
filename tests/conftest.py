import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import l2dlib  # noqa: F401  before torch: the suite computes in the portable numerics (l2dlib.numerics)

# The book (tests/test_book.py) is built, and its pages rendered in Chromium, in a subprocess
# that starts when collection ends and runs beside the other tests: much of its time is spent
# in one process at a time (Sphinx, a kernel waiting), so the suite's two cores finish sooner
# together (216 s -> about 160 s measured). The book's tests run last.
BOOK_SCRIPT = """
import sys
from pathlib import Path
from l2dlib import book
from l2dlib.runner import run_studies

out = Path(sys.argv[1])
# CIFAR-10 smoke results for two of the three CIFAR studies: pages show drawn panels and a
# 'no results yet' note.
run_studies(["increasing_experts", "expert_dependence"], "cifar10", "smoke", num_experts=[1, 2, 3],
            expert_ps=[0.2, 0.95], results_dir=out / "results", progress=False)
# Human experts: synthetic annotators, the increasing-experts and shifted-crowd studies.
for dataset, studies in (("cifar10h", ["increasing_experts"]), ("cifar10n", ["increasing_experts", "shifted_crowd"])):
    run_studies(studies, dataset, "smoke", num_experts=[1, 2], methods=["softmax", "ova"],
                results_dir=out / "results", progress=False)
# The training-budget page reads a committed table: a small one (the budget grid, J = 1, 2).
run_studies(["training_budget"], "mog", "smoke", num_experts=[1, 2], methods=["softmax", "ova"],
            results_dir=out / "results", progress=False)
html = book.build(profile="smoke", cifar_profile="smoke", output=out, quiet=True)
sys.path.insert(0, sys.argv[2])
import bookcheck

bookcheck.render_all(html, out)
"""
_book: dict = {}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name == "test_book.py")  # stable: the rest keep their order


def pytest_collection_finish(session):
    wanted = any(item.path.name == "test_book.py" and "built" in item.fixturenames for item in session.items)
    if not wanted or session.config.option.collectonly:
        return
    out = Path(tempfile.mkdtemp(prefix="l2d-book-"))
    # The results folder as a reader's checkout finds it (not a parameter): nothing of this
    # machine's paths may then reach a page or a downloadable notebook.
    # One thread per process: the tests beside it keep the other core.
    env = os.environ | {"L2D_RESULTS_DIR": str(out / "results"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(out / "build.log", "w")  # closed when the session ends
    script = [sys.executable, "-c", BOOK_SCRIPT, str(out), str(Path(__file__).parent)]
    # Niced: the other tests keep their pace (several wait on timeouts); the book takes the
    # cycles they leave, which are plenty on two cores.
    # A session of its own: the build's kernels and Chromium go with it when the suite ends.
    proc = subprocess.Popen(
        script, env=env, stdout=log, stderr=log, preexec_fn=lambda: os.nice(10), start_new_session=True
    )
    _book.update(out=out, proc=proc, log=log)


def pytest_sessionfinish(session, exitstatus):
    if _book:
        if _book["proc"].poll() is None:  # the suite stopped early
            os.killpg(_book["proc"].pid, signal.SIGKILL)
        _book["proc"].wait()
        _book["log"].close()
        shutil.rmtree(_book["out"], ignore_errors=True)


@pytest.fixture(scope="session")
def built_book():
    """(output folder, HTML folder) of the book built with the smoke profile."""
    if not _book:
        pytest.skip("the book build starts only when tests/test_book.py is collected")
    proc, out = _book["proc"], _book["out"]
    try:
        proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
    _book["log"].flush()
    assert proc.returncode == 0, (out / "build.log").read_text()[-5000:]
    return out, out / "_build" / "html"


@pytest.fixture(autouse=True)
def _threads():
    # The tests are sized for the 2-core CI machine; while the book builds beside them, one
    # core is its (two threads then wait on each other and the suite ran 25% slower).
    import torch

    torch.set_num_threads(1 if _book and _book["proc"].poll() is None else 2)


def _image_rows(start: int, n: int):
    """Rows [n, 3072] in the official channel-planar layout: image i's pixel (c, h, w) is
    (i + 7c + h) % 256, so its index and the layout can be read back."""
    import numpy as np

    i = np.arange(start, start + n).reshape(n, 1, 1, 1)
    c = np.arange(3).reshape(1, 3, 1, 1)
    h = np.arange(32).reshape(1, 1, 32, 1)
    return np.broadcast_to((i + 7 * c + h) % 256, (n, 3, 32, 32)).astype(np.uint8).reshape(n, 3072)


@pytest.fixture
def write_fake_cifar10():
    """A writer of fake CIFAR-10 files, ``per_batch`` images in each of the six batch files,
    in the official pickle format (bytes keys, protocol 2), under ``folder``/cifar-10-batches-py."""
    import pickle

    from l2dlib.data import cifar10

    def write(folder: Path, per_batch: int) -> Path:
        root = folder / "cifar-10-batches-py"
        root.mkdir(parents=True)
        names = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
        for k, name in enumerate(names):
            start = k * per_batch
            batch = {
                b"batch_label": name.encode(),
                b"data": _image_rows(start, per_batch),
                b"labels": [(start + j) % 10 for j in range(per_batch)],
                b"filenames": [f"{start + j}.png".encode() for j in range(per_batch)],
            }
            # As the official files (numpy 1): the array is rebuilt by numpy.core.multiarray.
            blob = pickle.dumps(batch, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            (root / name).write_bytes(blob)
        (root / "batches.meta").write_bytes(
            pickle.dumps({b"label_names": [c.encode() for c in cifar10.CLASSES]}, protocol=2)
        )
        return folder

    return write
