"""Result files: a cache entry per configuration, study tables, provenance.

Layout under a results directory::

    <dataset>/<study>-<profile>.csv    the tidy table (one row per method, seed, config, expert)
    <dataset>/<study>-<profile>.json   its provenance
    <dataset>/cache/<study>-<profile>/<key>.json   one finished configuration each
    <dataset>/cache/<study>-<profile>/<key>.points.npz   its per-point estimates and outcomes

A cache key hashes the configuration and ``RESULTS_VERSION``. Bump the version by hand
when a change alters what a configuration computes (a loss, an estimator, a schedule);
unrelated commits leave committed results readable. Every write goes to a temporary file
in the same folder and is renamed into place, so a crash never leaves half a file.

One concern over 350 lines: what is on disk and whether it can be trusted; most of the
file validates entries and tables before anything reads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .evaluation import BIN_KEYS, RELIABILITY_BINS, ROW_KEYS, Points
from .files import UMASK, atomic_write_bytes, atomic_write_text

# 2: reliability bins and ECE variants; 3: MoG lr 0.1 -> 0.05; 4: MoG stacks of equal J only
# (a configuration's bits no longer depend on its companions), config_key column; 5: MoG data
# from the paper's parameters, separate train/validation/test draws of 20,000 points each;
# 6: the smooth ECE; MoG test points drawn afresh per training seed; the surrogate losses
# per split and the Bayes risk; schedule settings a configuration may set itself.
RESULTS_VERSION = 6


class OutdatedResults(ValueError):
    """A result file written by another results version."""


def config_key(config: dict[str, Any]) -> str:
    """Stable 16-hex-digit key of a JSON-able configuration and the results version."""
    blob = json.dumps({"config": config, "results_version": RESULTS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@contextlib.contextmanager
def table_lock(results_dir, dataset: str, study: str, profile: str) -> Iterator[None]:
    """Hold the exclusive lock of one study table (a lock file beside it, ``flock``): two runs
    into one folder take turns, and the second sees what the first wrote. Says once when it
    waits. Where ``flock`` does not exist (Windows), there is no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    csv = table_paths(results_dir, dataset, study, profile)[0]
    path = csv.with_name(f".{csv.stem}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~UMASK)
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another run that writes {csv} ...", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def resolve_dir(results_dir: str | Path | None = None) -> Path:
    """The results folder: ``results_dir`` (``~`` expanded); or, for None, ``$L2D_RESULTS_DIR``,
    else the repository's ``results/`` beside the package (a checkout), else ``./results``.
    None is what notebooks and the CLI default to, so they work from any folder."""
    if results_dir is not None:
        return Path(results_dir).expanduser()
    if os.environ.get("L2D_RESULTS_DIR"):
        return Path(os.environ["L2D_RESULTS_DIR"]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    return repo / "results" if (repo / "pyproject.toml").exists() else Path("results")


def table_paths(results_dir: str | Path | None, dataset: str, study: str, profile: str) -> tuple[Path, Path]:
    base = resolve_dir(results_dir) / dataset / f"{study}-{profile}"
    return base.with_suffix(".csv"), base.with_suffix(".json")


def reliability_path(results_dir: str | Path, dataset: str, study: str, profile: str) -> Path:
    return table_paths(results_dir, dataset, study, profile)[0].with_suffix(".reliability.csv")


def cache_dir(results_dir: str | Path | None, dataset: str, study: str, profile: str) -> Path:
    return resolve_dir(results_dir) / dataset / "cache" / f"{study}-{profile}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


# Which numbers a row or a bin may hold: probabilities and ECEs lie in [0, 1]; the raw
# softmax estimate's mean, the uncapped ECE and the losses may exceed 1; a bin count is a
# whole number.
_UNBOUNDED = {"mean_estimate", "ece_uncapped", "train_loss", "val_loss", "test_loss", "bayes_risk"}
_NOT_VALUES = {"expert"}


def value_problem(name: str, value: Any) -> str | None:
    """What is wrong with one number of a row or bin (None: missing, allowed), or None."""
    if value is None or name in _NOT_VALUES:
        return None
    if not math.isfinite(value):
        return f"{name} is {value}"
    if name == "count":
        return None if value >= 0 and float(value).is_integer() else f"count is {value}"
    if value < 0 or (name not in _UNBOUNDED and value > 1):
        return f"{name} is {value}, outside [0, {'inf' if name in _UNBOUNDED else 1}]"
    return None


def _entry_problem(entry: Any, num_experts: int | None) -> str | None:
    """What is wrong with a parsed cache entry (keys and types), or None."""
    if not isinstance(entry, dict):
        return f"expected an object, got {type(entry).__name__}"
    for key in ("results_version", "config", "rows", "bins", "best_epoch"):
        if key not in entry:
            return f"missing key {key!r}"
    if not _is_int(entry["results_version"]):
        return f"results_version is {entry['results_version']!r}, not an integer"
    if not isinstance(entry["config"], dict) or not _is_int(entry["best_epoch"]):
        return "config must be an object and best_epoch an integer"
    rows, bins = entry["rows"], entry["bins"]
    if not isinstance(rows, list) or not isinstance(bins, list):
        return "rows and bins must be lists"
    want = num_experts if num_experts is not None else entry["config"].get("num_experts")
    if len(rows) != want:
        return f"{len(rows)} rows for {want} experts"
    for what, items, keys in (("row", rows, ROW_KEYS), ("bin", bins, BIN_KEYS)):
        for item in items:
            if not isinstance(item, dict):
                return f"a {what} is not an object"
            bad = next((k for k in keys if k not in item or not _is_number(item[k])), None)
            if bad is not None:
                return f"a {what} lacks a numeric {bad!r}"
            problem = next((p for k in keys if (p := value_problem(k, item[k]))), None)
            if problem is not None:
                return f"a {what}'s {problem}"
    if len(bins) != want * RELIABILITY_BINS:
        return f"{len(bins)} reliability bins for {want} experts"
    return None


def read_cached(path: Path, num_experts: int | None = None) -> dict[str, Any] | None:
    """A finished configuration's entry, or None when absent or invalid (missing keys, wrong
    types, rows for another number of experts): then a warning names the file and the
    configuration is recomputed. An entry of another results version is an error."""
    try:
        entry = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        problem = str(err)
    else:
        version = entry.get("results_version") if isinstance(entry, dict) else None
        # Another version first: its rows may lack what this version adds.
        problem = None if _is_int(version) and version != RESULTS_VERSION else _entry_problem(entry, num_experts)
        if problem is None and entry["results_version"] != RESULTS_VERSION:
            raise OutdatedResults(
                f"{path} was written by results version {entry['results_version']}, this code is version "
                f"{RESULTS_VERSION}: delete it or re-run with --force"
            )
    if problem is None and isinstance(entry, dict) and entry.get("sha256") not in (None, _entry_sha(entry)):
        problem = "its numbers differ from those its sha256 was taken of"
    if problem is not None:
        warnings.warn(f"ignoring invalid cache file {path} ({problem}); recomputing it", stacklevel=2)
        return None
    return entry


def _entry_sha(entry: dict[str, Any]) -> str:
    """The sha256 of an entry's numbers (rows and bins), as stored beside them."""
    return _sha256(json.dumps({"rows": entry.get("rows"), "bins": entry.get("bins")}, sort_keys=True).encode())


def write_cached(path: Path, config: dict[str, Any], rows: list[dict], extra: dict[str, Any]) -> None:
    entry = {"results_version": RESULTS_VERSION, "config": config, "rows": rows, **extra}
    entry["sha256"] = _entry_sha(entry)  # an edited number no longer passes for a computed one
    atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=True))


def points_path(entry_path: Path) -> Path:
    """Where a cache entry's per-point estimates live (``<key>.points.npz`` beside it)."""
    return entry_path.with_name(entry_path.stem + ".points.npz")


def write_points(entry_path: Path, points: Points) -> None:
    """A configuration's :class:`~l2dlib.evaluation.Points`, compressed (outcomes as bits),
    beside its cache entry. Git-ignored like the cache: 20,000 test points cost about 20 kB
    per expert compressed (40 kB raw)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf, estimates=points.estimates, correct=np.packbits(points.correct, axis=0), rows=len(points.correct)
    )
    atomic_write_bytes(points_path(entry_path), buf.getvalue())


def read_points(entry_path: Path) -> Points:
    """The :class:`~l2dlib.evaluation.Points` stored beside a cache entry."""
    path = points_path(entry_path)
    try:
        with np.load(path) as f:
            rows = int(f["rows"])
            estimates, bits = f["estimates"], f["correct"]
    except FileNotFoundError:
        raise FileNotFoundError(f"no per-point estimates at {path}: recompute the configuration") from None
    correct = np.unpackbits(bits, axis=0, count=rows).astype(bool)
    if estimates.dtype != np.float16 or estimates.shape != correct.shape:
        raise ValueError(f"{path} holds estimates {estimates.dtype} {estimates.shape} for outcomes {correct.shape}")
    return Points(estimates, correct)


def write_table(
    results_dir,
    dataset: str,
    study: str,
    profile: str,
    table: pd.DataFrame,
    provenance: dict[str, Any],
    reliability: pd.DataFrame,
) -> tuple[Path, Path]:
    """The table, its reliability-diagram bins (``.reliability.csv``), then the provenance
    (written last: its presence and row counts vouch for the other two)."""
    csv_path, json_path = table_paths(results_dir, dataset, study, profile)
    text, bins = table.to_csv(index=False), reliability.to_csv(index=False)
    atomic_write_text(csv_path, text)
    atomic_write_text(reliability_path(results_dir, dataset, study, profile), bins)
    provenance = provenance | {
        "num_reliability_rows": len(reliability),
        "sha256": {"table": _sha256(text.encode()), "reliability": _sha256(bins.encode())},
    }
    atomic_write_text(json_path, json.dumps(provenance, indent=1, sort_keys=True))
    return csv_path, json_path


def _table_problem(table: pd.DataFrame, reliability: bool) -> str | None:
    """What is wrong with a table's numbers (non-numeric, not finite, out of range, a
    configuration's expert twice), or None."""
    keys = BIN_KEYS if reliability else ROW_KEYS
    ident = ["config_key", "expert", *(["bin_lower"] if reliability else [])]
    for name in [k for k in keys if k in table]:
        column = table[name]
        if not pd.api.types.is_numeric_dtype(column):
            return f"a non-numeric {name!r}"
        if name in ("ece", "count", "expert") and column.isna().any():
            return f"an empty {name!r}"
        problem = next((p for v in column.dropna() if (p := value_problem(name, float(v)))), None)
        if problem is not None:
            return f"a row whose {problem}"
    if set(ident) <= set(table) and table.duplicated(ident).any():
        return "a configuration's row twice"
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_table(
    results_dir, dataset: str, study: str, profile: str, *, reliability: bool = False
) -> tuple[pd.DataFrame, dict]:
    """A study table (or, with ``reliability``, its reliability-diagram bins) and its
    provenance; clear errors when missing, corrupt or outdated."""
    csv_path, json_path = table_paths(results_dir, dataset, study, profile)
    expected_rows = "num_rows"
    if reliability:
        csv_path, expected_rows = reliability_path(results_dir, dataset, study, profile), "num_reliability_rows"
    hint = f"run `python -m l2dlib run {study} --dataset {dataset} --profile {profile}`"
    if not csv_path.exists() or not json_path.exists():
        raise FileNotFoundError(f"no results at {csv_path} (and .json): {hint}")
    try:
        provenance = json.loads(json_path.read_text())
        version = provenance["results_version"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"{json_path} is corrupt ({err}): {hint} --force") from err
    if version != RESULTS_VERSION:
        raise OutdatedResults(
            f"{csv_path} was written by results version {version}, this code is version "
            f"{RESULTS_VERSION}: {hint} --force"
        )
    try:
        data = csv_path.read_bytes()
        table = pd.read_csv(io.BytesIO(data))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{csv_path} is corrupt ({err}): {hint} --force") from err
    if not _is_int(provenance.get(expected_rows, 0)):
        raise ValueError(f"{json_path} is corrupt ({expected_rows} is {provenance[expected_rows]!r}): {hint} --force")
    if len(table) != provenance.get(expected_rows, len(table)):
        raise ValueError(
            f"{csv_path} has {len(table)} rows but its provenance says {provenance[expected_rows]} "
            f"(truncated?): {hint} --force"
        )
    if (problem := _table_problem(table, reliability)) is not None:
        raise ValueError(f"{csv_path} holds {problem}: {hint} --force")
    hashes = provenance.get("sha256") or {}
    if not isinstance(hashes, dict):
        raise ValueError(f"{json_path} is corrupt (sha256 is {hashes!r}): {hint} --force")
    recorded = hashes.get("reliability" if reliability else "table")
    if recorded is not None and _sha256(data) != recorded:
        raise ValueError(
            f"{csv_path} differs from the file its provenance describes (sha256): edited by hand or "
            f"by another run? {hint} --force"
        )
    return table, provenance


def git_commit() -> str:
    """The source tree's commit (with '+dirty' when code has uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        # Changed result files do not make the code dirty.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def environment() -> dict[str, Any]:
    versions = {}
    for pkg in ("l2dlib", "torch", "numpy", "pandas"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    from . import numerics

    return {
        "git_commit": git_commit(),
        "numerics": numerics.state(),
        "python": platform.python_version(),
        "packages": versions,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def provenance_table(results_dir) -> pd.DataFrame:
    """One row per study table under ``results_dir``: what made it, where and when."""
    rows = []
    for path in sorted(resolve_dir(results_dir).glob("*/*.json")):
        try:
            p = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if "study" not in p:
            continue
        rows.append(
            {
                "table": f"{p['dataset']}/{path.stem}.csv",
                "profile": p["profile"],
                "seeds": " ".join(map(str, p["seeds"])),
                "methods": " ".join(p["methods"]),
                "data": p["data_label"] if isinstance(p["data_label"], str) else f"{len(p['data_label'])} draws",
                "data sha256": p["data_fingerprint"][:12] if isinstance(p["data_fingerprint"], str) else "per draw",
                "commit": p["git_commit"][:12] + ("+dirty" if p["git_commit"].endswith("+dirty") else ""),
                "device": p["device"],
                "wall s": p["wall_seconds"],
                "computed / configs": f"{p['num_computed']} / {p['num_configs']}",
                "results version": p["results_version"],
                "created": p["created"],
            }
        )
    return pd.DataFrame(rows)


def find_table(
    results_dir, dataset: str, study: str, profile: str, *, from_bins: bool = False
) -> tuple[pd.DataFrame | None, dict | None]:
    """Like :func:`load_table`, but a missing table gives (None, None) instead of an error,
    for pages that show committed results where they exist; with ``from_bins`` the columns
    computed from the reliability bins (:func:`l2dlib.evaluation.with_bin_metrics`)."""
    try:
        table, provenance = load_table(results_dir, dataset, study, profile)
    except FileNotFoundError:
        return None, None
    return (with_bin_metrics(results_dir, dataset, study, profile, table) if from_bins else table), provenance


def with_bin_metrics(results_dir, dataset: str, study: str, profile: str, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns computed from the study's reliability bins."""
    from . import evaluation

    bins, _ = load_table(results_dir, dataset, study, profile, reliability=True)
    return evaluation.with_bin_metrics(table, bins)
