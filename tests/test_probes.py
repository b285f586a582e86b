"""Probes of the cache and the tables that once failed: each now answered with one line
naming the file, a recomputation where one is possible, and no write where none is needed."""

import json
import shutil
import stat
import subprocess
import sys

import pandas as pd
import pytest

import l2dlib.runner as R
from l2dlib import files, pages, results
from l2dlib.evaluation import BIN_COLUMNS


def _smoke(tmp_path, **kw):
    kw.setdefault("num_experts", [1, 2])
    kw.setdefault("methods", ["ova"])
    return R.run_studies(["increasing_experts"], "mog", "smoke", results_dir=tmp_path, progress=False, **kw)[
        "increasing_experts"
    ]


def _csv(tmp_path):
    return tmp_path / "mog" / "increasing_experts-smoke.csv"


def _resign(tmp_path):
    """Make the provenance vouch for the edited table (as a run would have written it), so
    the check under test is the value check, not the hash."""
    import hashlib

    meta = _csv(tmp_path).with_suffix(".json")
    prov = json.loads(meta.read_text())
    prov["sha256"]["table"] = hashlib.sha256(_csv(tmp_path).read_bytes()).hexdigest()
    meta.write_text(json.dumps(prov))


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t.assign(ece=t["ece"].where(t.index != 0)), "an empty 'ece'"),
        (lambda t: t.assign(ece=t["ece"].astype(object).where(t.index != 0, "high")), "a non-numeric 'ece'"),
        (
            lambda t: t.assign(system_accuracy=t["system_accuracy"].where(t.index != 0, 1.5)),
            "a row whose system_accuracy is 1.5",
        ),
        (lambda t: pd.concat([t, t.iloc[[0]]]), "a configuration's row twice"),
    ],
    ids=["nan-ece", "text-ece", "out-of-range", "duplicate-row"],
)
def test_a_table_with_bad_numbers_is_refused_by_name_and_rebuilt_by_a_run(tmp_path, edit, message):
    first = _smoke(tmp_path)
    table = edit(pd.read_csv(_csv(tmp_path)))
    _csv(tmp_path).write_text(table.to_csv(index=False))
    prov = json.loads(_csv(tmp_path).with_suffix(".json").read_text())
    prov["num_rows"] = len(table)
    _csv(tmp_path).with_suffix(".json").write_text(json.dumps(prov))
    _resign(tmp_path)
    with pytest.raises(ValueError, match=f"{_csv(tmp_path)} holds {message}.*--force"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    with pytest.warns(UserWarning, match="rebuilding .* from the cache"):
        pd.testing.assert_frame_equal(_smoke(tmp_path), first, check_exact=True)


@pytest.mark.parametrize(
    "edit,problem",
    [
        (lambda e: e["rows"][0].update(ece=float("nan")), "ece is nan"),
        (lambda e: e["bins"][0].update(count=-3), "count is -3"),
        (lambda e: e["rows"][0].update(coverage=2.0), "coverage is 2.0"),
        (lambda e: e["rows"][0].update(ece=0.777), "differ from those its sha256 was taken of"),
    ],
    ids=["nan", "negative-count", "out-of-range", "edited-in-range"],
)
def test_a_cache_entry_with_bad_numbers_is_ignored_by_name_and_recomputed(tmp_path, edit, problem):
    first = _smoke(tmp_path, num_experts=[1])
    (entry_path,) = (tmp_path / "mog" / "cache").rglob("*.json")
    entry = json.loads(entry_path.read_text())
    edit(entry)
    entry_path.write_text(json.dumps(entry))
    _csv(tmp_path).unlink()  # the table would supply the configuration otherwise
    with pytest.warns(UserWarning, match=f"ignoring invalid cache file {entry_path} .*{problem}.*recomputing"):
        again = _smoke(tmp_path, num_experts=[1])
    pd.testing.assert_frame_equal(again, first, check_exact=True)


def test_a_row_count_of_the_wrong_type_says_so(tmp_path):
    _smoke(tmp_path, num_experts=[1])
    meta = _csv(tmp_path).with_suffix(".json")
    prov = json.loads(meta.read_text())
    meta.write_text(json.dumps(prov | {"num_rows": str(prov["num_rows"])}))
    with pytest.raises(ValueError, match=r"is corrupt \(num_rows is '1'\)"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")


def test_reading_a_complete_folder_writes_nothing(tmp_path, monkeypatch):
    """A read-only checkout that holds every result still serves the book (as root no
    folder is read-only, so the write check itself is what must not be reached)."""
    first = _smoke(tmp_path)

    def refuse(folder):
        raise OSError(f"cannot write results to {folder}: Read-only file system")

    monkeypatch.setattr(files, "check_writable", refuse)
    table, _ = pages.study_table(
        "increasing_experts", "mog", "smoke", results_dir=tmp_path, num_experts=[1, 2], methods=["ova"]
    )
    pd.testing.assert_frame_equal(table.drop(columns=list(BIN_COLUMNS)), first, check_exact=True)
    with pytest.raises(OSError, match="Read-only"):  # one configuration more needs a write
        _smoke(tmp_path, num_experts=[3])


def test_files_are_written_world_readable(tmp_path):
    _smoke(tmp_path, num_experts=[1])
    files = [*(tmp_path / "mog").glob("increasing_experts-smoke.*"), *(tmp_path / "mog" / "cache").rglob("*.json")]
    assert len(files) == 4
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044, f


@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_recompute_must_be_a_boolean(tmp_path, value):
    with pytest.raises(ValueError, match=f"recompute must be True or False, got {value!r}"):
        pages.study_table("increasing_experts", "mog", "smoke", results_dir=tmp_path, recompute=value)


def test_a_truncated_table_without_its_cache_is_not_shrunk_by_a_subset_run(tmp_path):
    _smoke(tmp_path, num_experts=[1, 2, 3])
    shutil.rmtree(tmp_path / "mog" / "cache")  # a fresh clone: committed tables, no cache
    csv = _csv(tmp_path)
    whole = csv.read_text()
    csv.write_text("\n".join(whole.splitlines()[:3]))
    with pytest.raises(ValueError, match=r"is unreadable .*truncated.*2 of the configurations .*git checkout"):
        _smoke(tmp_path, num_experts=[1])
    assert csv.read_text() == "\n".join(whole.splitlines()[:3])  # left as it was
    with pytest.warns(UserWarning, match="rebuilding"):
        assert len(_smoke(tmp_path, num_experts=[1], force=True)) == 1


@pytest.mark.slow
def test_two_runs_at_once_into_one_folder_lose_nothing(tmp_path):
    """Overlapping grids, started together: they take turns on the table's lock, and the
    table and its provenance end with both runs' configurations."""
    base = [sys.executable, "-m", "l2dlib", "run", "increasing_experts", "--profile", "smoke", "--quiet"]
    base += ["--methods", "ova", "--results-dir", str(tmp_path), "--num-experts"]
    procs = [subprocess.Popen([*base, *js], stderr=subprocess.PIPE, text=True) for js in (["1", "2"], ["2", "3"])]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    table, prov = results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    assert sorted(table["num_experts"].unique()) == [1, 2, 3] and prov["num_configs"] == 3
    assert len(prov["runs"]) == 2


@pytest.mark.slow
def test_an_unreadable_table_of_another_profile_is_passed_over(tmp_path):
    """``paper`` takes configurations from ``quick``'s table where their settings are equal;
    an unreadable ``quick`` table is that profile's own problem, not an error of this run."""

    def run(profile):
        return R.run_studies(
            ["increasing_experts"],
            "mog",
            profile,
            seeds=[0],
            methods=["ova"],
            num_experts=[1],
            results_dir=tmp_path,
            progress=False,
        )["increasing_experts"]

    quick = run("quick")
    csv = tmp_path / "mog" / "increasing_experts-quick.csv"
    csv.write_text("\n".join(csv.read_text().splitlines()[:1]))  # truncated; its cache is there
    shutil.rmtree(tmp_path / "mog" / "cache")
    paper = run("paper")  # retrained: the quick table could not be read
    same = ["profile", "config_key"]  # the key hashes the profile name
    pd.testing.assert_frame_equal(paper.drop(columns=same), quick.drop(columns=same), check_exact=True)
