"""Where one MoG stack's training time goes: torch.profiler over one stack of the paper
profile (the benchmark's 22-model stacks, softmax and OvA mixed, J = 1..8), on one thread
as the workers train, for a few epochs. Prints the numerics mode, the wall time per epoch
and the self CPU time by operator family (matrix products, elementwise and reductions,
indexing and copies, the optimiser's foreach kernels, the rest) and the top operators.

Run it once per numerics mode to see what the portable mode costs:

    .venv/bin/python benchmarks/mog_stack_profile.py [--epochs 5] [--models 22]
    L2D_NUMERICS=native .venv/bin/python benchmarks/mog_stack_profile.py
"""

from __future__ import annotations

import l2dlib  # noqa: F401  first: the portable numerics must be requested before torch loads

# isort: split

import argparse
import dataclasses
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from l2dlib import batch as B
from l2dlib import numerics
from l2dlib.profiles import get_profile
from l2dlib.studies import study_configs

FAMILIES = (  # (family, operator-name fragments), first match wins
    ("matrix products", ("bmm", "baddbmm", "addmm", "mm")),
    ("optimiser (foreach)", ("_foreach",)),
    ("indexing and copies", ("index", "gather", "scatter", "copy_", "cat", "stack", "clone", "randperm", "pad")),
    (
        "elementwise and reductions",
        (
            "relu",
            "softplus",
            "threshold",
            "exp",
            "log",
            "sigmoid",
            "softmax",
            "mul",
            "add",
            "sub",
            "div",
            "where",
            "sum",
            "mean",
            "max",
            "amax",
            "neg",
            "clamp",
            "fill",
            "lt",
            "gt",
            "eq",
            "ne",
            "masked",
            "logsumexp",
            "pow",
            "sqrt",
        ),
    ),
)


def family(name: str) -> str:
    short = name.removeprefix("aten::")
    for fam, parts in FAMILIES:
        if any(p in short for p in parts):
            return fam
    return "the rest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", type=int, default=22)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    prof = get_profile("mog", "paper")
    train = dataclasses.replace(prof.train, max_epochs=args.epochs, patience=args.epochs)
    prof = dataclasses.replace(prof, train=train)
    cfgs = study_configs("increasing_experts", "mog", "paper", seeds=range(5), methods=["softmax", "ova"])
    half = args.models // 2  # the study's mix: both methods, every J
    picked = [c for c in cfgs if c.method == "softmax"][:half] + [c for c in cfgs if c.method == "ova"][
        : args.models - half
    ]
    (stack,) = B.make_batches(picked, dataclasses.replace(prof, max_models_per_batch=args.models), 5)
    data = B.load_data(prof, torch.device("cpu"))
    B.train_batch(stack[:2], data, dataclasses.replace(prof, train=dataclasses.replace(train, max_epochs=1)))  # warm
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as p:
        B.train_batch(stack, data, prof)
    wall = time.perf_counter() - t0
    by_family: dict[str, float] = defaultdict(float)
    rows = []
    for e in p.key_averages():
        if e.self_cpu_time_total > 0 and e.key.startswith("aten::"):
            by_family[family(e.key)] += e.self_cpu_time_total / 1e6
            rows.append((e.self_cpu_time_total / 1e6, e.count, e.key))
    total = sum(by_family.values())
    print(
        f"numerics {numerics.mode()}; one stack of {len(stack)} models, {args.epochs} epochs, 1 thread: "
        f"{wall:.2f} s under the profiler ({wall / args.epochs:.3f} s per epoch); aten self time {total:.2f} s"
    )
    for fam, seconds in sorted(by_family.items(), key=lambda kv: -kv[1]):
        print(f"  {fam:28s} {seconds:7.2f} s  {seconds / total:6.1%}")
    print(f"top {args.top} operators by self time (s, calls):")
    for seconds, count, key in sorted(rows, reverse=True)[: args.top]:
        print(f"  {key:40s} {seconds:7.2f} {count:9d}")


if __name__ == "__main__":
    main()
