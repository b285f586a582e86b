"""Study grids on a SLURM cluster through submitit: one job per configuration batch (one
network for the CIFAR-10 GPU profiles, a stack of models for MoG and the CPU profile).

Each job trains its batch and writes its configurations' cache entries itself (atomically,
so concurrent jobs are safe and a job's results outlive the submitting process). The
submitting process waits, shows jobs done / failed / waiting, and hands every finished batch
to the runner, which assembles the tables; a rerun submits only what the cache lacks.
``submitit_local`` runs the same path (pickling, job folders, result files) in subprocesses
of this machine; the tests use it.

    python -m l2dlib run all --dataset cifar10 --profile faithful --executor slurm \\
        --partition gpu --time-min 240 --results-dir /shared/l2d-results --data-dir /shared/data
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import numerics
from .config import ClusterOptions
from .profiles import Profile
from .studies import RunConfig

TAIL_LINES = 8  # of a failed job's error log, in the report


class JobsFailed(RuntimeError):
    """Some jobs failed; the others' results are cached. The message says which and how to resume."""


def check_available(executor: str) -> None:
    """One clear error where the executor cannot run here."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ValueError(
            f"executor {executor!r} needs submitit, which is not installed: pip install 'submitit>=1.5,<2'"
        ) from None
    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ValueError(
            "executor 'slurm' needs SLURM, and this machine has no sbatch command: run from a "
            "cluster's login node, or use the default executor (local)"
        )


def job_resources(options: ClusterOptions, profile: Profile, device: str | None) -> tuple[int, str]:
    """(GPUs per job, the jobs' torch device), decided once so they cannot disagree: the
    GPUs asked for, else one where the profile or ``device`` wants CUDA."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected cpu or cuda")
    wants_gpu = device == "cuda" or (device is None and profile.needs_gpu)
    gpus = options.gpus_per_job if options.gpus_per_job is not None else int(wants_gpu)
    if wants_gpu and gpus == 0:
        raise ValueError("jobs that train on cuda need --gpus-per-job of at least 1 (or --device cpu)")
    return gpus, "cuda" if gpus and device != "cpu" else "cpu"


def make_executor(kind: str, options: ClusterOptions, profile: Profile, folder: Path, gpus: int):
    """A submitit executor for ``kind`` ('slurm' or 'submitit_local') with the options."""
    import submitit

    cpus = options.cpus(gpus)
    if kind == "submitit_local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=options.time_min, gpus_per_node=gpus)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = dict(
        timeout_min=options.time_min,
        gpus_per_node=gpus,
        cpus_per_task=cpus,
        mem_gb=options.mem_gb,
        slurm_array_parallelism=options.array_parallelism,
        name=f"l2d-{profile.dataset}-{profile.name}",
    )
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.sbatch:
        extra = {}
        for line in options.sbatch:
            if not line.startswith("--") or any(ch.isspace() for ch in line):
                raise ValueError(f"sbatch options are given as --key=value or --flag, got {line!r}")
            key, _, value = line.removeprefix("--").partition("=")
            extra[key] = value or True  # submitit writes True as a bare flag
        params["slurm_additional_parameters"] = extra
    executor.update_parameters(**params)
    return executor


def job(
    batch: list[RunConfig],
    profile: Profile,
    data_dir,
    results_dir,
    device: str,
    git_commit: str,
    numerics_mode: str | None = None,
):  # -> batch.BatchResult
    """What one job runs: train the batch, write its cache entries, return the result (a
    job whose numerics differ from the submitter's refuses: its keys would not match)."""
    from . import batch as one_batch  # the training code, only in the job
    from . import results

    res = one_batch.run_in_process(batch, profile, data_dir, results_dir, device, numerics_mode)
    data = one_batch.worker_data(profile, batch[0].data_seed, data_dir, results_dir, device)
    where = f"{results.device_name(torch.device(device))}, cluster job"
    one_batch.cache_batch(batch, res, data, profile, Path(results_dir), where, git_commit)
    return res


def run_jobs(
    batches: Sequence[list[RunConfig]],
    profile: Profile,
    device: str | None,
    options: ClusterOptions,
    kind: str,
    on_done: Callable,
    data_dir,
    results_dir: Path,
    git_commit: str,
    progress: bool = True,
    on_submitted: Callable[[list], None] | None = None,
) -> None:
    """Submit one job per batch, wait, and hand each finished batch to ``on_done``. Raises
    :class:`JobsFailed` once every job has ended if any failed. On an interruption, jobs
    keep running (their results land in the cache) unless ``options.cancel_on_interrupt``."""
    if not batches:
        return
    from tqdm import tqdm

    gpus, job_device = job_resources(options, profile, device)
    folder = Path(results_dir) / "jobs" / f"{profile.dataset}-{profile.name}"
    executor = make_executor(kind, options, profile, folder, gpus)
    mode = numerics.mode()
    with executor.batch():
        jobs = [executor.submit(job, b, profile, data_dir, results_dir, job_device, git_commit, mode) for b in batches]
    if on_submitted is not None:
        on_submitted(jobs)
    pending = dict(zip(jobs, batches))
    failed = []
    bar = tqdm(total=len(jobs), unit="job", desc=f"{kind} jobs (logs: {folder})", disable=not progress)
    try:
        while pending:
            for j in [j for j in pending if j.done()]:
                batch = pending.pop(j)
                try:
                    res = j.result()
                except Exception as err:  # a failed, killed or timed-out job
                    failed.append((j, batch, err))
                else:
                    on_done(batch, res)
                bar.update()
                bar.set_postfix(failed=len(failed), waiting_or_running=len(pending))
            if pending:
                time.sleep(options.poll_seconds)
    except BaseException:
        if options.cancel_on_interrupt:
            for j in pending:
                j.cancel(check=False)
        elif pending:
            ids = " ".join(str(j.job_id) for j in pending)
            print(f"{len(pending)} jobs keep running (scancel {ids} cancels them); their results land in the cache")
        raise
    finally:
        bar.close()
    if failed:
        raise JobsFailed(failure_report(failed, len(jobs)))


def failure_report(failed: list, total: int) -> str:
    """Which jobs failed, where their logs are, the last lines of their errors, how to resume."""
    lines = [f"{len(failed)} of {total} jobs failed; the other jobs' results are cached."]
    for j, batch, err in failed:
        c = batch[0]
        what = f"{len(batch)} configuration(s), e.g. {c.study} {c.method} seed {c.seed} J={c.num_experts}"
        lines.append(f"job {j.job_id} ({what}): {type(err).__name__}")
        stderr = Path(j.paths.stderr)
        lines.append(f"  log: {stderr}")
        text = stderr.read_text(errors="replace") if stderr.is_file() else ""
        tail = [t for t in text.splitlines() if t.strip()][-TAIL_LINES:] or str(err).splitlines()[-TAIL_LINES:]
        lines += [f"  | {t}" for t in tail]
    lines.append("Run the same command again to resume: it submits only the configurations whose results are missing.")
    return "\n".join(lines)
