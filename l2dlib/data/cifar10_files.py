"""Where the CIFAR-10 files live and how to get them: the official archive (md5-checked,
downloaded only where the network allows) or the offline JPEG copy's converter."""

from __future__ import annotations

import hashlib
import http.client
import os
import shlex
import socket
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

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
# The offline JPEG copy as to_batches.py writes it (sha256 over the files in OFFICIAL_MD5
# order): with --official-order, and without it (a fixed shuffle, which per-image data such
# as CIFAR-10H and CIFAR-10N cannot be lined up with).
OFFLINE_SHA256 = {
    "607bf64a6e52d1ac10cb03956c3d88236d6d08683b0f50eb601018268c901a98": "official order",
    "5ec338941b83a3d56730c0fffa616b7ad1a30eb3e04add7159ea460e1cf07bb5": "shuffled order",
}
DOWNLOAD_TIMEOUT_S = 5.0


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py/``, as an absolute path:
    ``data_dir`` if given, else ``$L2D_DATA_DIR``, else ``data/`` in the current directory."""
    chosen = data_dir if data_dir is not None else os.environ.get("L2D_DATA_DIR") or "data"
    return Path(chosen).expanduser().resolve()


def missing_files(root: Path) -> list[str]:
    return [name for name in OFFICIAL_MD5 if not (root / name).is_file()]


def download_cifar10(data_dir: str | os.PathLike | None = None, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
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
            for name in missing_files(root):
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


def not_found_message(data_dir: Path, missing: list[str], reason: str) -> str:
    script = _to_batches_script()
    script_text = shlex.quote(str(script)) if script else "shared/data/cifar10-jpeg/to_batches.py"
    where = shlex.quote(str(data_dir))
    lacks = "has none of the batch files" if len(missing) == len(OFFICIAL_MD5) else f"lacks {', '.join(missing)}"
    return (
        f"CIFAR-10 not found: {data_dir / BATCH_DIR} {lacks} ({reason}).\n"
        f"Get it one of two ways, then run again:\n"
        f"  1. canonical: on a machine with internet access download {ARCHIVE_URL}\n"
        f"     (md5 {ARCHIVE_MD5}) and unpack it into {data_dir}:\n"
        f"       tar -xzf cifar-10-python.tar.gz -C {where}\n"
        f"  2. offline: build the same layout from the JPEG re-encoding (NON-CANONICAL: lossy\n"
        f"     pixels; results are labelled so), in the official order, needs numpy and pillow:\n"
        f"       python {script_text} {where} --official-order\n"
        f"     (see the README.md beside to_batches.py).\n"
        f"Or point data_dir / $L2D_DATA_DIR at a folder that already holds {BATCH_DIR}/."
    )
