"""The local executor: batches in worker processes (one thread each) or in this process,
handed over as they finish; Ctrl-C and SIGTERM stop the workers at once."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from . import numerics, results
from .batch import ONE_THREAD_MODELS, BatchResult, run_in_process, train_batch
from .data import Dataset
from .profiles import Profile
from .studies import RunConfig
from .workers import init_worker


def worker_count(profile: Profile, device: torch.device, num_batches: int) -> int:
    workers = profile.cpu_workers if device.type == "cpu" and profile.model in ONE_THREAD_MODELS else 1
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
                pool.submit(run_in_process, b, profile, data_dir, results_dir, "cpu", numerics.mode()): b
                for b in batches
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


def device_description(device: torch.device, profile: Profile, num_batches: int) -> str:
    """Where a local run trains, for the provenance."""
    workers = worker_count(profile, device, num_batches)
    if profile.model in ONE_THREAD_MODELS and device.type == "cpu":
        cpu = results.device_name(device).split(",")[0]
        return f"{cpu}, {workers} worker process(es) x 1 thread)" if workers > 1 else f"{cpu}, 1 thread)"
    return results.device_name(device)
