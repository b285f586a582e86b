"""Time both MoG studies, paper profile (130 models), from a cold results folder.

Prints one table: the whole run (models stacked into batched matmuls, per-model early
stopping, two single-threaded worker processes) against one model trained alone through the same
loop in this process, and against one model trained the plain PyTorch way (a ``Sequential``
MLP 2-32-16-8-(K+J), the profile's data, batch size, SGD and cosine schedule and epochs, a
validation pass every epoch, default threads; the median of three runs), so both ratios
come from one run. Then the
ECE the run found, per method and number of experts, and the random expert's ECE per p.

    .venv/bin/python benchmarks/mog_study.py [--profile paper] [--seeds 0 1 2 3 4]
    L2D_NUMERICS=native .venv/bin/python benchmarks/mog_study.py   # the machine's own kernels

Everything, the plain loop included, runs in the numerics mode of this process (the header
says which; portable unless ``L2D_NUMERICS=native``).
"""

from __future__ import annotations

import l2dlib  # noqa: F401  first: the portable numerics must be requested before torch loads

# isort: split

import argparse
import dataclasses
import statistics
import tempfile
import time

import pandas as pd
import torch

from l2dlib import aggregate, numerics, report
from l2dlib import batch as B
from l2dlib import runner as R
from l2dlib.profiles import get_profile
from l2dlib.studies import study_configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["softmax", "ova"],
        help="the paper's two by default (130 models); add asymmetric_softmax for 195",
    )
    parser.add_argument("--batch", type=int, help="override the profile's models per batch")
    args = parser.parse_args()
    studies = ("increasing_experts", "expert_dependence")

    prof = get_profile("mog", args.profile)
    if args.batch:
        prof = dataclasses.replace(prof, max_models_per_batch=args.batch)
    with tempfile.TemporaryDirectory() as cold:
        t0 = time.perf_counter()
        tables = R.run_studies(
            studies, "mog", prof, seeds=args.seeds, methods=args.methods, results_dir=cold, progress=False
        )
        wall = time.perf_counter() - t0
    models = sum(len(t.groupby(["method", "seed", "num_experts", "expert_p"], dropna=False)) for t in tables.values())

    # A few configurations trained alone through the same loop (M = 1, this process's
    # thread, as every MoG model): their mean time, times the number of models, estimates a
    # one-at-a-time run.
    data = B.load_data(prof, torch.device("cpu"))
    samples = [
        study_configs(study, "mog", args.profile, seeds=[0], methods=[method], **grid)[0]
        for study, method, grid in (
            ("increasing_experts", "softmax", {"num_experts": [1]}),
            ("increasing_experts", "softmax", {"num_experts": [8]}),
            ("increasing_experts", "ova", {"num_experts": [8]}),
            ("expert_dependence", "ova", {"expert_ps": [0.95]}),
        )
    ]
    times = []
    for cfg in samples:
        t0 = time.perf_counter()
        B.train_batch([cfg], data, prof)
        times.append(time.perf_counter() - t0)
    alone = sum(times) / len(times)

    # One plain run is 3-4 s and drifted by 30% between runs (measured): the median of three.
    plain = statistics.median(plain_pytorch(data, prof, num_experts=1) for _ in range(3))
    rows = [
        ("both studies, stacked", models, models, wall, wall / models),
        (f"one model alone (same loop, mean of {len(times)})", 1, 1, alone, alone),
        ("one at a time, estimated", models, models, alone * models, alone),
        ("one model, plain PyTorch loop (median of 3)", 1, 1, plain, plain),
    ]
    table = pd.DataFrame(rows, columns=["run", "configurations", "models trained", "wall s", "s per model"])
    print(
        f"MoG studies, profile {args.profile}, methods {' '.join(args.methods)}; numerics {numerics.mode()}; "
        f"{prof.cpu_workers} "
        f"worker processes of 1 thread, batches of <= {prof.max_models_per_batch} models; "
        "the model alone: 1 thread"
    )
    print(table.round(3).to_string(index=False))
    print(f"speed-up over one at a time: {alone * models / wall:.1f}x")
    print(f"the {models} models in {wall / plain:.1f}x the time of one plain PyTorch model (target: at most 8x)")

    inc, dep = tables["increasing_experts"], tables["expert_dependence"]
    print("\nECE averaged over experts, mean over seeds, by number of experts:")
    print(aggregate.mean_by(inc, "num_experts").round(4).to_string())
    print("\nECE of the random expert, mean over seeds, by p:")
    print(aggregate.mean_by(dep, "expert_p", expert_kind="random").round(4).to_string())
    for study, t in (("increasing_experts", inc), ("expert_dependence", dep)):
        for method in t["method"].unique():
            print(f"{study}, {method}: ECE {report.describe_change(study, 'mog', t, method)}")


def plain_pytorch(data, prof, num_experts: int) -> float:
    """Seconds to train one MoG model the way a PyTorch tutorial would: nn.Sequential, a
    DataLoader-free shuffled loop, the softmax L2D loss, SGD Nesterov with a cosine
    schedule, the profile's epochs and batch size, a validation pass per epoch."""
    from torch import nn

    from l2dlib.experts import draw_predictions, oracle

    torch.manual_seed(0)
    k, cfg = data.num_classes, prof.train
    x, y, xv, yv = data.x["train"], data.y["train"], data.x["val"], data.y["val"]
    experts = [oracle((2, 3)) for _ in range(num_experts)]
    m = draw_predictions(experts, y, k, 0, "train")
    mv = draw_predictions(experts, yv, k, 0, "val")
    net = nn.Sequential(
        nn.Linear(2, 32),
        nn.ReLU(),
        nn.Linear(32, 16),
        nn.ReLU(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, k + num_experts),
    )
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    steps = len(y) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.max_epochs * steps)

    def loss_fn(logits, y, m):  # softmax L2D: -log p(y) - sum_j [m_j = y] log p(defer to j)
        logp = torch.log_softmax(logits, 1)
        right = (m == y[:, None]).float()
        return -(logp.gather(1, y[:, None])[:, 0] + (right * logp[:, k:]).sum(1)).mean()

    t0 = time.perf_counter()
    for _ in range(cfg.max_epochs):
        order = torch.randperm(len(y))
        for i in range(steps):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            loss = loss_fn(net(x[idx]), y[idx], m[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            loss_fn(net(xv), yv, mv).item()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
