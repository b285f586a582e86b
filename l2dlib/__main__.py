"""Command line: ``python -m l2dlib run STUDY [options]`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys

import torch

from . import METHODS
from .data import DATASETS
from .experiments import DEFAULT_PROFILE, PROFILES, STUDIES, run_studies
from .results import table_paths


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (the help text says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m l2dlib",
        description="Calibration of multi-expert learning to defer: run the paper's studies.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run one study (or all) and write its result table",
        description=(
            "Train every configuration of a study (reusing finished ones from the cache), "
            "evaluate on the test split and write RESULTS_DIR/DATASET/STUDY-PROFILE.csv with "
            "its provenance (.json) beside it. Interrupt with Ctrl-C at any time: the same "
            "command resumes, reusing every configuration that finished."
        ),
        formatter_class=_HelpFormatter,
    )
    run.add_argument("study", choices=(*STUDIES, "all"),
                     help="which study: increasing_experts (J = 1..8 oracles), expert_dependence "
                          "(one random expert beside three of quality p), specialized_experts "
                          "(expert j an oracle on classes 2j, 2j+1), or all of them")
    run.add_argument("--dataset", choices=DATASETS, default="mog",
                     help="mog: the 2-D mixture of Gaussians; cifar10: CIFAR-10")
    run.add_argument("--profile", choices=PROFILES,
                     help="smoke: tiny, for tests (CIFAR-10: synthetic images, CPU); quick: MoG "
                          "full data, 3 seeds (the book on a laptop); paper: the figures' setting "
                          "(MoG 5 seeds; CIFAR-10 a fast ResNet on a GPU, 3 seeds); faithful: the "
                          "paper's own architecture and schedule (CIFAR-10 WideResNet-28-4). "
                          "default: quick for mog, paper for cifar10")
    run.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                     help="study seeds (default: the profile's)")
    run.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                     help="surrogate parameterizations to compare")
    run.add_argument("--num-experts", type=int, nargs="+", metavar="J",
                     help="numbers of experts for increasing_experts / specialized_experts "
                          "(default: 1..8 / 1..K/2, i.e. 1..5 on CIFAR-10, 1..2 on MoG)")
    run.add_argument("--expert-p", type=float, nargs="+", metavar="P",
                     help="expert_dependence: correctness probabilities of the three non-random "
                          "experts (default: 0.2 0.4 0.6 0.8 0.95)")
    run.add_argument("--results-dir", default="results",
                     help="where result tables, provenance and the cache go")
    run.add_argument("--data-dir", metavar="DIR",
                     help="CIFAR-10 folder holding cifar-10-batches-py/ (default: $L2D_DATA_DIR, else "
                          "./data); downloaded there when missing and the network allows")
    run.add_argument("--force", action="store_true",
                     help="recompute every configuration even if cached")
    run.add_argument("--device", choices=("cpu", "cuda"),
                     help="where to train (default: cpu for mog, cuda for cifar10 when a GPU is "
                          "visible, else cpu)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    studies = (args.study,)
    if args.study == "all":  # the paper runs the specialised experts on CIFAR-10 only
        studies = STUDIES if args.dataset == "cifar10" else STUDIES[:2]
    profile = args.profile or DEFAULT_PROFILE[args.dataset]
    device = args.device or ("cuda" if args.dataset == "cifar10" and torch.cuda.is_available() else "cpu")
    try:
        tables = run_studies(
            studies, args.dataset, profile, seeds=args.seeds, methods=args.methods,
            num_experts=args.num_experts, expert_ps=args.expert_p,
            results_dir=args.results_dir, force=args.force, device=device,
            data_dir=args.data_dir, progress=not args.quiet,
        )
        for study, table in tables.items():
            print(f"{study}: {len(table)} rows -> {table_paths(args.results_dir, args.dataset, study, profile)[0]}")
            print(table.groupby("method")[["ece", "system_accuracy"]].mean().round(4).to_string())
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished configurations are cached; run the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
