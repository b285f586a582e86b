"""Command line: ``python -m l2dlib run STUDY [options]`` (see ``--help``).

One concern over 350 lines: the command line, most of it the options and their help.
"""

from __future__ import annotations

import signal

if __name__ == "__main__":
    # Start-up (torch imports for a second or two) runs with Ctrl-C and SIGTERM blocked: one
    # arriving meanwhile waits and is raised once main() handles them (unblocked earlier,
    # torch swallowed some and printed a traceback for others). See _signals().
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

from . import METHODS
from .config import ClusterOptions
from .data import DATASETS
from .profiles import DEFAULT_PROFILE, PROFILES
from .results import table_paths
from .runner import EXECUTORS, run_studies
from .studies import AXES, STUDIES


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (the help text says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _number(kind: type, test, expected: str):
    """An argparse type whose error names what is expected (argparse adds the option)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


def _path(text: str) -> Path:
    return Path(text).expanduser()  # also for --results-dir=~/x, which no shell expands


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
            "Train every configuration of a study (reusing finished ones from the cache and the "
            "table), evaluate on the test split and write RESULTS_DIR/DATASET/STUDY-PROFILE.csv "
            "with its provenance (.json) beside it; the table keeps every configuration it held. "
            "Interrupt with Ctrl-C at any time: the same command resumes."
        ),
        formatter_class=_HelpFormatter,
    )
    run.add_argument(
        "study",
        choices=(*STUDIES, "all"),
        help="which study: " + ", ".join(f"{s} ({a.summary})" for s, a in AXES.items()) + ", or all of them",
    )
    run.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mog",
        help="mog: the 2-D mixture of Gaussians; cifar10: CIFAR-10; cifar10h, cifar10n: CIFAR-10 with "
        "real annotators as the experts (CIFAR-10H on the test images, CIFAR-10N on the training images)",
    )
    run.add_argument(
        "--profile",
        choices=PROFILES,
        help="smoke: tiny, for tests (CIFAR-10: synthetic images, CPU); quick: MoG "
        "full data, 3 seeds (the book on a laptop); paper: the figures' setting "
        "(MoG 5 seeds; CIFAR-10 a fast ResNet on a GPU, 3 seeds); faithful: the "
        "paper's own architecture and schedule (CIFAR-10 WideResNet-28-4). "
        f"default: {', '.join(f'{p} for {d}' for d, p in DEFAULT_PROFILE.items())}",
    )
    run.add_argument(
        "--seeds",
        type=_number(int, lambda v: v >= 0, "a non-negative integer"),
        nargs="+",
        metavar="SEED",
        help="study seeds (default: the profile's)",
    )
    run.add_argument(
        "--data-seeds",
        type=_number(int, lambda v: v >= 0, "a non-negative integer"),
        nargs="+",
        metavar="SEED",
        help="MoG: draws of our data generator (default: the profile's; quick and paper use the paper's data, "
        "draws uses 0..9)",
    )
    run.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="surrogate parameterizations to compare"
    )
    run.add_argument(
        "--num-experts",
        type=_number(int, lambda v: v >= 1, "an integer >= 1"),
        nargs="+",
        metavar="J",
        help="numbers of experts for increasing_experts / specialized_experts "
        "(default: 1..8 / 1..K/2, i.e. 1..5 on CIFAR-10, 1..2 on MoG)",
    )
    run.add_argument(
        "--expert-p",
        type=_number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
        nargs="+",
        metavar="P",
        help="expert_dependence: correctness probabilities of the three non-random "
        "experts (default: 0.2 0.4 0.6 0.8 0.95)",
    )
    run.add_argument(
        "--epochs",
        dest="max_epochs",
        type=_number(int, lambda v: v >= 1, "an integer >= 1"),
        help="most epochs of training (default: the profile's; enters the cache key)",
    )
    run.add_argument(
        "--lr", type=_number(float, lambda v: v > 0, "a number > 0"), help="learning rate (default: the profile's)"
    )
    run.add_argument(
        "--patience",
        type=_number(int, lambda v: v >= 1, "an integer >= 1"),
        help="epochs without a better validation loss before a model stops (default: the profile's)",
    )
    run.add_argument(
        "--results-dir",
        type=_path,
        help="where result tables, provenance and the cache go (default: $L2D_RESULTS_DIR, else the "
        "repository's results/)",
    )
    run.add_argument(
        "--data-dir",
        type=_path,
        metavar="DIR",
        help="CIFAR-10 folder holding cifar-10-batches-py/ (default: $L2D_DATA_DIR, else "
        "./data); downloaded there when missing and the network allows",
    )
    run_help = {a.option_strings[0]: a.help for a in run._actions if a.option_strings}
    run.add_argument("--force", action="store_true", help="recompute the chosen configurations even if cached")
    run.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where to train (default: cpu for MoG; for the CIFAR-10 GPU profiles cuda, "
        "refused without a GPU unless --device cpu is given)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    slurm = run.add_argument_group(
        "on a cluster",
        "--executor slurm submits one job per configuration batch through submitit; RESULTS_DIR (and "
        "DATA_DIR) must be on a filesystem the nodes share. A rerun submits only what is missing.",
    )
    slurm.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: this machine; slurm: SLURM jobs; submitit_local: the SLURM path in local subprocesses (tests)",
    )
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    count = _number(int, lambda v: v >= 0, "a non-negative integer")
    slurm.add_argument("--gpus-per-job", type=count, help="default: 1 for the CIFAR-10 GPU profiles, else 0")
    slurm.add_argument(
        "--cpus-per-job",
        type=count,
        help=f"default: {ClusterOptions.CPUS_WITH_GPU} with a GPU, else {ClusterOptions.CPUS_WITHOUT_GPU}",
    )
    slurm.add_argument("--mem-gb", type=count, default=ClusterOptions.mem_gb, help="memory per job")
    slurm.add_argument("--time-min", type=count, default=ClusterOptions.time_min, help="time limit per job, minutes")
    slurm.add_argument(
        "--array-parallelism", type=count, default=ClusterOptions.array_parallelism, help="jobs running at once"
    )
    slurm.add_argument(
        "--sbatch", action="append", metavar="OPTION", help="an extra sbatch option, repeatable: --sbatch=--qos=high"
    )
    slurm.add_argument(
        "--cancel-on-interrupt", action="store_true", help="Ctrl-C cancels the jobs (default: they keep running)"
    )

    feats = sub.add_parser(
        "features",
        help="CIFAR-10 on a CPU: train the feature extractor once and cache the features",
        description=(
            "The one-time part of the CIFAR-10 CPU profile: train its CNN on the train split "
            "(skipped where RESULTS_DIR/cifar10/extractor-KEY.pt already holds it) and cache "
            "the features of every split; print the extractor's accuracy and training time."
        ),
        formatter_class=_HelpFormatter,
    )
    feats.add_argument(
        "--profile", choices=("frozen_features",), default="frozen_features", help="a profile with an extractor"
    )
    feats.add_argument("--results-dir", type=_path, help=run_help["--results-dir"])
    feats.add_argument("--data-dir", type=_path, metavar="DIR", help=run_help["--data-dir"])
    feats.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finished batches are cached, workers stopped."""


def _on_sigterm(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _signals():
    """Ctrl-C raises KeyboardInterrupt and SIGTERM :class:`Terminated` inside, whatever the
    process inherited. A background job of a non-interactive shell (``cmd &``, nohup, some
    schedulers) inherits SIGINT ignored, so that a terminal's Ctrl-C misses it; a SIGINT that
    still reaches this run was sent to it on purpose, so it stops the run like Ctrl-C.
    Signals blocked during start-up are delivered on entry, inside the caller's handling."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _interrupted(err: KeyboardInterrupt) -> int:
    what = "terminated" if isinstance(err, Terminated) else "interrupted"
    print(f"{what}: the tables hold every finished configuration; run the same command to resume", file=sys.stderr)
    return 143 if isinstance(err, Terminated) else 130


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def _features(args: argparse.Namespace) -> None:
    from .data.cifar10 import load_cifar10
    from .features import extractor_summary, feature_dataset, features_path, weights_path
    from .files import check_writable
    from .profiles import get_profile
    from .results import resolve_dir

    cfg = get_profile("cifar10", args.profile).extractor
    images = load_cifar10(args.data_dir)
    folder = resolve_dir(args.results_dir) / "cifar10"
    check_writable(folder / "cache")  # before a training of the better part of an hour
    data = feature_dataset(images, cfg, folder, progress=not args.quiet)
    summary = extractor_summary(folder, cfg, images)
    print(f"{images.label}: {data.x['train'].shape[1]} features per image")
    print(f"weights  {weights_path(folder, cfg, images)}")
    print(f"features {features_path(folder, cfg, images)}")
    print(
        f"extractor test accuracy {summary['test_accuracy']:.4f}; trained in "
        f"{summary['train_seconds'] / 60:.1f} min on {summary['threads']} threads"
    )


# The cluster options' defaults on the command line (None: ClusterOptions decides).
_CLUSTER_DEFAULTS = {
    "partition": None,
    "gpus_per_job": None,
    "cpus_per_job": None,
    **{k: getattr(ClusterOptions, k) for k in ("mem_gb", "time_min", "array_parallelism", "cancel_on_interrupt")},
    "sbatch": None,
}


def _cluster_options(args: argparse.Namespace):
    if args.executor == "local":
        given = [f"--{k.replace('_', '-')}" for k, v in _CLUSTER_DEFAULTS.items() if getattr(args, k) != v]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --executor slurm only")
        return None

    options = {name: getattr(args, name) for name in _CLUSTER_DEFAULTS}  # option name = field name
    return ClusterOptions(**options | {"sbatch": tuple(options["sbatch"] or ())})


def main(argv: list[str] | None = None) -> int:
    try:
        with _signals():
            return _main(argv)
    except KeyboardInterrupt as err:  # one that came before _main's own handling
        return _interrupted(err)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "features":
        show = warnings.showwarning
        warnings.showwarning = _one_line_warning
        try:
            _features(args)
        except (ValueError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as err:
            what = "terminated" if isinstance(err, Terminated) else "interrupted"
            print(f"{what}: nothing of the unfinished extractor or features was written", file=sys.stderr)
            return 143 if isinstance(err, Terminated) else 130
        finally:
            warnings.showwarning = show
        return 0
    studies = (args.study,)
    if args.study == "all":  # the paper's studies: the specialised experts on CIFAR-10 only
        studies = STUDIES[:2] if args.dataset == "mog" else STUDIES[:3]
        if args.dataset == "cifar10n":
            studies += ("shifted_crowd",)
    profile = args.profile or DEFAULT_PROFILE[args.dataset]
    show = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        tables = run_studies(
            studies,
            args.dataset,
            profile,
            seeds=args.seeds,
            methods=args.methods,
            num_experts=args.num_experts,
            expert_ps=args.expert_p,
            data_seeds=args.data_seeds,
            max_epochs=args.max_epochs,
            lr=args.lr,
            patience=args.patience,
            results_dir=args.results_dir,
            force=args.force,
            device=args.device,
            data_dir=args.data_dir,
            progress=not args.quiet,
            executor=args.executor,
            cluster_options=_cluster_options(args),
        )
        for study, table in tables.items():
            path = table_paths(args.results_dir, args.dataset, study, profile)[0]
            print(f"{study}: {len(table)} rows of this run -> {path}")
            print(table.groupby("method", sort=False)[["ece", "system_accuracy"]].mean().round(4).to_string())
    except (ValueError, OSError) as err:  # FileNotFoundError is an OSError
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from .cluster import JobsFailed

        if not isinstance(err, JobsFailed):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        return _interrupted(err)
    finally:
        warnings.showwarning = show
    return 0


if __name__ == "__main__":
    sys.exit(main())
