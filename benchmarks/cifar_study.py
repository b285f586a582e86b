"""CIFAR-10: per profile and method, the L2D model's classifier accuracy on the test split,
training examples per second, seconds per model, and the wall time of each study.

    python benchmarks/cifar_study.py --profile frozen_features --seeds 0 1 2   # CPU, the data in ./data
    python benchmarks/cifar_study.py --profile paper --device cuda --data-dir DIR [--seeds 0]
    python benchmarks/cifar_study.py --profile smoke      # synthetic data on a CPU

It runs the three studies one after the other (the given methods and seeds) from a cold
results folder through the same code as the CLI and reads the numbers back from the result
tables. A profile with a feature extractor reuses the extractor and features of the
repository's results/ (``python -m l2dlib features`` makes them once; its time and accuracy
are printed here too): the studies' times are those of the per-configuration part.
Examples per second count training examples (epochs run x training-split size x models in
the batch) over the batch's wall time (training and its test-split evaluation).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from l2dlib import METHODS
from l2dlib.profiles import get_profile
from l2dlib.results import resolve_dir
from l2dlib.runner import run_studies
from l2dlib.studies import STUDIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--results-dir", help="keep the results here instead of a temporary folder")
    args = parser.parse_args()

    prof = get_profile("cifar10", args.profile)  # fail early on a bad profile
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.results_dir or tmp)
        if prof.extractor is not None:  # the one-time part, made by `python -m l2dlib features`
            source = resolve_dir(None) / "cifar10"
            for path in [*source.glob("extractor-*.pt"), *(source / "cache").glob("features-*.pt")]:
                target = out / "cifar10" / path.relative_to(source)
                if target.resolve() != path.resolve():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
        tables, walls = {}, {}
        for study in STUDIES[:3]:
            t0 = time.perf_counter()
            tables |= run_studies(
                [study],
                "cifar10",
                prof,
                seeds=args.seeds,
                methods=args.methods,
                results_dir=out,
                device=args.device,
                data_dir=args.data_dir,
                progress=True,
            )
            walls[study] = time.perf_counter() - t0
        label = next(iter(tables.values()))["data_label"].iloc[0]
        per_batch = []
        for study in STUDIES[:3]:
            for path in (out / "cifar10" / "cache" / f"{study}-{args.profile}").glob("*.json"):
                entry = json.loads(path.read_text())
                models, seconds = entry["batch_size_models"], entry["batch_wall_seconds"]
                examples = entry["batch_epochs_run"] * entry["batch_training_examples"] * models
                per_batch.append(
                    {
                        "method": entry["config"]["method"],
                        "seconds": seconds / models,  # each model of a stack bears its share
                        "examples_per_s": examples / seconds,
                    }
                )
        extractor = None
        if prof.extractor is not None:  # read before the temporary folder goes
            from l2dlib.data.cifar10 import load_cifar10
            from l2dlib.features import extractor_summary

            extractor = extractor_summary(out / "cifar10", prof.extractor, load_cifar10(args.data_dir))
    speed = pd.DataFrame(per_batch).groupby("method").mean()
    acc = pd.concat(tables.values()).groupby("method")["classifier_accuracy"].mean()
    summary = speed.join(acc).rename(
        columns={
            "seconds": "s per model",
            "examples_per_s": "train examples/s",
            "classifier_accuracy": "classifier accuracy",
        }
    )
    print(f"CIFAR-10, profile {args.profile}, device {args.device}, seeds {args.seeds}; data: {label}")
    if extractor:
        summary_of = extractor
        print(
            f"one-time part: extractor test accuracy {summary_of['test_accuracy']:.4f}, trained in "
            f"{summary_of['train_seconds'] / 60:.1f} min on {summary_of['threads']} threads"
        )
    print(summary.round(3).to_string())
    for study, wall in walls.items():
        models = tables[study]["config_key"].nunique()
        print(f"{study}: {models} models in {wall:.1f} s ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
