"""Time both MoG studies, paper profile (130 models), from a cold results folder.

Prints one table: the whole run (models stacked into batched matmuls, per-model early
stopping, two single-threaded worker processes) against one model trained alone through the same
loop in this process, so the speed-up is a ratio from one run. Then the ECE the run
found, per method and number of experts, and the random expert's ECE per p.

    .venv/bin/python benchmarks/mog_study.py [--profile paper] [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import pandas as pd
import torch

from l2dlib import aggregate, report
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

    rows = [
        ("both studies, stacked", models, models, wall, wall / models),
        (f"one model alone (same loop, mean of {len(times)})", 1, 1, alone, alone),
        ("one at a time, estimated", models, models, alone * models, alone),
    ]
    table = pd.DataFrame(rows, columns=["run", "configurations", "models trained", "wall s", "s per model"])
    print(
        f"MoG studies, profile {args.profile}, methods {' '.join(args.methods)}; {prof.cpu_workers} "
        f"worker processes of 1 thread, batches of <= {prof.max_models_per_batch} models; "
        "the model alone: 1 thread"
    )
    print(table.round(3).to_string(index=False))
    print(f"speed-up over one at a time: {alone * models / wall:.1f}x")

    inc, dep = tables["increasing_experts"], tables["expert_dependence"]
    print("\nECE averaged over experts, mean over seeds, by number of experts:")
    print(aggregate.mean_by(inc, "num_experts").round(4).to_string())
    print("\nECE of the random expert, mean over seeds, by p:")
    print(aggregate.mean_by(dep, "expert_p", expert_kind="random").round(4).to_string())
    for study, t in (("increasing_experts", inc), ("expert_dependence", dep)):
        for method in t["method"].unique():
            print(f"{study}, {method}: ECE {report.describe_change(study, 'mog', t, method)}")


if __name__ == "__main__":
    main()
