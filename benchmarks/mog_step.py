"""One training step of a MoG stack: autograd's gradients against the trainer's by hand,
and where a step's time goes. A stack of 22 MLPs 2-32-16-8-13 (J = 1..8, masked output
columns as in the studies), batch 256, one thread, in this process's numerics mode.

Prints two tables: the gradients' time per step through autograd and by hand
(``models.MLP.backward_by_hand``) for a stack of softmax and OvA and one of the asymmetric
softmax and decoupled surrogates (the faster of two means over 200 steps after a warm-up,
both paths in turn), and a whole step (gradients by hand and ``train.SGD``) under
torch.profiler, its ATen self time by operator family.

    .venv/bin/python benchmarks/mog_step.py
    L2D_NUMERICS=native .venv/bin/python benchmarks/mog_step.py
"""

from __future__ import annotations

import l2dlib  # noqa: F401  first: the portable numerics must be requested before torch loads

# isort: split

import functools
import time
from collections import defaultdict

import pandas as pd
import torch
from mog_stack_profile import family
from torch.profiler import ProfilerActivity, profile

from l2dlib import numerics
from l2dlib.losses import expert_correct
from l2dlib.models import MLP
from l2dlib.train import SGD, per_model_loss, per_model_loss_grad

MODELS, ROWS, CLASSES, SLOTS = 22, 256, 5, 8


def stack(methods: list[str]):
    gen = torch.Generator().manual_seed(0)
    model = MLP([CLASSES + 1 + m % SLOTS for m in range(MODELS)], seeds=range(MODELS), width=CLASSES + SLOTS)
    x = torch.randn(MODELS, ROWS, 2, generator=gen)
    y = torch.randint(CLASSES, (MODELS, ROWS), generator=gen)
    experts = torch.randint(CLASSES, (MODELS, ROWS, SLOTS), generator=gen)
    for m in range(MODELS):
        experts[m, :, 1 + m % SLOTS :] = -1  # padded experts, as in a stack of mixed J
    return model, x, y, expert_correct(y, experts)


def timed(f, steps: int = 200) -> float:
    for _ in range(20):
        f()
    t0 = time.perf_counter()
    for _ in range(steps):
        f()
    return (time.perf_counter() - t0) / steps * 1e3


def gradient_times(methods: list[str]) -> tuple[float, float]:
    """(autograd, by hand): ms per step of the gradients, the faster of two runs each."""
    model, x, y, c = stack(methods)

    def autograd():
        model.zero_grad(set_to_none=True)
        per_model_loss(model(x), y, c, methods).sum().backward()

    def by_hand():
        model.backward_by_hand(x, functools.partial(per_model_loss_grad, y=y, correct=c, methods=methods))

    times = defaultdict(list)
    for name, f in (("autograd", autograd), ("by hand", by_hand)) * 2:
        times[name].append(timed(f))
    return min(times["autograd"]), min(times["by hand"])


def main() -> None:
    torch.set_num_threads(1)
    half = MODELS // 2
    rows = []
    for pair in (("softmax", "ova"), ("asymmetric_softmax", "decoupled")):
        rows.append((" and ".join(pair), *gradient_times([pair[0]] * half + [pair[1]] * (MODELS - half))))
    print(f"numerics {numerics.mode()}; gradients of one step, {MODELS} models x {ROWS} rows, 1 thread (ms)")
    print(pd.DataFrame(rows, columns=["methods", "autograd", "by hand"]).round(2).to_string(index=False))

    methods = ["softmax"] * half + ["ova"] * (MODELS - half)
    model, x, y, c = stack(methods)
    opt = SGD(model.parameters(), momentum=0.9, nesterov=True, weight_decay=5e-4)

    def step():
        model.backward_by_hand(x, functools.partial(per_model_loss_grad, y=y, correct=c, methods=methods))
        opt.step(0.05)

    wall = timed(step)
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(50):
            step()
    by_family: dict[str, float] = defaultdict(float)
    for e in p.key_averages():
        if e.key.startswith("aten::") and e.self_cpu_time_total > 0:
            by_family[family(e.key)] += e.self_cpu_time_total / 50 / 1e3
    kernels = sum(by_family.values())
    print(f"\na whole step (softmax and OvA, by hand, SGD): {wall:.2f} ms unprofiled; ATen self time per step:")
    for fam, ms in sorted(by_family.items(), key=lambda kv: -kv[1]):
        print(f"  {fam:28s} {ms:6.2f} ms")
    print(f"  {'outside ATen (Python)':28s} {max(0.0, wall - kernels):6.2f} ms")


if __name__ == "__main__":
    main()
