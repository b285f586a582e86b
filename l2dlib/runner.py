"""The study runner: check the request -> its grid -> gather what exists -> batches ->
an executor -> the tables, with provenance.

``run_studies`` reuses every configuration already finished (in the cache or in the
table on disk), trains the rest (MoG: many models at once as one stacked MLP, in worker
processes; :mod:`l2dlib.batch`, :mod:`l2dlib.pool`), caches each configuration as its
batch finishes, and writes each study's table as the union of everything it held and
everything computed, so no run loses rows (:mod:`l2dlib.tables`).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm  # plain bars: no ipywidgets needed in notebooks

from . import METHODS, files, results
from .batch import BatchResult, cache_batch, load_data, make_batches, run_key
from .data import Dataset
from .pool import device_description, train_all, worker_count
from .profiles import Profile, profile_for, resolve_device
from .studies import STUDIES, RunConfig, check_methods, check_options, check_seeds, study_configs
from .tables import Record, assemble, gather, make_provenance

EXECUTORS = ("local", "slurm", "submitit_local")


def run_studies(
    studies: Sequence[str],
    dataset: str = "mog",
    profile: str | Profile | None = None,
    *,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] = METHODS,
    num_experts: Sequence[int] | None = None,
    expert_ps: Sequence[float] | None = None,
    data_seeds: Sequence[int] | None = None,
    max_epochs: int | None = None,
    lr: float | None = None,
    patience: int | None = None,
    results_dir: str | Path | None = None,
    force: bool = False,
    device: str | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    executor: str = "local",
    cluster_options=None,
) -> dict[str, pd.DataFrame]:
    """Run (or reuse) every configuration of the studies and write each table and provenance.

    Returns, per study, the rows of the configurations asked for. The table written to
    ``<results_dir>/<dataset>/<study>-<profile>.csv`` (with ``.reliability.csv`` and the
    provenance ``.json``) holds those and every other configuration it held before or that
    the cache holds: no run shrinks a table. Interrupting loses at most the batches in
    training: each table is written with every configuration finished so far (its
    provenance lists them, and the run's record says what stopped it); the same call
    resumes. ``force`` recomputes the configurations asked for.
    ``profile`` is a name or a :class:`~l2dlib.profiles.Profile` (default: the dataset's in
    :data:`~l2dlib.profiles.DEFAULT_PROFILE`); ``num_experts`` applies
    to the studies that vary J, ``expert_ps`` to expert_dependence (an error where no
    study of the call varies them); where not given, ``num_experts`` (of
    increasing_experts) and ``expert_ps`` are the profile's, if it sets them, else the
    studies' own grids; ``data_seeds`` (MoG) are draws of our generator (default:
    the profile's; None there means the paper's data); ``max_epochs``, ``lr`` and ``patience``
    replace the profile's schedule for every configuration (they enter its cache key);
    ``data_dir`` holds CIFAR-10.
    ``executor`` 'slurm' (or 'submitit_local': the same path in subprocesses of this machine)
    submits one job per batch through submitit, with ``cluster_options`` (a
    :class:`~l2dlib.cluster.ClusterOptions`; see :mod:`l2dlib.cluster`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    prof = profile_for(dataset, profile)
    if executor != "local":
        from . import cluster

        cluster.check_available(executor)
        cluster.job_resources(cluster_options or cluster.ClusterOptions(), prof, device)
    if prof.dataset != dataset:
        raise ValueError(f"profile {prof.name!r} is for {prof.dataset}, not {dataset}")
    studies = tuple(dict.fromkeys(studies))
    for s in studies:
        if s not in STUDIES:
            raise ValueError(f"unknown study {s!r}: expected one of {', '.join(STUDIES)}")
    check_options(studies, num_experts=num_experts, expert_ps=expert_ps)
    if data_dir is not None and (dataset == "mog" or prof.synthetic):
        what = "dataset mog" if dataset == "mog" else f"profile {prof.name!r} (synthetic images)"
        raise ValueError(f"data_dir (--data-dir) does not apply to {what}: it reads no files")
    if data_seeds is not None and dataset != "mog":
        raise ValueError(f"data_seeds (--data-seeds) apply to dataset mog only, not {dataset}")
    seeds = check_seeds(prof.seeds if seeds is None else seeds)
    data_seeds = prof.data_seeds if data_seeds is None else check_seeds(data_seeds, "data_seeds")
    methods = check_methods(methods)
    default_js = {"increasing_experts": prof.num_experts}  # the profile's grid, where it sets one
    grids = {
        s: study_configs(
            s,
            dataset,
            prof.name,
            seeds=seeds,
            methods=methods,
            num_experts=num_experts if num_experts is not None else default_js.get(s),
            expert_ps=expert_ps if expert_ps is not None else prof.expert_ps,
            data_seeds=data_seeds,
            schedule={"max_epochs": max_epochs, "lr": lr, "patience": patience},
        )
        for s in studies
    }
    # On a cluster the jobs train where their nodes are; this process only loads the data.
    dev = resolve_device(device, prof) if executor == "local" else torch.device("cpu")
    results_dir = results.resolve_dir(results_dir)
    for s in studies:  # no table yet: it will be written, so prove the folder before any compute
        if not results.table_paths(results_dir, dataset, s, prof.name)[0].exists():
            files.check_writable(results.cache_dir(results_dir, dataset, s, prof.name))
    data_dir = None if data_dir is None else Path(data_dir).expanduser()
    started = time.perf_counter()
    datasets: dict[int | None, Dataset] = {}

    def data_of(data_seed: int | None) -> Dataset:  # made on first use (MoG: milliseconds)
        if data_seed not in datasets:
            datasets[data_seed] = load_data(prof, dev, data_dir, data_seed, results_dir, progress)
        return datasets[data_seed]

    def key_of(cfg: RunConfig, profile: Profile = prof) -> str:  # profile: one of equal settings
        return run_key(cfg, profile, data_of(cfg.data_seed).fingerprint)

    if executor != "local" and prof.extractor is not None:  # never train it on a login node
        from .data import cifar10
        from .features import extractor_folder, weights_path

        images = cifar10.synthetic_cifar10() if prof.synthetic else cifar10.load_cifar10(data_dir)
        if not weights_path(extractor_folder(results_dir), prof.extractor, images).is_file():
            raise ValueError(
                f"profile {prof.name!r} needs its feature extractor before jobs can use it: run "
                f"`python -m l2dlib features --results-dir {results_dir}` first (e.g. in one job)"
            )
    for cfgs in grids.values():  # fail early on missing CIFAR-10 files
        data_of(cfgs[0].data_seed)
    with warnings.catch_warnings(record=True) as said:  # said once, by the last gathering
        warnings.simplefilter("always")
        states = {s: gather(s, grids[s], prof, results_dir, key_of, force) for s in studies}
    todo = [st.configs[k] for st in states.values() for k in st.configs if k not in st.records]
    writes = bool(todo) or any(st.dirty or st.on_disk != set(st.configs) for st in states.values())
    if writes:
        for s in studies:  # before any compute: a folder we cannot write would lose it all
            files.check_writable(results.cache_dir(results_dir, dataset, s, prof.name))
    with contextlib.ExitStack() as locks:
        if writes:
            # One writer per table at a time; under the lock, gather again: a run that held it
            # meanwhile may have written configurations this one would otherwise drop.
            for s in sorted(studies):  # one order for every run: no two wait on each other
                locks.enter_context(results.table_lock(results_dir, dataset, s, prof.name))
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                states = {s: gather(s, grids[s], prof, results_dir, key_of, force) for s in studies}
            todo = [st.configs[k] for st in states.values() for k in st.configs if k not in st.records]
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # Train what the gathered tables lack, then write each table that changed.
        env = results.environment()
        num_classes = data_of(next(iter(grids.values()))[0].data_seed).num_classes
        workers = worker_count(prof, dev, len(todo)) if executor == "local" else 1
        batches = make_batches(todo, prof, num_classes, workers=workers)
        device_text = device_description(dev, prof, len(batches)) if executor == "local" else f"{executor} jobs"
        total = sum(len(st.configs) for st in states.values())
        bar = tqdm(
            total=total,
            initial=total - len(todo),
            unit="config",
            disable=not progress,
            desc=f"{'+'.join(studies)} ({dataset}, {prof.name})",
        )

        def cache(batch: list[RunConfig], res: BatchResult) -> None:
            if executor == "local":  # cluster jobs write their own entries (they outlive us)
                cache_batch(batch, res, data_of(batch[0].data_seed), prof, results_dir, device_text, env["git_commit"])
            for c, (rows, bins, _), best, accuracy in zip(batch, res.evaluated, res.best_epochs, res.train_accuracies):
                st = states[c.study]
                key = st.keys[c.identity]
                extra = {"best_epoch": best, "train_classifier_accuracy": accuracy}
                st.records[key] = Record([r | extra for r in rows], bins)
                st.computed += 1
                st.dirty = True
            bar.update(len(batch))

        def write(stopped_by: BaseException | None = None) -> dict[str, pd.DataFrame]:
            run = {
                "command": run_command(),
                "device": device_text,
                "created": env["created"],
                "git_commit": env["git_commit"],
                "wall_seconds": round(time.perf_counter() - started, 3),
                "wall_seconds_covers": list(studies),
            }
            if stopped_by is not None:  # the table holds what finished; the same command resumes
                run["stopped_by"] = type(stopped_by).__name__
            tables = {}
            for study, st in states.items():
                table, reliability = assemble(st, data_of)
                if st.dirty or st.on_disk != set(st.configs):
                    if table.empty:  # nothing finished and nothing held: no table to write
                        continue
                    provenance = make_provenance(st, table, prof, data_of, env, run)
                    results.write_table(results_dir, dataset, study, prof.name, table, provenance, reliability)
                asked = {key_of(c) for c in grids[study]}
                tables[study] = table[table["config_key"].isin(asked)].reset_index(drop=True)
            return tables

        try:
            if executor == "local":
                train_all(batches, data_of, prof, dev, cache, progress, data_dir, results_dir)
            else:
                from . import cluster

                options = cluster_options or cluster.ClusterOptions()
                cluster.run_jobs(
                    batches, prof, device, options, executor, cache, data_dir, results_dir, env["git_commit"], progress
                )
        except BaseException as stop:  # Ctrl-C, a signal or an error: keep every finished batch
            bar.close()
            if any(st.computed for st in states.values()):
                try:
                    write(stop)
                except Exception as err:  # the cache still holds them; say so, raise the first
                    warnings.warn(f"could not write the tables of the finished configurations: {err}", stacklevel=2)
            raise
        bar.close()
        return write()


def run_command() -> str:
    """How this run was started, as a command a reader could paste (or the Python call)."""
    if sys.argv and sys.argv[0].endswith(("__main__.py", "l2dlib")):
        return shlex.join(["python", "-m", "l2dlib", *sys.argv[1:]])
    return "l2dlib.runner.run_studies (from Python or a notebook)"
