"""The SLURM path through submitit's local executor: real subprocesses, the same pickling,
job folders and result files as on a cluster."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from l2dlib import cluster
from l2dlib.__main__ import main
from l2dlib.profiles import get_profile
from l2dlib.runner import run_studies

pytest.importorskip("submitit")
pytestmark = pytest.mark.slow

GRID = dict(seeds=[0, 1], num_experts=[1, 2], methods=["softmax", "ova"], progress=False)
FAST = cluster.ClusterOptions(poll_seconds=0.2)
SMOKE = replace(get_profile("mog", "smoke"), max_models_per_batch=4)  # 8 configurations, 2 jobs


def run(results_dir, executor="local", **kwargs):
    return run_studies(
        ["increasing_experts"], "mog", SMOKE, results_dir=results_dir, executor=executor, **GRID, **kwargs
    )


def kill_first(jobs):
    """Kill the first job (its task process, then its controller) as a node failure would."""

    def kill():
        pid = int(jobs[0].job_id)
        children = Path(f"/proc/{pid}/task/{pid}/children")
        for _ in range(200):
            tasks = children.read_text().split() if children.exists() else []
            if tasks:
                for task in tasks:
                    os.kill(int(task), signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    threading.Thread(target=kill, daemon=True).start()


def test_jobs_fail_alone_resume_with_what_is_missing_and_equal_the_local_run_bit_for_bit(tmp_path, monkeypatch):
    real_run_jobs, real_make = cluster.run_jobs, cluster.make_executor
    monkeypatch.setattr(cluster, "run_jobs", lambda *a, **k: real_run_jobs(*a, **k, on_submitted=kill_first))
    with pytest.raises(cluster.JobsFailed) as failed:
        run(tmp_path / "jobs", "submitit_local", cluster_options=FAST)
    text = str(failed.value)
    assert text.startswith("1 of 2 jobs failed; the other jobs' results are cached.")
    assert "job " in text and "log: " in text and "Run the same command again" in text
    cached = list((tmp_path / "jobs" / "mog" / "cache" / "increasing_experts-smoke").glob("*.json"))
    assert len(cached) == 4  # the other job's configurations, written by the job itself

    submitted = []

    def counting(*a):
        executor = real_make(*a)
        submit = executor.submit
        executor.submit = lambda *args: submitted.append(args[1]) or submit(*args)
        return executor

    monkeypatch.setattr(cluster, "run_jobs", real_run_jobs)
    monkeypatch.setattr(cluster, "make_executor", counting)
    jobs = run(tmp_path / "jobs", "submitit_local", cluster_options=FAST)["increasing_experts"]
    assert [len(b) for b in submitted] == [4]  # only the failed job's configurations
    local = run(tmp_path / "local")["increasing_experts"]
    pd.testing.assert_frame_equal(local, jobs, check_exact=True)
    submitted.clear()
    assert run(tmp_path / "jobs", "submitit_local", cluster_options=FAST)["increasing_experts"].equals(jobs)
    assert submitted == []


def test_slurm_without_slurm_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    assert (
        main(["run", "increasing_experts", "--profile", "smoke", "--executor", "slurm", "--results-dir", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no sbatch command" in err
    assert (
        main(["run", "increasing_experts", "--profile", "smoke", "--partition", "gpu", "--results-dir", str(tmp_path)])
        == 2
    )
    assert "--partition apply to --executor slurm only" in capsys.readouterr().err


def test_the_jobs_device_and_their_gpus_are_decided_together():
    paper, mog = get_profile("cifar10", "paper"), get_profile("mog", "smoke")
    assert cluster.job_resources(cluster.ClusterOptions(), paper, None) == (1, "cuda")
    assert cluster.job_resources(cluster.ClusterOptions(), mog, None) == (0, "cpu")
    assert cluster.job_resources(cluster.ClusterOptions(), mog, "cuda") == (1, "cuda")
    assert cluster.job_resources(cluster.ClusterOptions(gpus_per_job=2), paper, "cpu") == (2, "cpu")
    with pytest.raises(ValueError, match="need --gpus-per-job of at least 1"):
        cluster.job_resources(cluster.ClusterOptions(gpus_per_job=0), paper, None)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        cluster.job_resources(cluster.ClusterOptions(), mog, "gpu")
