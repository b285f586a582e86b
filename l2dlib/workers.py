"""Set-up of the runner's worker processes, in a module that imports no torch: a spawned
worker runs this before it unpickles its first task (and so before it imports torch,
which takes seconds), so it is bound to its parent from its first moments."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_worker(parent_pid: int) -> None:
    """Ctrl-C is the parent's to handle (it stops the workers; no tracebacks from here);
    the worker dies with its parent, even after a SIGKILL that leaves it no chance to clean
    up: on Linux the kernel sends SIGKILL at the parent's death (prctl), elsewhere a thread
    checks the parent twice a second."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm would make a multiprocessing lock (a named semaphore) that a stopped worker never
    # releases: the resource tracker then warns of a leak at exit.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
