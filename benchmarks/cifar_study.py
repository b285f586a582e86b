"""CIFAR-10: per profile and method, the L2D model's classifier accuracy on the test split,
training images per second, seconds per model, and the wall time of the three studies.

    python benchmarks/cifar_study.py --profile paper --device cuda --data-dir DIR [--seeds 0]
    python benchmarks/cifar_study.py --profile smoke      # synthetic data on a CPU

It runs all three studies (both or all methods, the given seeds) from a cold results folder
through the same code as the CLI and reads the numbers back from the result tables.
Images per second counts training images (epochs run x training-split size) over each
model's wall time (training and its test-split evaluation).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from l2dlib.profiles import get_profile
from l2dlib.runner import run_studies
from l2dlib.studies import STUDIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=["softmax", "ova"])
    parser.add_argument("--results-dir", help="keep the results here instead of a temporary folder")
    args = parser.parse_args()

    get_profile("cifar10", args.profile)  # fail early on a bad profile
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.results_dir or tmp)
        t0 = time.perf_counter()
        tables = run_studies(
            STUDIES[:3],
            "cifar10",
            args.profile,
            seeds=args.seeds,
            methods=args.methods,
            results_dir=out,
            device=args.device,
            data_dir=args.data_dir,
            progress=True,
        )
        wall = time.perf_counter() - t0
        label = next(iter(tables.values()))["data_label"].iloc[0]
        per_model = []
        for study in STUDIES[:3]:
            for path in (out / "cifar10" / "cache" / f"{study}-{args.profile}").glob("*.json"):
                entry = json.loads(path.read_text())
                seconds = entry["batch_wall_seconds"]  # one model per batch on CIFAR-10
                images = entry["batch_epochs_run"] * entry["batch_training_examples"]
                per_model.append(
                    {"method": entry["config"]["method"], "seconds": seconds, "images_per_s": images / seconds}
                )
    speed = pd.DataFrame(per_model).groupby("method").mean()
    acc = pd.concat(tables.values()).groupby("method")["classifier_accuracy"].mean()
    summary = speed.join(acc).rename(
        columns={
            "seconds": "s per model",
            "images_per_s": "train images/s",
            "classifier_accuracy": "classifier accuracy",
        }
    )
    print(f"CIFAR-10, profile {args.profile}, device {args.device}, seeds {args.seeds}; data: {label}")
    print(summary.round(3).to_string())
    models = sum(t["config_key"].nunique() for t in tables.values())
    print(f"all three studies: {models} models in {wall:.1f} s")


if __name__ == "__main__":
    main()
