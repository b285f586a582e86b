"""The study runner: a result depends on its configuration alone, tables never lose rows,
the cache is validated, workers end with their parent, inputs are checked."""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import l2dlib.runner as R
from l2dlib import METHODS, metrics, numerics, pages, pool, results
from l2dlib import batch as B
from l2dlib.data import mog
from l2dlib.data.mog import PAPER, make_mog
from l2dlib.profiles import get_profile
from l2dlib.studies import IDENTITY, SCHEDULE, run_config, study_configs
from l2dlib.train import TrainConfig

REPO = Path(__file__).resolve().parent.parent
# Small, but long enough for early stopping to stop models at different epochs in a stack.
PROFILE = dataclasses.replace(
    get_profile("mog", "smoke"),
    points=600,
    max_models_per_batch=32,
    train=TrainConfig(max_epochs=12, batch_size=64, lr=0.2, weight_decay=5e-4, patience=3),
)


def _run(tmp_path, name, profile=PROFILE, **kw):
    kw.setdefault("progress", False)
    return R.run_studies(["increasing_experts"], "mog", profile, results_dir=tmp_path / name, **kw)[
        "increasing_experts"
    ]


def _per_config(table):
    return table.drop(columns=["config_key"]).set_index(["method", "seed", "num_experts", "expert"]).sort_index()


@pytest.mark.slow
def test_a_configuration_alone_equals_it_in_any_stack_bit_for_bit(tmp_path):
    two_workers = dataclasses.replace(PROFILE, cpu_workers=2)
    stacked = _run(tmp_path, "stacked", two_workers, seeds=[0, 1], num_experts=[1, 2, 5, 9])
    assert stacked["best_epoch"].nunique() > 1  # early stopping sliced models out of the stacks
    for method, j in (("ova", 1), ("softmax", 5), ("asymmetric_softmax", 2), ("decoupled", 9)):
        alone = _run(tmp_path, f"alone-{method}-{j}", seeds=[1], num_experts=[j], methods=[method])
        mine = stacked[(stacked.method == method) & (stacked.seed == 1) & (stacked.num_experts == j)]
        pd.testing.assert_frame_equal(_per_config(alone), _per_config(mine), check_exact=True)
    # The same in-process, in batches of 3, as in two worker processes.
    small = dataclasses.replace(PROFILE, max_models_per_batch=3)
    pd.testing.assert_frame_equal(
        _per_config(_run(tmp_path, "small", small, seeds=[0, 1], num_experts=[1, 2, 5, 9])),
        _per_config(stacked),
        check_exact=True,
    )


def test_each_seed_is_tested_on_its_own_draw_and_the_cache_keeps_its_points(tmp_path, monkeypatch):
    seen = []

    def recording_predict(model, x, **kw):
        seen.append((x.clone(), kw.get("models")))
        return real(model, x, **kw)

    real = B.predict
    monkeypatch.setattr(B, "predict", recording_predict)
    table = _run(tmp_path, "points", seeds=[0, 1], num_experts=[2], methods=["ova", "softmax"])
    # The training split once (its loss and accuracy), then one stack, two test draws, each
    # for its seed's two models.
    (x_train, m_train), (x0, m0), (x1, m1) = seen
    assert m_train is None and torch.equal(x_train, B.load_data(PROFILE, torch.device("cpu")).x["train"])
    assert m0.tolist() == [0, 1] and m1.tolist() == [2, 3] or m0.tolist() == [0, 2] and m1.tolist() == [1, 3]
    for x, seed in ((x0, 0), (x1, 1)):
        assert torch.equal(x, B.mog_test_split(PROFILE, None, seed)[0])
    assert not torch.equal(x0, x1)
    folder = tmp_path / "points" / "mog" / "cache" / "increasing_experts-smoke"
    for key, rows in table.groupby("config_key"):
        points = results.read_points(folder / f"{key}.json")
        assert points.estimates.shape == (len(B.mog_test_split(PROFILE, None, 0)[1]), 2)
        for j, row in rows.set_index("expert").iterrows():
            assert row["smooth_ece"] == metrics.smooth_ece(points.estimates[:, j], points.correct[:, j])
            assert row["expert_accuracy"] == pytest.approx(points.correct[:, j].mean(), abs=1e-7)  # float32 mean
        # The losses of the restored model, and the optimum's risk on the same test points.
        assert rows["test_loss"].nunique() == 1 and (rows[["train_loss", "val_loss", "test_loss"]] > 0).all().all()
        cfg = run_config("increasing_experts", "mog", "smoke", rows["method"].iloc[0], rows["seed"].iloc[0], 2, None)
        raw = make_mog(PAPER, PROFILE.points, test_seed=cfg.seed).x["test"].double().numpy()
        risk = mog.bayes_risk(mog.posteriors(PAPER, raw), cfg.experts, cfg.method)
        assert rows["bayes_risk"].tolist() == [risk, risk]


def test_batches_hold_one_output_width_each():
    methods = ("softmax", "ova", "asymmetric_softmax")
    cfgs = study_configs(
        "increasing_experts", "mog", "smoke", seeds=[0, 1, 2], num_experts=[1, 2, 9, 10], methods=methods
    )
    batches = B.make_batches(cfgs, dataclasses.replace(PROFILE, max_models_per_batch=4), 4)
    assert sorted(c.identity for b in batches for c in b) == sorted(c.identity for c in cfgs)
    widths = [{B.output_width(c, PROFILE, 4) for c in b} for b in batches]
    assert widths[:3] == [{14}] * 3 and widths[3:6] == [{13}] * 3 and widths[6:] == [{12}] * 5
    assert all(len(b) <= 4 for b in batches) and len({c.num_experts for c in batches[-1]}) == 2
    with pytest.raises(ValueError, match="one output width"):
        B.train_batch([cfgs[0], cfgs[3]], B.load_data(PROFILE, torch.device("cpu")), PROFILE)


def test_batches_keep_every_worker_busy_to_the_end():
    """Five stacks on two workers would leave one idle for the last round: the stacks of a
    group come in a multiple of the workers, as even as they can be, never empty."""
    cfgs = study_configs(
        "increasing_experts", "mog", "smoke", seeds=list(range(5)), num_experts=[1, 2, 3, 4, 5, 6, 7, 8]
    )
    prof = dataclasses.replace(PROFILE, max_models_per_batch=32)
    assert len(cfgs) == 160 and len(B.make_batches(cfgs, prof, 4)) == 5
    batches = B.make_batches(cfgs, prof, 4, workers=2)
    assert len(batches) == 6 and {len(b) for b in batches} == {26, 27}
    assert sorted(c.identity for b in batches for c in b) == sorted(c.identity for c in cfgs)
    assert len(B.make_batches(cfgs[:1], prof, 4, workers=2)) == 1  # one configuration: one stack


def test_an_interrupted_run_resumes_to_the_same_bits(tmp_path, monkeypatch):
    clean = _run(tmp_path, "clean", seeds=[0], num_experts=[1, 2, 3])
    small = dataclasses.replace(PROFILE, max_models_per_batch=2)
    real, calls = B.train_batch, []

    def interrupt_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "train_batch", interrupt_third_batch)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed", small, seeds=[0], num_experts=[1, 2, 3])
    folder = tmp_path / "resumed" / "mog"
    cfgs = study_configs("increasing_experts", "mog", "smoke", seeds=[0], num_experts=[1, 2, 3])
    finished = sum(len(b) for b in B.make_batches(cfgs, small, 4)[:2])
    assert len(list((folder / "cache").rglob("*.json"))) == finished
    assert not list(folder.rglob("*.tmp"))
    # The table holds what finished, and its provenance says so.
    partial = pd.read_csv(folder / "increasing_experts-smoke.csv")
    info = json.loads((folder / "increasing_experts-smoke.json").read_text())
    assert partial["config_key"].nunique() == finished == info["num_configs"] == len(info["configurations"])
    assert info["runs"][-1]["stopped_by"] == "KeyboardInterrupt"
    monkeypatch.setattr(pool, "train_batch", real)
    resumed = _run(tmp_path, "resumed", seeds=[0], num_experts=[1, 2, 3])
    pd.testing.assert_frame_equal(_per_config(resumed), _per_config(clean), check_exact=True)
    info = json.loads((folder / "increasing_experts-smoke.json").read_text())
    assert info["num_computed"] == len(cfgs) - finished and "stopped_by" not in info["runs"][-1]


def _smoke(tmp_path, **kw):
    kw.setdefault("num_experts", [1, 2])
    kw.setdefault("methods", ["softmax", "ova"])
    return R.run_studies(["increasing_experts"], "mog", "smoke", results_dir=tmp_path, progress=False, **kw)[
        "increasing_experts"
    ]


def _table(tmp_path):
    return results.load_table(tmp_path, "mog", "increasing_experts", "smoke")


def test_tables_never_lose_rows(tmp_path):
    _smoke(tmp_path, seeds=[0])
    _smoke(tmp_path, seeds=[1], num_experts=[2])
    table, prov = _table(tmp_path)
    assert len(table) == 2 * (1 + 2) + 2 * 2 and prov["seeds"] == [0, 1] and prov["num_configs"] == 6
    assert [r["num_computed"] for r in prov["runs"]] == [4, 2]
    # Without the cache (a fresh clone with committed tables), a partial run keeps the rest.
    for path in (tmp_path / "mog" / "cache").rglob("*.json"):
        path.unlink()
    again = _smoke(tmp_path, seeds=[1], num_experts=[2])
    kept, prov = _table(tmp_path)
    assert len(again) == 4 and len(kept) == 10 and prov["num_configs"] == 6
    pd.testing.assert_frame_equal(kept, table)  # recomputed bits equal, the rest kept
    bins, _ = results.load_table(tmp_path, "mog", "increasing_experts", "smoke", reliability=True)
    assert len(bins) == 10 * 20


def test_rows_of_another_profile_with_equal_settings_are_reused_bit_for_bit(tmp_path):
    """quick is paper with fewer seeds: a fresh clone's quick run takes what the committed
    paper table holds; a profile of other settings (faithful: raw inputs) takes nothing."""
    from l2dlib import profiles

    small = {
        "points": 256,
        "train": dataclasses.replace(get_profile("mog", "quick").train, max_epochs=3, batch_size=64),
    }
    names = ("quick", "paper", "faithful")
    with profiles.registered(*(dataclasses.replace(get_profile("mog", n), cpu_workers=1, **small) for n in names)):
        assert get_profile("mog", "paper").points == 256
        _check_reuse(tmp_path)
    assert get_profile("mog", "paper").points == 20_000  # the profiles are back as they were


def _check_reuse(tmp_path):
    def run(profile, **kw):
        kw = {"seeds": [0], "num_experts": [1], "methods": ["ova"]} | kw
        out = R.run_studies(["increasing_experts"], "mog", profile, results_dir=tmp_path, progress=False, **kw)
        return out["increasing_experts"], results.load_table(tmp_path, "mog", "increasing_experts", profile)[1]

    paper, _ = run("paper", seeds=[0, 1], num_experts=[1, 2])
    _, prov = run("faithful")
    assert prov["runs"][-1]["num_computed"] == 1 and "reused_from" not in prov["runs"][-1]
    quick, prov = run("quick", seeds=[0, 2])
    assert prov["runs"][-1]["num_computed"] == 1  # seed 2
    assert prov["runs"][-1]["reused_from"] == {"increasing_experts-paper.csv": 1}
    numbers = [c for c in quick.columns if c not in ("profile", "config_key")]
    taken = quick[quick.seed == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        taken[numbers], paper[(paper.seed == 0) & (paper.num_experts == 1)].reset_index(drop=True)[numbers]
    )
    retrained, prov = run("quick", force=True)
    assert prov["runs"][-1]["num_computed"] == 1
    pd.testing.assert_frame_equal(retrained, taken, check_exact=True)


def test_a_table_of_other_settings_is_refused_and_force_replaces_it(tmp_path):
    _smoke(tmp_path, seeds=[0], num_experts=[1])
    csv = tmp_path / "mog" / "increasing_experts-smoke.csv"
    table = pd.read_csv(csv)
    table.loc[table.method == "ova", "config_key"] = "0" * 16  # as if made with another schedule
    csv.write_text(table.to_csv(index=False))
    meta = csv.with_suffix(".json")  # by a run: the provenance hashes it
    prov = json.loads(meta.read_text())
    prov["sha256"]["table"] = hashlib.sha256(csv.read_bytes()).hexdigest()
    meta.write_text(json.dumps(prov))
    with pytest.raises(ValueError, match="holds 1 configuration.* other settings.*--force"):
        _smoke(tmp_path, seeds=[1], num_experts=[1])
    with pytest.warns(UserWarning, match="dropping 1 configuration"):
        _smoke(tmp_path, seeds=[1], num_experts=[1], force=True)
    table, prov = _table(tmp_path)
    assert prov["num_configs"] == 4  # seed 1 added; ova seed 0 back from the cache, under its true key
    assert "0" * 16 not in set(table["config_key"])


def test_a_missing_or_truncated_reliability_table_is_rebuilt_from_the_cache(tmp_path):
    _smoke(tmp_path)
    rel = results.reliability_path(tmp_path, "mog", "increasing_experts", "smoke")
    full = rel.read_text()
    for damage in (lambda: rel.unlink(), lambda: rel.write_text("\n".join(full.splitlines()[:5]))):
        damage()
        with pytest.warns(UserWarning, match="rebuilding it from the cache"):
            _smoke(tmp_path)
        assert rel.read_text() == full
        assert _table(tmp_path)[1]["num_computed"] == 0


@pytest.mark.parametrize(
    "damage,problem",
    [
        (lambda e: e | {"rows": "oops"}, "rows and bins must be lists"),
        (lambda e: {k: v for k, v in e.items() if k != "best_epoch"}, "missing key 'best_epoch'"),
        (lambda e: e | {"rows": []}, "0 rows for 1 experts"),
        (
            lambda e: e | {"results_version": str(e["results_version"])},
            f"results_version is '{results.RESULTS_VERSION}', not an integer",
        ),
        (lambda e: e | {"rows": [e["rows"][0] | {"ece": "x"}]}, "lacks a numeric 'ece'"),
    ],
)
def test_an_invalid_cache_entry_is_recomputed_with_a_warning_naming_it(tmp_path, damage, problem):
    first = _smoke(tmp_path, num_experts=[1], methods=["ova"])
    entry = next((tmp_path / "mog" / "cache").rglob("*.json"))
    entry.write_text(json.dumps(damage(json.loads(entry.read_text()))))
    (tmp_path / "mog" / "increasing_experts-smoke.csv").unlink()  # so the cache is all there is
    with pytest.warns(UserWarning, match=f"ignoring invalid cache file {entry}.*{problem}"):
        again = _smoke(tmp_path, num_experts=[1], methods=["ova"])
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert _table(tmp_path)[1]["num_computed"] == 1


def test_results_from_another_version_are_refused(tmp_path, monkeypatch):
    _smoke(tmp_path, num_experts=[1])
    v = results.RESULTS_VERSION
    monkeypatch.setattr(results, "RESULTS_VERSION", v + 1)
    with pytest.raises(ValueError, match=f"was written by results version {v}, this code is version {v + 1}"):
        results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    with pytest.raises(ValueError, match=f"results version {v}.*--force"):
        _smoke(tmp_path, num_experts=[1])
    entry = next((tmp_path / "mog" / "cache").rglob("*.json"))
    with pytest.raises(ValueError, match=f"{entry} was written by results version {v}.*--force"):
        results.read_cached(entry)
    with pytest.warns(UserWarning, match="--force: replacing an outdated table"):
        _smoke(tmp_path, num_experts=[1], force=True)
    assert _table(tmp_path)[1]["results_version"] == v + 1


def test_a_corrupt_table_is_an_error_to_readers_and_rebuilt_by_a_run(tmp_path):
    first = _smoke(tmp_path)
    csv = tmp_path / "mog" / "increasing_experts-smoke.csv"
    csv.write_text("\n".join(csv.read_text().splitlines()[:3]))
    with pytest.raises(ValueError, match="truncated"):
        _table(tmp_path)
    with pytest.warns(UserWarning, match=f"rebuilding {csv} from the cache"):
        pd.testing.assert_frame_equal(_smoke(tmp_path), first)
    (tmp_path / "mog" / "increasing_experts-smoke.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt.*--force"):
        _table(tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m l2dlib run expert_dependence"):
        results.load_table(tmp_path, "mog", "expert_dependence", "smoke")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seeds": 0}, "seeds must be a non-empty list of non-negative integers, got 0"),
        ({"seeds": "[]"}, "seeds must be a non-empty list of non-negative integers, got '[]'"),
        ({"seeds": []}, "seeds must be a non-empty list"),
        ({"seeds": [0, "1"]}, "got '1' in [0, '1']"),
        ({"methods": "ova"}, "methods must be a non-empty list of method names"),
        ({"methods": ["ova", "sigmoid"]}, "unknown method 'sigmoid' in methods"),
        ({"num_experts": 3}, "num_experts must be a non-empty list of integers >= 1, got 3"),
    ],
)
def test_notebook_parameters_are_checked_with_messages_that_say_what_is_expected(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as err:
        pages.study_table("increasing_experts", "mog", "smoke", results_dir=tmp_path, progress=False, **kwargs)
    assert message in str(err.value)


def test_a_cifar10_page_with_a_profile_it_lacks_names_the_ones_it_has(tmp_path):
    with pytest.raises(
        ValueError,
        match="profile 'quick' is not defined for dataset 'cifar10' "
        r"\(it has: smoke, frozen_features, cpu_end_to_end, paper, faithful\)",
    ):
        pages.study_table("increasing_experts", "cifar10", "quick", results_dir=tmp_path)


# ---------------------------------------------------------------- signals and workers


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        return False


def _known_signals(sigint) -> None:
    """In the child before exec: SIGINT's disposition as the parametrisation says, nothing
    blocked, so a test does not depend on how pytest was started (a background job of a
    non-interactive shell inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, sigint)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _start_run(tmp_path, sigint=signal.SIG_DFL):
    """A CLI run with two workers that takes a while: quick profile, four one-model batches
    (J > 8: each J has its own output width, so its own batch)."""
    args = "run increasing_experts --profile quick --methods ova --seeds 0 --num-experts 9 10 11 12 --quiet"
    return subprocess.Popen(
        [sys.executable, "-m", "l2dlib", *args.split(), "--results-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: _known_signals(sigint),
    )


def _blocked(pid: int) -> set[int]:
    """The signals blocked in ``pid``'s main thread."""
    try:
        line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("SigBlk:"))
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        return set()
    mask = int(line.split()[1], 16)
    return {s for s in range(1, 65) if mask >> (s - 1) & 1}


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        return 0


def _workers(pid: int) -> list[int]:
    """The pool's worker processes (not multiprocessing's resource tracker)."""
    out = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
            pass
    return out


def _wait_for(condition, timeout=60.0, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return False


# When the signal comes: while torch imports (the CLI blocks signals then), as soon as a worker
# exists (it may still be importing), and once the workers train.
MOMENTS = {
    "start-up": lambda pid: signal.SIGINT in _blocked(pid) and not _workers(pid),
    "spawn": lambda pid: bool(_workers(pid)),
    "training": lambda pid: len(ws := _workers(pid)) >= 2 and all(_threads(w) >= 2 for w in ws),
}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    "sig,inherited,moment",
    [
        (signal.SIGINT, signal.SIG_IGN, "start-up"),
        (signal.SIGINT, signal.SIG_IGN, "spawn"),
        (signal.SIGINT, signal.SIG_IGN, "training"),
        (signal.SIGINT, signal.SIG_DFL, "training"),
        (signal.SIGTERM, signal.SIG_DFL, "start-up"),
        (signal.SIGTERM, signal.SIG_DFL, "training"),
    ],
    ids=lambda v: {signal.SIG_IGN: "SIGINT-ignored", signal.SIG_DFL: "SIGINT-default"}.get(v, getattr(v, "name", v)),
)
def test_a_signal_stops_the_workers_at_once_and_prints_one_line(tmp_path, sig, inherited, moment):
    """Ctrl-C (to the process group, as a terminal sends it) or SIGTERM at any moment: exit
    130 or 143 with one line, workers gone, nothing half-written, whatever SIGINT's inherited
    disposition (ignored in a background job of a non-interactive shell)."""
    proc = _start_run(tmp_path, inherited)
    try:
        # That batches finished meanwhile are cached is test_an_interrupted_run_resumes_to_the_same_bits's
        # part, in-process.
        assert _wait_for(lambda: MOMENTS[moment](proc.pid), 120, step=0.02), f"never reached {moment}"
        workers = _workers(proc.pid)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C in a terminal: the whole process group
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    code, word = (130, "interrupted") if sig == signal.SIGINT else (143, "terminated")
    assert (proc.returncode, err.strip().splitlines()) == (
        code,
        [f"{word}: the tables hold every finished configuration; run the same command to resume"],
    )
    assert not any(_alive(w) for w in workers)
    assert not list(tmp_path.rglob("*.tmp"))
    if (tmp_path / "mog" / "increasing_experts-quick.csv").exists():  # a batch finished first: whole
        assert results.load_table(tmp_path, "mog", "increasing_experts", "quick")[1]["runs"][-1]["stopped_by"]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_within_seconds_when_their_parent_is_killed(tmp_path):
    proc = _start_run(tmp_path)
    try:
        # Once its set-up ran, a worker has a second thread (the parent watch) and is bound to
        # its parent (a worker still starting when its parent dies ends when its set-up finds
        # no parent).
        assert _wait_for(lambda: len(ws := _workers(proc.pid)) >= 2 and all(_threads(w) >= 2 for w in ws), timeout=120)
        workers = _workers(proc.pid)
        proc.kill()
        proc.wait(timeout=10)
        assert _wait_for(lambda: not any(_alive(w) for w in workers), timeout=5)
    finally:
        proc.kill()
        for w in _children(proc.pid):
            os.kill(w, signal.SIGKILL)


# ---------------------------------------------------------------- committed results


COMMITTED = sorted(p for p in (REPO / "results").glob("*/*.json") if not p.name.startswith("extractor"))


def test_every_committed_table_is_listed():
    assert len(COMMITTED) == 22 and {p.parent.name for p in COMMITTED} == {"mog", "cifar10", "cifar10h", "cifar10n"}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_tables_hold_what_this_code_computes(path):
    """Each committed table (and its reliability bins) is the file its provenance hashed,
    written in the portable numerics, and every row's key is the one this code gives its
    configuration now: a changed default (schedule, data, experts) fails here until the
    tables are recomputed, so the book never shows numbers of older settings. The MoG data
    is remade here; CIFAR-10's images are not in CI, so its fingerprint is the recorded one."""
    dataset, (study, profile) = path.parent.name, path.stem.split("-")
    table, prov = results.load_table(REPO / "results", dataset, study, profile)  # checks the sha256
    results.load_table(REPO / "results", dataset, study, profile, reliability=True)
    assert set(prov["sha256"]) == {"table", "reliability"}
    # Every committed table in the portable numerics (CIFAR-10's features come from oneDNN
    # convolutions, which it does not cover; the heads' bits it does): the key says so.
    mode = numerics.mode_of(prov["numerics"])
    assert mode == "portable", mode
    prof = get_profile(dataset, profile)
    fingerprints, remade = prov["data_fingerprint"], {}
    for (method, seed, j, p, d, *schedule), rows in table.groupby(list(IDENTITY[1:]), dropna=False):
        d = None if pd.isna(d) else int(d)
        own = {k: None if pd.isna(v) else v for k, v in zip(SCHEDULE, schedule)}
        if dataset == "mog":
            if d not in remade:  # the data is remade once per draw
                remade[d] = B.load_data(prof, torch.device("cpu"), data_seed=d).fingerprint
            fingerprint = remade[d]
            assert fingerprint == (fingerprints if d is None else fingerprints[str(d)])
        else:
            fingerprint = fingerprints
        cfg = run_config(study, dataset, profile, method, seed, j, None if pd.isna(p) else p, d, **own)
        assert set(rows["config_key"]) == {B.run_key(cfg, prof, fingerprint, mode)}, (method, seed, j, p, d)


def test_an_edited_number_in_a_copy_of_a_committed_table_is_caught(tmp_path):
    """The negative control of the test above."""
    for f in (REPO / "results" / "mog").glob("increasing_experts-paper.*"):
        (tmp_path / "mog").mkdir(exist_ok=True)
        (tmp_path / "mog" / f.name).write_bytes(f.read_bytes())
    results.load_table(tmp_path, "mog", "increasing_experts", "paper")  # the copy reads
    csv = tmp_path / "mog" / "increasing_experts-paper.csv"
    table = pd.read_csv(csv)
    table.loc[0, "ece"] = 0.777
    csv.write_text(table.to_csv(index=False))
    with pytest.raises(ValueError, match="differs from the file its provenance describes"):
        results.load_table(tmp_path, "mog", "increasing_experts", "paper")


@pytest.mark.slow
def test_the_portable_numerics_give_the_cross_machine_value(tmp_path):
    """The value another (AVX-512) machine gave for this configuration with
    ATEN_CPU_CAPABILITY=default and MKL_CBWR=COMPATIBLE; the CLI sets those by default."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "L2D_NUMERICS")}
    args = "run increasing_experts --profile paper --methods ova --seeds 0 --num-experts 1 --quiet"
    proc = subprocess.run(
        [sys.executable, "-m", "l2dlib", *args.split(), "--results-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    table, prov = results.load_table(tmp_path, "mog", "increasing_experts", "paper")
    assert table["ece"].tolist() == [0.00542790360674262]
    assert prov["numerics"]["portable"] and prov["numerics"]["mkl_cbwr"] == "COMPATIBLE"


def test_a_worker_in_other_numerics_refuses_and_the_suite_is_portable():
    """Workers and jobs inherit the parent's environment, so they compute in its mode; one
    that does not (another node's settings) refuses rather than write keys of another mode."""
    from l2dlib import numerics

    assert numerics.mode() == "portable"  # conftest imports l2dlib before torch
    cfg = study_configs("increasing_experts", "mog", "smoke", seeds=[0], methods=["ova"], num_experts=[1])
    with pytest.raises(RuntimeError, match="computes in numerics mode portable, the run's keys are for native-AVX2"):
        B.run_in_process(cfg, get_profile("mog", "smoke"), numerics_mode="native-AVX2")


def test_request_portable_leaves_a_process_that_imported_torch_alone():
    from l2dlib import numerics

    env = {}
    assert not numerics.request_portable(env) and env == {}  # torch is imported here
    with pytest.raises(ValueError, match="L2D_NUMERICS must be 'portable' or 'native', got 'fast'"):
        numerics.request_portable({"L2D_NUMERICS": "fast"})


def test_committed_configurations_retrained_give_their_rows_bit_for_bit():
    """The training-budget table's one-epoch models, one per method, trained again now (in
    one stack, through the trainer's gradients by hand) give their committed rows exactly:
    the losses, ECEs and accuracies that autograd's gradients gave when the table was made."""
    if numerics.mode() != "portable":
        pytest.skip("the committed tables are in the portable numerics")
    table, _ = results.load_table(REPO / "results", "mog", "training_budget", "paper")
    picked = table[
        (table["max_epochs"] == 1) & (table["lr"] == 0.05) & (table["seed"] == 0) & (table["num_experts"] == 2)
    ]
    prof = get_profile("mog", "paper")
    cfgs = []
    for (method, seed, j, p, _, *schedule), _ in picked.groupby(list(IDENTITY[1:]), dropna=False):
        own = {k: None if pd.isna(v) else v for k, v in zip(SCHEDULE, schedule)}
        cfgs.append(run_config("training_budget", "mog", "paper", method, seed, j, None if pd.isna(p) else p, **own))
    assert sorted(c.method for c in cfgs) == sorted(METHODS)
    (stack,) = B.make_batches(cfgs, prof, 5)
    res = B.train_batch(stack, B.load_data(prof, torch.device("cpu")), prof)
    columns = ["ece", "smooth_ece", "classifier_accuracy", "system_accuracy", "train_loss", "val_loss", "test_loss"]
    for c, (rows, _, _) in zip(stack, res.evaluated):
        committed = picked[picked["method"] == c.method].sort_values("expert")
        assert committed[columns].to_dict("records") == [{k: r[k] for k in columns} for r in rows], c.method
