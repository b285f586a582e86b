"""The settings that decide a CPU result's bits on another machine, and the portable mode.

On the same torch build, two things make CPU numbers machine-dependent: the vectorised
ATen kernels torch picks for the CPU (``AVX512``, ``AVX2`` or scalar ``DEFAULT``), and
the code path MKL picks for its routines. Both are read when torch loads, from
``ATEN_CPU_CAPABILITY`` and ``MKL_CBWR``. The portable mode sets them to the scalar
kernels and MKL's ``COMPATIBLE`` path, which every x86-64 CPU runs the same way; threads
are fixed elsewhere (one per MoG model). ``L2D_NUMERICS=native`` keeps the machine's own.

This module imports no torch: :func:`request_portable` must run before torch does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterator

PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
MODE_VARIABLE = "L2D_NUMERICS"  # portable (the default) | native


def request_portable(environ=os.environ) -> bool:
    """Put the portable settings in ``environ``, unless ``L2D_NUMERICS=native`` or torch is
    already imported (then they could no longer reach this process, and child processes,
    which inherit the environment, must compute as it does); a variable the user set is
    kept as it is. Returns whether the settings were put."""
    mode = environ.get(MODE_VARIABLE, "portable")
    if mode not in ("portable", "native"):
        raise ValueError(f"{MODE_VARIABLE} must be 'portable' or 'native', got {mode!r}")
    if mode == "native" or "torch" in sys.modules:
        return False
    for name, value in PORTABLE_ENV.items():
        environ.setdefault(name, value)
    return True


def state() -> dict[str, str | bool | None]:
    """What decides this process's CPU bits: torch's kernels, MKL's path and version, oneDNN's
    version, the thread settings; ``portable`` when both settings are the portable ones."""
    import torch

    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    onednn = re.search(r"MKL-DNN (v[\w.]+)", config)
    capability = torch.backends.cpu.get_cpu_capability()
    cbwr = os.environ.get("MKL_CBWR")
    return {
        "portable": capability == "DEFAULT" and cbwr == PORTABLE_ENV["MKL_CBWR"],
        "cpu_capability": capability,
        "mkl_cbwr": cbwr,
        "mkl": mkl.group(1) if mkl else None,
        "onednn": onednn.group(1) if onednn else None,
        "torch": torch.__version__,
        "threads": f"{torch.get_num_threads()} intra-op, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
    }


@functools.cache  # fixed once torch has loaded
def mode() -> str:
    """``portable``, or ``native-<CPU capability>[-MKL_CBWR=...]``: part of every CPU cache key,
    so numbers computed in one mode are never taken for the other's."""
    return mode_of(state())


def mode_of(s: dict) -> str:
    """:func:`mode` of a recorded :func:`state` (a table's provenance ``numerics``)."""
    if s["portable"]:
        return "portable"
    return f"native-{s['cpu_capability']}" + (f"-MKL_CBWR={s['mkl_cbwr']}" if s["mkl_cbwr"] else "")


@contextlib.contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """Inside, torch computes on one thread (if ``enabled``): what it computes then does not
    depend on how many threads would have split a reduction."""
    import torch  # not at import time: request_portable must run before torch is imported

    before = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
