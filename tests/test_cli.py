"""The CLI and the result cache end to end, with the smoke profile in a temporary folder."""

import dataclasses
import json
import subprocess
import sys

import pandas as pd
import pytest

import l2dlib.experiments as X
from l2dlib import METHODS, results
from l2dlib.__main__ import main

REQUIRED = ["study", "dataset", "profile", "method", "seed", "num_experts", "expert_p", "expert",
            "expert_kind", "ece", "system_accuracy", "classifier_accuracy", "coverage",
            "frac_estimates_above_1"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "l2dlib", *args], capture_output=True, text=True)


@pytest.mark.parametrize("study,rows", [("increasing_experts", 3 * 36), ("expert_dependence", 3 * 5 * 4)])
def test_cli_runs_each_study_with_the_smoke_profile(tmp_path, study, rows):
    proc = cli("run", study, "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "mog" / f"{study}-smoke.csv")
    assert list(table.columns[: len(REQUIRED)]) == REQUIRED and len(table) == rows
    assert table["ece"].between(0, 1).all() and table["system_accuracy"].between(0, 1).all()
    prov = json.loads((tmp_path / "mog" / f"{study}-smoke.json").read_text())
    for key in ("git_commit", "packages", "device", "data_fingerprint", "seeds", "wall_seconds"):
        assert key in prov
    assert prov["seeds"] == [0] and prov["num_rows"] == rows
    assert set(table["method"]) == set(METHODS)
    bins, _ = results.load_table(tmp_path, "mog", study, "smoke", reliability=True)
    assert len(bins) == rows * X.RELIABILITY_BINS
    per_expert = bins.groupby(["method", "seed", "num_experts", "expert_p", "expert"], dropna=False)["count"].sum()
    assert (per_expert == per_expert.iloc[0]).all()  # every expert's bins hold the whole test split
    if study == "expert_dependence":
        assert set(table["expert_kind"]) == {"random", "probabilistic"}
        assert sorted(table["expert_p"].unique()) == [0.2, 0.4, 0.6, 0.8, 0.95]


@pytest.mark.parametrize("study,rows", [("increasing_experts", 3 * 36), ("expert_dependence", 3 * 5 * 4),
                                        ("specialized_experts", 3 * 15)])
def test_cli_runs_each_cifar10_study_with_the_smoke_profile(tmp_path, study, rows):
    proc = cli("run", study, "--dataset", "cifar10", "--profile", "smoke", "--results-dir", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    table, prov = results.load_table(tmp_path, "cifar10", study, "smoke")
    assert len(table) == rows and set(table["method"]) == set(METHODS)
    assert table["data_label"].str.startswith("synthetic CIFAR-10-shaped data").all()
    assert prov["settings"]["model"] == "fast_resnet" and prov["data_label"] == table["data_label"][0]
    if study == "specialized_experts":
        assert set(table["expert_kind"]) == {"specialist"} and table["num_experts"].max() == 5


def test_cifar10_without_data_names_both_ways_to_get_it(tmp_path, monkeypatch):
    from l2dlib.data import cifar10

    monkeypatch.setattr(cifar10, "download_cifar10", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(FileNotFoundError) as err:
        X.run_study("increasing_experts", "cifar10", "paper", results_dir=tmp_path, data_dir=tmp_path / "none",
                    progress=False)
    assert "cifar-10-python.tar.gz" in str(err.value) and "to_batches.py" in str(err.value)
    assert not (tmp_path / "cifar10").exists()


def test_same_seed_twice_gives_identical_tables(tmp_path):
    args = ["run", "increasing_experts", "--profile", "smoke", "--num-experts", "1", "3", "--quiet"]
    assert main([*args, "--results-dir", str(tmp_path / "a")]) == 0
    assert main([*args, "--results-dir", str(tmp_path / "b")]) == 0
    a = pd.read_csv(tmp_path / "a" / "mog" / "increasing_experts-smoke.csv")
    b = pd.read_csv(tmp_path / "b" / "mog" / "increasing_experts-smoke.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("args,message", [
    (["run", "bogus"], "invalid choice: 'bogus'"),
    (["run", "expert_dependence", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["run", "expert_dependence", "--methods", "sigmoid"], "invalid choice: 'sigmoid'"),
    (["run", "expert_dependence", "--profile", "huge"], "invalid choice: 'huge'"),
    (["run", "increasing_experts", "--num-experts", "0"], "error: number of experts J must be >= 1, got 0"),
    (["run", "expert_dependence", "--expert-p", "0.5", "1.5"], "error: expert correctness probability p must lie in [0, 1], got 1.5"),
    (["run", "specialized_experts", "--num-experts", "3"], "error: specialized_experts on mog allows J <= 2"),
    (["run", "specialized_experts", "--dataset", "cifar10", "--profile", "quick"], "error: profile 'quick' is not defined for dataset 'cifar10'"),
])
def test_cli_rejects_bad_input_with_one_clear_line(tmp_path, args, message):
    proc = cli(*args, "--profile", "smoke", "--results-dir", str(tmp_path)) if "--profile" not in args \
        else cli(*args, "--results-dir", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mog").exists() or not any((tmp_path / "mog").glob("*.csv"))


def _smoke(tmp_path, **kw):
    return X.run_study("increasing_experts", "mog", "smoke", results_dir=tmp_path, progress=False,
                       num_experts=[1, 2], **kw)


def test_results_from_another_version_are_refused(tmp_path, monkeypatch):
    _smoke(tmp_path)
    v = results.RESULTS_VERSION
    monkeypatch.setattr(results, "RESULTS_VERSION", v + 1)
    with pytest.raises(ValueError, match=f"was written by results version {v}, this code is version {v + 1}"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    # a cache entry claiming another version, under the current key
    monkeypatch.undo()
    entry = next((tmp_path / "mog" / "cache" / "increasing_experts-smoke").glob("*.json"))
    data = json.loads(entry.read_text())
    entry.write_text(json.dumps(data | {"results_version": 99}))
    with pytest.raises(ValueError, match="results version 99.*--force"):
        _smoke(tmp_path)
    _smoke(tmp_path, force=True)  # --force recomputes and overwrites


def test_corrupt_or_truncated_files(tmp_path):
    first = _smoke(tmp_path)
    cache = sorted((tmp_path / "mog" / "cache" / "increasing_experts-smoke").glob("*.json"))
    cache[0].write_text(cache[0].read_text()[:40])  # truncated: recomputed with a warning
    with pytest.warns(UserWarning, match="unreadable cache file"):
        again = _smoke(tmp_path)
    pd.testing.assert_frame_equal(first, again)
    prov = json.loads((tmp_path / "mog" / "increasing_experts-smoke.json").read_text())
    assert prov["num_computed"] == 1
    csv = tmp_path / "mog" / "increasing_experts-smoke.csv"
    csv.write_text("\n".join(csv.read_text().splitlines()[:3]))
    with pytest.raises(ValueError, match="truncated"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    (tmp_path / "mog" / "increasing_experts-smoke.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt.*--force"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    with pytest.raises(FileNotFoundError, match="python -m l2dlib run expert_dependence"):
        results.load_table(tmp_path, "mog", "expert_dependence", "smoke")


def test_interrupted_run_resumes_with_finished_configs(tmp_path, monkeypatch):
    prof = dataclasses.replace(X._PROFILES[("mog", "smoke")], max_models_per_batch=4)
    monkeypatch.setitem(X._PROFILES, ("mog", "smoke"), prof)
    real, calls = X._train_batch, []

    def interrupt_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(X, "_train_batch", interrupt_second_batch)
    with pytest.raises(KeyboardInterrupt):
        X.run_study("increasing_experts", "mog", "smoke", results_dir=tmp_path, progress=False)
    mog = tmp_path / "mog"
    assert len(list((mog / "cache" / "increasing_experts-smoke").glob("*.json"))) == 4
    assert not list(mog.rglob("*.tmp")) and not (mog / "increasing_experts-smoke.csv").exists()
    monkeypatch.setattr(X, "_train_batch", real)
    table = X.run_study("increasing_experts", "mog", "smoke", results_dir=tmp_path, progress=False)
    assert len(table) == 3 * 36
    assert json.loads((mog / "increasing_experts-smoke.json").read_text())["num_computed"] == 3 * 8 - 4
