"""The study runner: cache -> batches -> workers -> study tables with provenance.

``run_studies`` reuses every configuration already finished (in the cache or in the
table on disk), trains the rest (MoG: many models at once as one stacked MLP, in worker
processes), caches each configuration as its batch finishes, and writes each study's
table as the union of everything it held and everything computed, so no run loses rows.

A configuration's numbers depend on it alone. An MLP's output width is fixed by its own J
(K + max(8, J)), never by its companions: a padded column joins the model's log-sum-exp
and changes its rounding, which 50 epochs amplify; stacks hold models of one width. Every
per-model block of floats is aligned (``models.ALIGN``), and every MoG model trains on one
thread. Tested: a configuration trained alone and in any stack gives bit-identical rows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm  # plain bars: no ipywidgets needed in notebooks

from . import METHODS, numerics, results
from .data import Dataset
from .evaluation import BIN_KEYS, COLUMNS, RELIABILITY_COLUMNS, ROW_KEYS, evaluate
from .experts import draw_predictions
from .models import MLP, FastResNet, Stacked, WideResNet
from .profiles import Profile, get_profile, profiles_of, resolve_device
from .rng import derive_seed
from .studies import AXES, STUDIES, RunConfig, check_methods, check_options, check_seeds, run_config, study_configs
from .train import Split, predict, train
from .workers import init_worker

EXECUTORS = ("local", "slurm", "submitit_local")
INIT_STREAM, ORDER_STREAM = 2, 3  # seed streams (experts use 1, see l2dlib.experts)
# MLPs have output columns for at least this many experts (the rest masked), so every
# configuration of the paper's grids (J <= 8) shares one width and can share a stack.
EXPERT_SLOTS = 8


def output_width(cfg: RunConfig, profile: Profile, num_classes: int) -> int:
    """The model's number of output columns, a function of the configuration alone."""
    slots = max(EXPERT_SLOTS, cfg.num_experts) if profile.model == "mlp" else cfg.num_experts
    return num_classes + slots


# ------------------------------------------------------------------ data and model


def _profile(profile: str | Profile, dataset: str) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(dataset, profile)


def load_data(
    profile: Profile,
    device: torch.device,
    data_dir: str | Path | None = None,
    data_seed: int | None = None,
    results_dir: str | Path | None = None,
    progress: bool = False,
) -> Dataset:
    """The profile's data on ``device``: MoG from the paper's parameters or our generator's
    draw ``data_seed``; CIFAR-10 from ``data_dir`` (see ``data.cifar10``), or, for a profile
    with an extractor, its frozen features (trained and cached under ``results_dir``)."""
    if profile.dataset == "mog":
        from .data.mog import make_mog, params_for

        data = make_mog(params_for(data_seed), profile.points, standardize=profile.standardize)
        # train_batch evaluates each training seed on its own test draw (mog_test_split)
        label = data.label.replace(" points)", " points; test points drawn afresh per seed)")
        return replace(data, label=label).to(device)
    from .data import cifar10

    images = cifar10.synthetic_cifar10() if profile.synthetic else cifar10.load_cifar10(data_dir)
    if profile.extractor is None:
        return images.to(device)
    from .features import feature_dataset

    folder = results.resolve_dir(results_dir) / profile.dataset
    return feature_dataset(images, profile.extractor, folder, progress=progress).to(device)


def build_model(cfgs: Sequence[RunConfig], profile: Profile, data: Dataset) -> torch.nn.Module:
    """The profile's model for a batch of configurations: one stacked MLP for MoG, one
    network (wrapped to the trainer's [1, B, C] convention) for CIFAR-10."""
    k = data.num_classes
    device = data.x["train"].device
    seeds = [derive_seed(c.seed, INIT_STREAM, c.num_experts) for c in cfgs]
    if profile.model == "mlp":
        return MLP(
            [k + c.num_experts for c in cfgs],
            seeds=seeds,
            in_features=data.x["train"].shape[1],
            width=output_width(cfgs[0], profile, k),
            **dict(profile.model_options),
        ).to(device)
    if len(cfgs) != 1:
        raise ValueError(f"{profile.model} trains one configuration at a time, got {len(cfgs)}")
    net_class = {"fast_resnet": FastResNet, "wide_resnet": WideResNet}[profile.model]
    net = net_class(num_outputs=k + cfgs[0].num_experts, seed=seeds[0], **dict(profile.model_options))
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    return Stacked(net.to(device, memory_format=memory_format))


def _image_transforms(profile: Profile, device: torch.device):
    """(preprocess, augment) for the trainer: CIFAR-10 normalisation (channels_last on a GPU)
    and random crop + flip; nothing for MoG."""
    if profile.dataset != "cifar10" or profile.extractor is not None:
        return None, None
    from .data.transforms import augment, normalize

    aug = augment if profile.augment else None
    if device.type == "cuda":
        return (lambda x: normalize(x).contiguous(memory_format=torch.channels_last)), aug
    return normalize, aug


# ------------------------------------------------------------------ one batch


@dataclass
class BatchResult:
    """Per configuration of a batch: (rows, bins, points) and best epoch; and the batch's cost."""

    evaluated: list[tuple[list[dict], list[dict]]]
    best_epochs: list[int]
    epochs_run: int
    wall_seconds: float


def train_batch(cfgs: Sequence[RunConfig], data: Dataset, profile: Profile, progress: bool = False) -> BatchResult:
    """Train a batch of configurations of one output width as one stack and evaluate each on
    the test split."""
    k, device = data.num_classes, data.x["train"].device
    widths = {output_width(c, profile, k) for c in cfgs}
    if len(widths) != 1:  # see the module docstring: the width must not depend on companions
        raise ValueError(f"a batch must hold configurations of one output width, got {sorted(widths)}")
    t0 = time.perf_counter()
    slots = widths.pop() - k
    splits = {s: Split(data.x[s], data.y[s], _expert_tensor(cfgs, data, s, slots)) for s in ("train", "val")}
    model = build_model(cfgs, profile, data)
    preprocess, augment = _image_transforms(profile, device)
    evaluated: list = [None] * len(cfgs)
    with _one_thread(profile.model == "mlp"):
        history = train(
            model,
            splits["train"],
            splits["val"],
            methods=[c.method for c in cfgs],
            seeds=[derive_seed(c.seed, ORDER_STREAM) for c in cfgs],
            config=profile.train,
            preprocess=preprocess,
            augment=augment,
            progress=progress,
        )
        for x, y, members in _test_sets(cfgs, data, profile):
            # Test logits in float32 even when training used bf16: the estimates are what is measured.
            picked = None if len(members) == len(cfgs) else torch.tensor(members, device=device)
            logits = predict(model, x, preprocess=preprocess, batch_size=profile.train.eval_batch_size, models=picked)
            for i, m in enumerate(members):
                c = cfgs[m]
                experts = draw_predictions(list(c.experts), y, k, c.seed, "test").to(y.device)
                evaluated[m] = evaluate(logits[i, :, : k + c.num_experts], y, experts, k, c.method)
    if profile.dataset == "mog":  # the truth is known: Bayes accuracies and noise floors
        from .data.mog import params_for, reference

        for c, (rows, _, points) in zip(cfgs, evaluated):
            ref = reference(params_for(c.data_seed), c.experts, len(points.correct))
            for row, (floor, spread) in zip(rows, ref["floors"]):
                row.update(
                    ece_noise_floor=floor,
                    ece_noise_floor_sd=spread,
                    bayes_classifier_accuracy=ref["bayes_classifier_accuracy"],
                    bayes_system_accuracy=ref["bayes_system_accuracy"],
                )
    return BatchResult(evaluated, history.best_epoch.tolist(), history.epochs_run, time.perf_counter() - t0)


def _test_sets(
    cfgs: Sequence[RunConfig], data: Dataset, profile: Profile
) -> list[tuple[torch.Tensor, torch.Tensor, list[int]]]:
    """(x, y, the batch positions evaluated on these test points). CIFAR-10: its one test
    split for all. MoG: a fresh draw per training seed (:func:`mog_test_split`)."""
    if profile.dataset != "mog":
        return [(data.x["test"], data.y["test"], list(range(len(cfgs))))]
    by_seed: dict[int, list[int]] = {}
    for m, c in enumerate(cfgs):
        by_seed.setdefault(c.seed, []).append(m)
    device = data.x["train"].device
    out = []
    for seed, members in by_seed.items():
        x, y = mog_test_split(profile, cfgs[members[0]].data_seed, seed)
        out.append((x.to(device), y.to(device), members))
    return out


def mog_test_split(profile: Profile, data_seed: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The MoG test points (x, y) that the models of training seed ``seed`` are evaluated
    on: a draw of their own from the same mixture, scaled as the training split is, so the
    spread over seeds covers test-set sampling (the truth is known; docs/decisions.md)."""
    from .data.mog import make_mog, params_for

    fresh = make_mog(params_for(data_seed), profile.points, standardize=profile.standardize, test_seed=seed)
    return fresh.x["test"], fresh.y["test"]


def _expert_tensor(cfgs: Sequence[RunConfig], data: Dataset, split: str, slots: int) -> torch.Tensor:
    """Stacked expert predictions [M, N, slots], padded with -1 (never correct)."""
    out = []
    for c in cfgs:
        e = draw_predictions(list(c.experts), data.y[split], data.num_classes, c.seed, split)
        out.append(torch.nn.functional.pad(e, (0, slots - e.shape[1]), value=-1))
    return torch.stack(out).to(data.y[split].device)


@contextlib.contextmanager
def _one_thread(enabled: bool) -> Iterator[None]:
    """MoG models train on one thread, in a worker or not, so no result depends on how many
    threads split a reduction (and two single-threaded workers are faster anyway)."""
    if not enabled:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_batches(todo: Sequence[RunConfig], profile: Profile, num_classes: int) -> list[list[RunConfig]]:
    """Stacks of at most ``profile.max_models_per_batch`` configurations of one output
    width (see the module docstring), balanced in size and mixed in J, each ordered by
    method (the trainer takes runs of one method as slices); the widest first."""
    by_width: dict[tuple, list[RunConfig]] = {}
    for c in todo:  # a stack shares its data too
        by_width.setdefault(
            (output_width(c, profile, num_classes), -1 if c.data_seed is None else -2 - c.data_seed), []
        ).append(c)
    batches = []
    for width in sorted(by_width, reverse=True):
        group = by_width[width]
        count = -(-len(group) // profile.max_models_per_batch)  # ceil
        batches += [sorted(group[i::count], key=lambda c: METHODS.index(c.method)) for i in range(count)]
    return batches


# ------------------------------------------------------------------ workers

_worker_data: dict[tuple, Dataset] = {}


def run_key(cfg: RunConfig, profile: Profile, data_fingerprint: str, mode: str | None = None) -> str:
    """The cache key of one configuration: everything that decides its numbers, the data and
    the numerics mode (:func:`l2dlib.numerics.mode`: this process's unless ``mode``)."""
    mode = numerics.mode() if mode is None else mode
    return results.config_key(cfg.as_dict(profile) | {"data": data_fingerprint, "numerics": mode})


def _worker(
    cfgs: list[RunConfig],
    profile: Profile,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    device: str = "cpu",
    numerics_mode: str | None = None,
) -> BatchResult:
    """One batch in a worker process or cluster job (on a CPU: one thread); the data is made
    (CIFAR-10 features: read from their cache) once per process. ``numerics_mode``: the
    mode the run's keys were made in; a process that computes in another refuses."""
    if numerics_mode is not None and numerics.mode() != numerics_mode:
        raise RuntimeError(
            f"this process computes in numerics mode {numerics.mode()}, the run's keys are for "
            f"{numerics_mode}: give both the same ATEN_CPU_CAPABILITY, MKL_CBWR and L2D_NUMERICS"
        )
    if device == "cpu":
        torch.set_num_threads(1)
    return train_batch(cfgs, worker_data(profile, cfgs[0].data_seed, data_dir, results_dir, device), profile)


def worker_data(
    profile: Profile, data_seed: int | None, data_dir: Path | None, results_dir: Path | None, device: str = "cpu"
) -> Dataset:
    """The batch's data, made once per process."""
    key = (profile, data_seed, device)
    if key not in _worker_data:
        with warnings.catch_warnings():  # the parent process has said it once
            warnings.filterwarnings("ignore", message="the CIFAR-10 files", category=UserWarning)
            _worker_data[key] = load_data(profile, torch.device(device), data_dir, data_seed, results_dir)
    return _worker_data[key]


def cache_batch(
    batch: Sequence[RunConfig],
    res: BatchResult,
    data: Dataset,
    prof: Profile,
    results_dir: Path,
    device_text: str,
    git_commit: str,
) -> None:
    """Write each configuration's cache entry and its per-point estimates (atomically:
    concurrent jobs are safe; the points first, so an entry never lacks them)."""
    for c, (rows, bins, points), best in zip(batch, res.evaluated, res.best_epochs):
        key = run_key(c, prof, data.fingerprint)
        extra = {
            "best_epoch": best,
            "bins": bins,
            "batch_size_models": len(batch),
            "batch_epochs_run": res.epochs_run,
            "batch_training_examples": len(data.y["train"]),
            "batch_wall_seconds": res.wall_seconds,
            "device": device_text,
            "git_commit": git_commit,
            "data_fingerprint": data.fingerprint,
        }
        path = results.cache_dir(results_dir, prof.dataset, c.study, prof.name) / f"{key}.json"
        results.write_points(path, points)
        results.write_cached(path, c.as_dict(prof), rows, extra)


def worker_count(profile: Profile, device: torch.device, num_batches: int) -> int:
    workers = profile.cpu_workers if device.type == "cpu" and profile.model == "mlp" else 1
    return max(1, min(workers, num_batches))


def train_all(
    batches: list[list[RunConfig]],
    data_of: Callable[[int | None], Dataset],
    profile: Profile,
    device: torch.device,
    on_done: Callable[[list[RunConfig], BatchResult], None],
    progress: bool = False,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
) -> None:
    """Train every batch and hand each to ``on_done`` as it finishes. On an interruption
    (KeyboardInterrupt, or SystemExit from a signal handler), batches that finished
    meanwhile are handed over too, the workers are stopped at once, and it re-raises."""
    workers = worker_count(profile, device, len(batches))
    if workers == 1:
        for batch in batches:
            on_done(batch, train_batch(batch, data_of(batch[0].data_seed), profile, progress))
        return
    ctx = multiprocessing.get_context("spawn")  # fork + torch threads can deadlock
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=init_worker, initargs=(os.getpid(),)
    )
    futures: dict[concurrent.futures.Future, list[RunConfig]] = {}
    handled: set[concurrent.futures.Future] = set()
    try:
        with _signals_deferred():  # workers start with Ctrl-C blocked, before their imports
            futures = {
                pool.submit(_worker, b, profile, data_dir, results_dir, "cpu", numerics.mode()): b for b in batches
            }
        for fut in concurrent.futures.as_completed(futures):
            on_done(futures[fut], fut.result())
            handled.add(fut)
    except BaseException:
        for fut, batch in futures.items():  # finished while we were interrupted: keep them
            if fut not in handled and fut.done() and not fut.cancelled() and fut.exception() is None:
                on_done(batch, fut.result())
        _stop(pool)
        raise
    pool.shutdown()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Processes started inside inherit SIGINT blocked (a signal mask survives exec), so a
    Ctrl-C while they import prints no traceback: the parent handles it. The parent only
    defers it, never ignores it: one arriving meanwhile is raised on leaving (an ignored one
    would be lost, and the run would go on; seen under load). The mask alone is not enough
    in the parent: a thread started before (torch's, tqdm's) may take the signal, and its
    Python handler then ran in the middle of a spawn, cutting a worker's start-up data short
    (an EOFError traceback from the worker). So SIGINT's and SIGTERM's handlers only note
    the signal inside, and the previous handler is called on leaving."""
    caught: list[int] = []
    deferred = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    handlers = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in deferred}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a blocked Ctrl-C is noted here
        for s, handler in handlers.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(caught):
            handler = handlers[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL and signum == signal.SIGINT:
                raise KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop the workers now: their batches are lost either way, and waiting for them would
    keep an interrupted notebook or terminal busy for a whole batch."""
    processes = list((pool._processes or {}).values())  # no public way before Python 3.14
    for p in processes:
        p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for p in processes:
        p.join(timeout=5)


# ------------------------------------------------------------------ tables


@dataclass
class Record:
    """One finished configuration: its per-expert rows and reliability bins."""

    rows: list[dict]  # ROW_KEYS + best_epoch
    bins: list[dict] | None  # None: unknown (its reliability table was unreadable)


@dataclass
class StudyState:
    study: str
    keys: dict[tuple, str] = field(default_factory=dict)  # identity -> the key this code computes
    configs: dict[str, RunConfig] = field(default_factory=dict)  # key -> configuration
    records: dict[str, Record] = field(default_factory=dict)
    on_disk: set[str] = field(default_factory=set)  # keys of the table on disk
    previous: dict | None = None  # provenance on disk
    dirty: bool = False  # the table on disk must be rewritten
    computed: int = 0
    reused: dict[str, int] = field(default_factory=dict)  # other profiles' tables -> rows taken


def run_studies(
    studies: Sequence[str],
    dataset: str = "mog",
    profile: str | Profile = "quick",
    *,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] = METHODS,
    num_experts: Sequence[int] | None = None,
    expert_ps: Sequence[float] | None = None,
    data_seeds: Sequence[int] | None = None,
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
    training; the same call resumes. ``force`` recomputes the configurations asked for.
    ``profile`` is a name or a :class:`~l2dlib.profiles.Profile`; ``num_experts`` applies
    to the studies that vary J, ``expert_ps`` to expert_dependence (an error where no
    study of the call varies them); ``data_seeds`` (MoG) are draws of our generator (default:
    the profile's; None there means the paper's data); ``data_dir`` holds CIFAR-10.
    ``executor`` 'slurm' (or 'submitit_local': the same path in subprocesses of this machine)
    submits one job per batch through submitit, with ``cluster_options`` (a
    :class:`~l2dlib.cluster.ClusterOptions`; see :mod:`l2dlib.cluster`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    prof = _profile(profile, dataset)
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
    grids = {
        s: study_configs(
            s,
            dataset,
            prof.name,
            seeds=seeds,
            methods=methods,
            num_experts=num_experts,
            expert_ps=expert_ps,
            data_seeds=data_seeds,
        )
        for s in studies
    }
    # On a cluster the jobs train where their nodes are; this process only loads the data.
    dev = resolve_device(device, prof) if executor == "local" else torch.device("cpu")
    results_dir = results.resolve_dir(results_dir)
    for s in studies:  # no table yet: it will be written, so prove the folder before any compute
        if not results.table_paths(results_dir, dataset, s, prof.name)[0].exists():
            results.check_writable(results.cache_dir(results_dir, dataset, s, prof.name))
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
        from .features import weights_path

        images = cifar10.synthetic_cifar10() if prof.synthetic else cifar10.load_cifar10(data_dir)
        if not weights_path(results_dir / prof.dataset, prof.extractor, images).is_file():
            raise ValueError(
                f"profile {prof.name!r} needs its feature extractor before jobs can use it: run "
                f"`python -m l2dlib features --results-dir {results_dir}` first (e.g. in one job)"
            )
    for cfgs in grids.values():  # fail early on missing CIFAR-10 files
        data_of(cfgs[0].data_seed)
    with warnings.catch_warnings(record=True) as said:  # said once, by the last gathering
        warnings.simplefilter("always")
        states = {s: _gather(s, grids[s], prof, results_dir, key_of, force) for s in studies}
    todo = [st.configs[k] for st in states.values() for k in st.configs if k not in st.records]
    writes = bool(todo) or any(st.dirty or st.on_disk != set(st.configs) for st in states.values())
    if writes:
        for s in studies:  # before any compute: a folder we cannot write would lose it all
            results.check_writable(results.cache_dir(results_dir, dataset, s, prof.name))
    with contextlib.ExitStack() as locks:
        if writes:
            # One writer per table at a time; under the lock, gather again: a run that held it
            # meanwhile may have written configurations this one would otherwise drop.
            for s in sorted(studies):  # one order for every run: no two wait on each other
                locks.enter_context(results.table_lock(results_dir, dataset, s, prof.name))
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                states = {s: _gather(s, grids[s], prof, results_dir, key_of, force) for s in studies}
            todo = [st.configs[k] for st in states.values() for k in st.configs if k not in st.records]
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        # Train what the gathered tables lack, then write each table that changed.
        env = results.environment()
        num_classes = data_of(next(iter(grids.values()))[0].data_seed).num_classes
        batches = make_batches(todo, prof, num_classes)
        device_text = _device_description(dev, prof, len(batches)) if executor == "local" else f"{executor} jobs"
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
            for c, (rows, bins, _), best in zip(batch, res.evaluated, res.best_epochs):
                st = states[c.study]
                key = st.keys[c.identity]
                st.records[key] = Record([r | {"best_epoch": best} for r in rows], bins)
                st.computed += 1
                st.dirty = True
            bar.update(len(batch))

        try:
            if executor == "local":
                train_all(batches, data_of, prof, dev, cache, progress, data_dir, results_dir)
            else:
                from . import cluster

                options = cluster_options or cluster.ClusterOptions()
                cluster.run_jobs(
                    batches, prof, device, options, executor, cache, data_dir, results_dir, env["git_commit"], progress
                )
        finally:
            bar.close()

        run = {
            "command": _command(),
            "device": device_text,
            "created": env["created"],
            "git_commit": env["git_commit"],
            "wall_seconds": round(time.perf_counter() - started, 3),
            "wall_seconds_covers": list(studies),
        }
        tables = {}
        for study, st in states.items():
            table, reliability = _assemble(st, data_of)
            if st.dirty or st.on_disk != set(st.configs):
                provenance = _provenance(st, table, prof, data_of, env, run)
                results.write_table(results_dir, dataset, study, prof.name, table, provenance, reliability)
            asked = {key_of(c) for c in grids[study]}
            tables[study] = table[table["config_key"].isin(asked)].reset_index(drop=True)
        return tables


def _gather(
    study: str,
    grid: list[RunConfig],
    prof: Profile,
    results_dir: Path,
    key_of: Callable[[RunConfig], str],
    force: bool,
) -> StudyState:
    """What a study's table will hold: the configurations asked for, those in the table on
    disk and those in the cache, each with its record where one is valid."""
    st = StudyState(study)

    def add(cfg: RunConfig) -> str:
        if cfg.identity not in st.keys:
            st.keys[cfg.identity] = key_of(cfg)
            st.configs[st.keys[cfg.identity]] = cfg
        return st.keys[cfg.identity]

    for cfg in grid:
        add(cfg)
    asked = set(st.configs)
    folder = results.cache_dir(results_dir, prof.dataset, study, prof.name)

    # The cache: every valid entry whose key is what this code computes for it.
    for path in sorted(folder.glob("*.json")):
        if force and path.stem in asked:
            continue
        try:
            entry = results.read_cached(path)
        except results.OutdatedResults:
            continue  # its key hashes the old version too: it can only be stale
        if entry is None:
            continue
        cfg = _config_from(entry["config"], study, prof)
        if cfg is None or key_of(cfg) != path.stem:
            continue  # another configuration's settings, data or code: stale, left alone
        key = add(cfg)
        st.records[key] = Record([r | {"best_epoch": entry["best_epoch"]} for r in entry["rows"]], entry["bins"])

    # The table on disk: its rows are kept, so no run shrinks it.
    try:
        table, reliability = _read_table(results_dir, prof, study, force)
    except _Unreadable as bad:
        table = reliability = None
        path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
        lost = 0
        for listed in bad.listed:
            try:
                method, seed, j, p, d = listed
                key = key_of(run_config(study, prof.dataset, prof.name, method, seed, j, p, d))
            except (ValueError, TypeError, KeyError):
                key = None
            lost += key not in st.records and key not in asked
        if lost and not force:
            raise ValueError(
                f"{path} is unreadable ({bad.err}), and {lost} of the configurations its provenance lists are "
                f"not in the cache: restore it (e.g. `git checkout {path}`), or re-run with --force to rebuild "
                "it without them"
            ) from None
        warnings.warn(f"rebuilding {path} from the cache: {bad.err}", stacklevel=3)
        st.dirty = True
    if table is not None:
        st.previous = table.attrs["provenance"]
        st.dirty = reliability is None  # rebuilt below
        stale = 0
        for key, rows in table.groupby("config_key", sort=False):
            cfg = _config_from(rows.iloc[0].to_dict() | {"study": study, "profile": prof.name}, study, prof)
            if cfg is None or key_of(cfg) != key:
                stale += 1
                continue
            add(cfg)
            st.on_disk.add(key)
            if key in st.records or (force and key in asked):
                continue
            bins = None if reliability is None else reliability.get(key)
            st.records[key] = Record(rows[[*ROW_KEYS, "best_epoch"]].to_dict("records"), bins)
        if stale:
            path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
            if not force:
                raise ValueError(
                    f"{path} holds {stale} configuration(s) computed with other settings, data or numerics "
                    f"than this run uses (their keys differ; this process computes in mode {numerics.mode()}, "
                    "see L2D_NUMERICS): re-run with --force to replace the table by what this run computes, "
                    "or use another --results-dir"
                )
            warnings.warn(f"--force: dropping {stale} configuration(s) of other settings from {path}", stacklevel=3)
            st.dirty = True
    if not force:
        _reuse_other_profiles(st, asked, prof, results_dir, key_of)
    missing_bins = [k for k, r in st.records.items() if r.bins is None]
    if missing_bins:  # its reliability table was unreadable and the cache lacks them
        path = results.reliability_path(results_dir, prof.dataset, study, prof.name)
        warnings.warn(
            f"{path}: no reliability bins for {len(missing_bins)} configuration(s) outside the cache; recomputing them",
            stacklevel=3,
        )
        for k in missing_bins:
            del st.records[k]
    return st


def _reuse_other_profiles(
    st: StudyState, asked: set[str], prof: Profile, results_dir: Path, key_of: Callable[..., str]
) -> None:
    """Take what is still missing from other profiles' tables where a configuration's settings
    are the same (``quick`` is ``paper`` with 3 seeds): its numbers are a function of its
    settings, not of the profile's name. A row counts only if its key is what this code
    computes for it under its own profile, as for the profile's own table."""
    for other in profiles_of(prof.dataset):
        missing = asked - set(st.records)
        if not missing:
            return
        if other == prof.name:
            continue
        oprof = get_profile(prof.dataset, other)
        try:
            with warnings.catch_warnings():  # its own runs rebuild what it lacks, not this one
                warnings.simplefilter("ignore")
                table, reliability = _read_table(results_dir, oprof, st.study, force=False)
        except (results.OutdatedResults, _Unreadable):  # its own runs deal with it
            continue
        if table is None or reliability is None:
            continue
        wanted = {st.configs[k].identity: k for k in missing}
        taken = 0
        for key, rows in table.groupby("config_key", sort=False):
            cfg = _config_from(rows.iloc[0].to_dict() | {"study": st.study, "profile": prof.name}, st.study, prof)
            if cfg is None or cfg.identity not in wanted or key not in reliability:
                continue
            theirs = replace(cfg, profile=other)
            if theirs.as_dict(oprof)["settings"] != cfg.as_dict(prof)["settings"] or key_of(theirs, oprof) != key:
                continue
            records = rows[[*ROW_KEYS, "best_epoch"]].to_dict("records")
            st.records[wanted[cfg.identity]] = Record(records, reliability[key])
            taken += 1
        if taken:
            st.reused[results.table_paths(results_dir, oprof.dataset, st.study, other)[0].name] = taken
            st.dirty = True


class _Unreadable(ValueError):
    """An unreadable table whose provenance still lists its configurations."""

    def __init__(self, err: ValueError, listed: list) -> None:
        super().__init__(str(err))
        self.err, self.listed = err, listed


def _listed_configurations(json_path: Path) -> list:
    """The configurations a table's provenance lists ([method, seed, J, p, data seed]), or []."""
    try:
        listed = json.loads(json_path.read_text()).get("configurations", [])
    except (OSError, ValueError, AttributeError):
        return []
    return listed if isinstance(listed, list) else []


def _read_table(results_dir: Path, prof: Profile, study: str, force: bool) -> tuple[pd.DataFrame | None, dict | None]:
    """The table on disk (provenance in ``attrs``) and its reliability bins by key; None
    where absent or unreadable (a warning says what is rebuilt). A table of another results
    version is an error unless ``force``."""
    csv_path = results.table_paths(results_dir, prof.dataset, study, prof.name)[0]
    try:
        table, provenance = results.load_table(results_dir, prof.dataset, study, prof.name)
        if "config_key" not in table.columns:
            raise results.OutdatedResults(
                f"{csv_path} has no config_key column (written by older code): re-run with --force"
            )
    except FileNotFoundError:
        return None, None
    except results.OutdatedResults as err:
        if not force:
            raise
        warnings.warn(f"--force: replacing an outdated table ({err})", stacklevel=3)
        return None, None
    except ValueError as err:
        listed = _listed_configurations(csv_path.with_suffix(".json"))
        if listed:  # the cache must hold what the unreadable table held, or nothing is written
            raise _Unreadable(err, listed) from err
        warnings.warn(f"rebuilding {csv_path} from the cache: {err}", stacklevel=3)
        return None, None
    table.attrs["provenance"] = provenance
    try:
        bins, _ = results.load_table(results_dir, prof.dataset, study, prof.name, reliability=True)
        bins = bins[["config_key", *BIN_KEYS]]
    except (FileNotFoundError, ValueError, KeyError) as err:
        why = "missing" if isinstance(err, FileNotFoundError) else f"unreadable: {err}"
        path = results.reliability_path(results_dir, prof.dataset, study, prof.name)
        warnings.warn(f"{path} is {why}; rebuilding it from the cache", stacklevel=3)
        return table, None
    by_key = {
        k: g[list(BIN_KEYS)].astype(object).where(g[list(BIN_KEYS)].notna(), None).to_dict("records")
        for k, g in bins.groupby("config_key", sort=False)
    }
    return table, by_key


def _config_from(config: dict, study: str, prof: Profile) -> RunConfig | None:
    """The configuration a cache entry or a table row describes, rebuilt by this code (None
    if it is not one of this study and profile). Table rows hold NaN where entries hold None."""

    def optional(value, kind):
        return None if value is None or pd.isna(value) else kind(value)

    try:
        if config["study"] != study or config["profile"] != prof.name or config["dataset"] != prof.dataset:
            return None
        return run_config(
            study,
            prof.dataset,
            prof.name,
            config["method"],
            int(config["seed"]),
            int(config["num_experts"]),
            optional(config["expert_p"], float),
            optional(config.get("data_seed"), int),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _assemble(st: StudyState, data_of: Callable[[int | None], Dataset]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The study table and its reliability bins, in (method, data seed, seed, J or p) order."""

    def order(key: str) -> tuple:
        c = st.configs[key]
        draw = -1 if c.data_seed is None else c.data_seed
        return (METHODS.index(c.method), draw, c.seed, c.num_experts, -1 if c.expert_p is None else c.expert_p)

    rows, bins = [], []
    for key in sorted(st.records, key=order):
        c, rec = st.configs[key], st.records[key]
        ident = {
            "study": c.study,
            "method": c.method,
            "seed": c.seed,
            "num_experts": c.num_experts,
            "expert_p": c.expert_p,
            "data_seed": c.data_seed,
        }
        rows += [
            ident
            | {
                "dataset": c.dataset,
                "profile": c.profile,
                "expert_kind": c.experts[r["expert"]].kind,
                "data_label": data_of(c.data_seed).label,
                "config_key": key,
                **r,
            }
            for r in rec.rows
        ]
        bins += [ident | {"expert_kind": c.experts[b["expert"]].kind, "config_key": key, **b} for b in rec.bins]
    return (pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(bins, columns=RELIABILITY_COLUMNS))


def _provenance(
    st: StudyState, table: pd.DataFrame, prof: Profile, data_of: Callable[[int | None], Dataset], env: dict, run: dict
) -> dict:
    """What the table holds, and every run that changed it (the latest run's fields on top).
    With several data draws, the data label and fingerprint are per draw."""
    configs = [st.configs[k] for k in dict.fromkeys(table["config_key"])]
    draws = sorted({c.data_seed for c in configs}, key=lambda d: -1 if d is None else d)
    label = {str(d): data_of(d).label for d in draws}
    fingerprint = {str(d): data_of(d).fingerprint for d in draws}
    runs = list((st.previous or {}).get("runs", []))
    runs.append(run | {"num_computed": st.computed} | ({"reused_from": st.reused} if st.reused else {}))
    axis = AXES[st.study]
    return {
        "results_version": results.RESULTS_VERSION,
        "study": st.study,
        "dataset": prof.dataset,
        "profile": prof.name,
        "seeds": sorted({c.seed for c in configs}),
        "methods": [m for m in METHODS if any(c.method == m for c in configs)],
        axis.column: sorted({getattr(c, axis.column) for c in configs}),
        "data_seeds": [d for d in draws if d is not None],
        "configurations": [[c.method, c.seed, c.num_experts, c.expert_p, c.data_seed] for c in configs],
        "configuration_fields": ["method", "seed", "num_experts", "expert_p", "data_seed"],
        "num_configs": len(configs),
        "num_computed": st.computed,
        "num_rows": len(table),
        "settings": configs[0].as_dict(prof)["settings"],
        "data_label": label.popitem()[1] if len(label) == 1 else label,
        "data_fingerprint": fingerprint.popitem()[1] if len(fingerprint) == 1 else fingerprint,
        "config_keys_sha": hashlib.sha256(" ".join(sorted(table["config_key"].unique())).encode()).hexdigest()[:16],
        **env,
        **{k: run[k] for k in ("command", "device", "wall_seconds", "wall_seconds_covers")},
        "runs": runs,
        "reference": _reference_summary(table, axis.column),
    }


def _reference_summary(table: pd.DataFrame, x: str) -> dict | None:
    """What the results are measured against, for one data draw (MoG): the Bayes-optimal
    accuracies and, per x, the mean ECE noise floor over the experts."""
    if table["bayes_classifier_accuracy"].isna().all() or table["data_seed"].nunique(dropna=False) > 1:
        return None
    per_x = table.groupby(x)[["bayes_system_accuracy", "ece_noise_floor"]].mean()
    return {
        "bayes_classifier_accuracy": float(table["bayes_classifier_accuracy"].iloc[0]),
        "bayes_system_accuracy": {str(k): float(v) for k, v in per_x["bayes_system_accuracy"].items()},
        "ece_noise_floor_mean_over_experts": {str(k): float(v) for k, v in per_x["ece_noise_floor"].items()},
    }


def _command() -> str:
    """How this run was started, as a command a reader could paste (or the Python call)."""
    if sys.argv and sys.argv[0].endswith(("__main__.py", "l2dlib")):
        return shlex.join(["python", "-m", "l2dlib", *sys.argv[1:]])
    return "l2dlib.runner.run_studies (from Python or a notebook)"


def _device_description(device: torch.device, profile: Profile, num_batches: int) -> str:
    workers = worker_count(profile, device, num_batches)
    if profile.model == "mlp" and device.type == "cpu":
        cpu = results.device_name(device).split(",")[0]
        return f"{cpu}, {workers} worker process(es) x 1 thread)" if workers > 1 else f"{cpu}, 1 thread)"
    return results.device_name(device)


# ------------------------------------------------------------------ what pages read


def study_table(
    study: str,
    dataset: str = "mog",
    profile: str = "quick",
    *,
    recompute: bool = False,
    reliability: bool = False,
    results_dir: str | Path | None = None,
    **kwargs,
) -> tuple[pd.DataFrame, dict]:
    """What a study page shows: the rows of the configurations asked for (with
    ``reliability``, their reliability-diagram bins) and the table's provenance. MoG runs
    live on the CPU (finished configurations come from the cache or the table; ``recompute``
    retrains them); CIFAR-10 reads the committed table unless ``recompute`` is set (a GPU)."""
    get_profile(dataset, profile)  # a clear error for a pair that does not exist
    if not isinstance(recompute, bool):  # papermill's -p recompute no is the string "no"
        raise ValueError(f"recompute must be True or False, got {recompute!r}")
    if dataset == "mog" or recompute:
        table = run_studies([study], dataset, profile, results_dir=results_dir, force=recompute, **kwargs)[study]
        _, provenance = results.load_table(results_dir, dataset, study, profile)
    else:
        table, provenance = results.load_table(results_dir, dataset, study, profile)
    if reliability:
        bins, _ = results.load_table(results_dir, dataset, study, profile, reliability=True)
        return bins[bins["config_key"].isin(set(table["config_key"]))].reset_index(drop=True), provenance
    return results.with_bin_metrics(results_dir, dataset, study, profile, table), provenance


def committed_table(
    study: str, dataset: str, profile: str, *, results_dir: str | Path | None = None, recompute: bool = False, **kwargs
) -> tuple[pd.DataFrame | None, dict | None]:
    """A table a page shows where it exists: (table, provenance), or (None, None).
    With ``recompute`` the study is run first (CIFAR-10: on a GPU)."""
    if not isinstance(recompute, bool):  # papermill's -p recompute no is the string "no"
        raise ValueError(f"recompute must be True or False, got {recompute!r}")
    if recompute:
        return study_table(study, dataset, profile, results_dir=results_dir, recompute=True, **kwargs)
    return results.find_table(results_dir, dataset, study, profile, from_bins=True)
