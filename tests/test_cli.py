"""The CLI end to end, with the smoke profile in a temporary folder: each study, and bad
input answered with one clear line (in-process where no subprocess is needed)."""

import json
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from l2dlib import METHODS, results
from l2dlib.__main__ import main
from l2dlib.evaluation import RELIABILITY_BINS
from l2dlib.runner import run_studies

REQUIRED = [
    "study",
    "dataset",
    "profile",
    "method",
    "seed",
    "num_experts",
    "expert_p",
    "expert",
    "expert_kind",
    "ece",
    "system_accuracy",
    "classifier_accuracy",
    "coverage",
    "frac_estimates_above_1",
]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "l2dlib", *args], capture_output=True, text=True)


def test_cli_runs_a_study_in_a_subprocess_with_a_quoted_command(tmp_path):
    out = tmp_path / "with space"
    proc = cli("run", "expert_dependence", "--profile", "smoke", "--results-dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = len(METHODS) * 5 * 4
    table = pd.read_csv(out / "mog" / "expert_dependence-smoke.csv")
    assert list(table.columns[: len(REQUIRED)]) == REQUIRED and len(table) == rows
    assert table["ece"].between(0, 1).all() and table["system_accuracy"].between(0, 1).all()
    assert set(table["expert_kind"]) == {"random", "probabilistic"}
    assert sorted(table["expert_p"].unique()) == [0.2, 0.4, 0.6, 0.8, 0.95]
    prov = json.loads((out / "mog" / "expert_dependence-smoke.json").read_text())
    for key in ("git_commit", "packages", "device", "data_fingerprint", "seeds", "wall_seconds", "configurations"):
        assert key in prov
    assert prov["seeds"] == [0] and prov["num_rows"] == rows and prov["num_configs"] == len(METHODS) * 5
    assert shlex.split(prov["command"])[-3:] == ["--results-dir", str(out), "--quiet"]
    bins, _ = results.load_table(out, "mog", "expert_dependence", "smoke", reliability=True)
    assert len(bins) == rows * RELIABILITY_BINS
    per_expert = bins.groupby(["method", "seed", "num_experts", "expert_p", "expert"], dropna=False)["count"].sum()
    assert (per_expert == per_expert.iloc[0]).all()  # every expert's bins hold the whole test split


def test_cli_increasing_experts_in_process(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "increasing_experts",
                "--profile",
                "smoke",
                "--results-dir",
                str(tmp_path),
                "--num-experts",
                "1",
                "3",
                "--quiet",
            ]
        )
        == 0
    )
    table, prov = results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    assert len(table) == len(METHODS) * (1 + 3) and set(table["method"]) == set(METHODS)
    assert f"increasing_experts: {len(METHODS) * 4} rows" in capsys.readouterr().out


@pytest.mark.parametrize("study,js", [("increasing_experts", [1, 2]), ("specialized_experts", [1, 5])])
def test_cifar10_smoke_studies(tmp_path, study, js):
    run_studies(
        [study, "expert_dependence"],
        "cifar10",
        "smoke",
        num_experts=js,
        expert_ps=[0.5],
        methods=["softmax", "ova"],
        results_dir=tmp_path,
        progress=False,
    )
    table, prov = results.load_table(tmp_path, "cifar10", study, "smoke")
    assert len(table) == 2 * sum(js) and set(table["method"]) == {"softmax", "ova"}
    assert table["data_label"].str.startswith("synthetic CIFAR-10-shaped data").all()
    assert prov["settings"]["model"] == "fast_resnet" and prov["data_label"] == table["data_label"][0]
    if study == "specialized_experts":
        assert set(table["expert_kind"]) == {"specialist"} and table["num_experts"].max() == 5
    dep, _ = results.load_table(tmp_path, "cifar10", "expert_dependence", "smoke")
    assert len(dep) == 2 * 4


def test_cifar10_without_data_names_both_ways_to_get_it(tmp_path, monkeypatch):
    from l2dlib.data import cifar10

    monkeypatch.setattr(cifar10, "download_cifar10", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(FileNotFoundError) as err:
        run_studies(
            ["increasing_experts"],
            "cifar10",
            "paper",
            results_dir=tmp_path,
            data_dir=tmp_path / "none",
            device="cpu",
            progress=False,
        )
    assert "cifar-10-python.tar.gz" in str(err.value) and "to_batches.py" in str(err.value)
    assert not list((tmp_path / "cifar10").rglob("*.json"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "bogus"], "invalid choice: 'bogus'"),
        (["run", "expert_dependence", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["run", "expert_dependence", "--methods", "sigmoid"], "invalid choice: 'sigmoid'"),
        (["run", "expert_dependence", "--profile", "huge"], "invalid choice: 'huge'"),
        (
            ["run", "increasing_experts", "--num-experts", "0"],
            "argument --num-experts: expected an integer >= 1, got '0'",
        ),
        (["run", "increasing_experts", "--seeds", "-1"], "argument --seeds: expected a non-negative integer, got '-1'"),
        (["run", "increasing_experts", "--seeds", "x"], "argument --seeds: expected a non-negative integer, got 'x'"),
        (
            ["run", "expert_dependence", "--expert-p", "0.5", "1.5"],
            "argument --expert-p: expected a number in [0, 1], got '1.5'",
        ),
        (["run", "specialized_experts", "--num-experts", "3"], "error: specialized_experts on mog allows J <= 2"),
        (
            ["run", "specialized_experts", "--dataset", "cifar10", "--profile", "quick"],
            "error: profile 'quick' is not defined for dataset 'cifar10' "
            "(it has: smoke, frozen_features, cpu_end_to_end, paper, faithful)",
        ),
        (
            ["run", "expert_dependence", "--num-experts", "5"],
            "error: num_experts (--num-experts) does not apply to expert_dependence: expert_dependence varies p",
        ),
        (
            ["run", "increasing_experts", "--expert-p", "0.3"],
            "error: expert_ps (--expert-p) does not apply to increasing_experts: increasing_experts varies J",
        ),
        (
            ["run", "increasing_experts", "--data-dir", "/tmp"],
            "error: data_dir (--data-dir) does not apply to dataset mog",
        ),
        (
            ["run", "increasing_experts", "--dataset", "cifar10", "--data-dir", "/tmp"],
            "error: data_dir (--data-dir) does not apply to profile 'smoke' (synthetic images)",
        ),
    ],
)
def test_cli_rejects_bad_input_with_one_clear_line(tmp_path, capsys, args, message):
    argv = [*args, "--results-dir", str(tmp_path)] + ([] if "--profile" in args else ["--profile", "smoke"])
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()[-1]) > 0
    assert not list(tmp_path.rglob("*.csv"))


def test_a_gpu_profile_on_a_cpu_machine_is_refused_unless_asked(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "increasing_experts", "--dataset", "cifar10", "--results-dir", str(tmp_path)]) == 2
    assert "needs a GPU, and torch sees none: pass device 'cpu' (--device cpu)" in capsys.readouterr().err


def test_duplicates_are_removed_with_a_note(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "increasing_experts",
                "--profile",
                "smoke",
                "--seeds",
                "0",
                "0",
                "--num-experts",
                "1",
                "1",
                "--methods",
                "ova",
                "ova",
                "--results-dir",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    for name, value in (("seeds", "0"), ("methods", "ova"), ("num_experts", "1")):
        assert f"warning: {name}: duplicate value(s) {value} removed" in err
    table, prov = results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    assert len(table) == 1 and prov["num_configs"] == 1


def test_tilde_is_expanded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "run",
                "increasing_experts",
                "--profile",
                "smoke",
                "--num-experts",
                "1",
                "--methods",
                "ova",
                "--results-dir=~/x",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "x" / "mog" / "increasing_experts-smoke.csv").exists()
    assert not (tmp_path / "~").exists()


def test_a_results_dir_that_is_a_file_fails_before_training(tmp_path, capsys, monkeypatch):
    import l2dlib.runner as R

    monkeypatch.setattr(R, "load_data", lambda *a, **k: pytest.fail("loaded data before checking the folder"))
    (tmp_path / "file").write_text("")
    assert main(["run", "increasing_experts", "--profile", "smoke", "--results-dir", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: cannot write results to {tmp_path / 'file'}/mog/cache/increasing_experts-smoke: Not a directory"
    ]


def test_a_write_error_after_training_names_the_path(tmp_path, capsys, monkeypatch):
    real = results.atomic_write_text

    def fail_on_tables(path, text):
        if path.suffix == ".csv":
            raise OSError(f"cannot write {path}: No space left on device")
        real(path, text)

    monkeypatch.setattr(results, "atomic_write_text", fail_on_tables)
    assert (
        main(
            [
                "run",
                "increasing_experts",
                "--profile",
                "smoke",
                "--num-experts",
                "1",
                "--methods",
                "ova",
                "--results-dir",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write {tmp_path}/mog/increasing_experts-smoke.csv: No space left on device"]
    assert len(list((tmp_path / "mog" / "cache").rglob("*.json"))) == 1  # the compute is kept


def test_ctrl_c_in_the_features_command_is_one_line(monkeypatch, capsys):
    import l2dlib.__main__ as cli

    monkeypatch.setattr(cli, "_features", lambda args: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["features"]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "interrupted: nothing of the unfinished extractor or features was written"
    ]
