"""Profiles: everything a run fixes for one dataset besides the study grid (data size,
model, schedule, seeds, how many models train at once), and where it trains.

| profile | MoG | CIFAR-10 |
| --- | --- | --- |
| smoke | 256 points per split, 3 epochs (tests) | synthetic images, a tiny net, 1 epoch (tests) |
| quick | the paper's data, our schedule, 3 seeds (``make book PROFILE=quick``: live) | - |
| frozen_features | - | a CNN trained once on 60% of the train split, an MLP head per configuration on the rest |
| cpu_end_to_end | - | that CNN's last group and a new head trained per configuration with the L2D loss (CPU) |
| paper | the paper's data, our schedule, 5 seeds (committed; the default) | fast ResNet, 3 seeds, GPU |
| draws | 10 draws of our generator, our schedule, 3 seeds each | - |
| faithful | the paper's data, the authors' schedule (raw inputs, 200 epochs) | WideResNet-28-4, GPU |

The human-expert datasets cifar10h and cifar10n have ``frozen_features`` (the CIFAR-10
profile's, with real annotators as experts) and ``smoke``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import replace

import torch

from .config import ExtractorConfig, Profile, TrainConfig
from .data import DATASETS

PROFILES = ("smoke", "quick", "frozen_features", "cpu_end_to_end", "paper", "draws", "faithful")
# The default everywhere (CLI, run_studies, pages, the book): MoG's committed tables, so a
# first command reuses them and trains nothing.
DEFAULT_PROFILE = {"mog": "paper", "cifar10": "paper", "cifar10h": "frozen_features", "cifar10n": "frozen_features"}


# lr 0.05: at 0.1, 8 of 195 paper-profile models lost most ReLUs in the first epochs and
# kept a weak epoch-1-2 state; at 0.05 none of 195 did (measured; docs/decisions.md).
_MOG_TRAIN = TrainConfig(
    max_epochs=50, batch_size=256, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, patience=20
)
_CIFAR = dict(dataset="cifar10", augment=True, max_models_per_batch=1, cpu_workers=1)
_TABLE = {
    ("mog", "smoke"): Profile(
        "smoke", "mog", (0,), replace(_MOG_TRAIN, max_epochs=3, batch_size=64), points=256, cpu_workers=1
    ),
    ("mog", "quick"): Profile("quick", "mog", (0, 1, 2), _MOG_TRAIN),
    ("mog", "paper"): Profile("paper", "mog", (0, 1, 2, 3, 4), _MOG_TRAIN),
    # Robustness: the same schedule on 10 draws of our generator (they vary widely).
    ("mog", "draws"): Profile("draws", "mog", (0, 1, 2), _MOG_TRAIN, data_seeds=tuple(range(10))),
    # The authors' MoG script: raw inputs; batch 1024; SGD lr 0.001, Nesterov 0.9, weight
    # decay 5e-4 on a loss in log base 2, i.e. lr 0.001 / ln 2 and weight decay 5e-4 ln 2 on
    # our loss in nats (the same steps); cosine over 200 epochs; early exit after 50 epochs
    # without a better validation loss (the paper says 20).
    ("mog", "faithful"): Profile(
        "faithful",
        "mog",
        (0, 1, 2, 3, 4),
        TrainConfig(
            max_epochs=200,
            batch_size=1024,
            lr=0.001 / math.log(2),
            momentum=0.9,
            nesterov=True,
            weight_decay=5e-4 * math.log(2),
            patience=50,
        ),
        standardize=False,
    ),
    # A tiny net on a few hundred synthetic images, one epoch: exercises the CIFAR path on a CPU.
    ("cifar10", "smoke"): Profile(
        "smoke",
        seeds=(0,),
        model="fast_resnet",
        model_options=(("widths", (8, 16, 16)),),
        description="tiny CNN on synthetic images",
        synthetic=True,
        train=TrainConfig(max_epochs=1, batch_size=64, lr=0.05, eval_batch_size=512),
        **_CIFAR,
    ),
    # CIFAR-10 on a laptop: the CNN of ExtractorConfig trained once with cross-entropy on 60%
    # of the train split (30 min on 2 cores, test accuracy 0.8685, weights committed), then
    # per configuration an L2D head (one hidden layer of 128 ReLUs) on the standardised
    # 128-dimensional features of the other 40%, many heads at once as for MoG. lr 0.01: the
    # heads peak at epoch 32-38 of 50; at 0.05 at 4-16, no better calibrated (docs/decisions.md).
    ("cifar10", "frozen_features"): Profile(
        "frozen_features",
        "cifar10",
        (0, 1, 2),
        replace(_MOG_TRAIN, lr=0.01),
        model_options=(("hidden", (128,)),),
        extractor=ExtractorConfig(),
        description="frozen CNN features of held-out images + MLP L2D head (CPU)",
    ),
    # CIFAR-10 trained end to end on a laptop, as far as 2 cores allow: the extractor's stem
    # and first two groups stay frozen (their outputs computed once), and per configuration
    # its last group (conv 64->128, pool, two residual convs at 4x4; 0.37 M weights) is
    # trained again with the L2D loss together with a new head, on the same 18,000 held-out
    # training images as the heads, with early stopping on validation. No augmentation (a
    # flip or crop of the image is not an operation on the frozen body's output). One model per
    # single-threaded worker: stacking 4 with grouped convolutions was no faster (measured).
    # The grid (84 models: 4 methods, J = 1, 2, 4, 8 and p = 0.2, 0.6, 0.95, 3 seeds) took
    # 79 minutes on 2 cores (benchmarks/README.md).
    ("cifar10", "cpu_end_to_end"): Profile(
        "cpu_end_to_end",
        "cifar10",
        (0, 1, 2),
        TrainConfig(max_epochs=12, batch_size=256, lr=0.01, weight_decay=5e-4, patience=4, eval_batch_size=1000),
        model="fast_tail",
        extractor=ExtractorConfig(),
        max_models_per_batch=1,
        num_experts=(1, 2, 4, 8),
        expert_ps=(0.2, 0.6, 0.95),
        description="the CNN's last group and an L2D head trained per configuration on its frozen body (CPU)",
    ),
    # The fast residual net on the full data, on a GPU (bf16 autocast). Not yet run on a GPU:
    # the schedule is the conventional one for ResNet-9-like nets and may need tuning.
    ("cifar10", "paper"): Profile(
        "paper",
        seeds=(0, 1, 2),
        model="fast_resnet",
        description="fast ResNet per configuration (GPU)",
        needs_gpu=True,
        train=TrainConfig(
            max_epochs=30, batch_size=512, lr=0.2, weight_decay=5e-4, patience=20, eval_batch_size=2000, amp=True
        ),
        **_CIFAR,
    ),
    # The paper's WideResNet-28-4 with the authors' defaults: batch 1024, Nesterov SGD lr 0.1,
    # weight decay 5e-4, cosine over 100 epochs, early stopping look-ahead 20.
    ("cifar10", "faithful"): Profile(
        "faithful",
        seeds=(0, 1, 2),
        model="wide_resnet",
        model_options=(("depth", 28), ("widen", 4)),
        description="WideResNet-28-4 per configuration (GPU)",
        needs_gpu=True,
        train=TrainConfig(
            max_epochs=100, batch_size=1024, lr=0.1, weight_decay=5e-4, patience=20, eval_batch_size=2000, amp=True
        ),
        **_CIFAR,
    ),
}


# The human-expert datasets (l2dlib.data.crowds): the CPU profile's features and heads, with
# real annotators as the experts; smoke: synthetic images and annotators, a tiny extractor.
_FEATURES = _TABLE[("cifar10", "frozen_features")]
for _name, _who in (("cifar10h", "CIFAR-10H annotators"), ("cifar10n", "CIFAR-10N workers")):
    _TABLE[(_name, "frozen_features")] = replace(
        _FEATURES, dataset=_name, description=f"frozen CNN features of held-out images + MLP L2D head (CPU), {_who}"
    )
    _TABLE[(_name, "smoke")] = replace(
        _FEATURES,
        name="smoke",
        dataset=_name,
        seeds=(0,),
        synthetic=True,
        extractor=ExtractorConfig(widths=(8, 16, 16), epochs=1, batch_size=64),
        train=replace(_FEATURES.train, max_epochs=3, batch_size=64),
        cpu_workers=1,  # a few hundred points: worker processes would cost more than they save
        description="synthetic images and annotators, a tiny extractor",
    )


@contextlib.contextmanager
def registered(*profiles: Profile) -> Iterator[None]:
    """Inside, each of ``profiles`` replaces the profile of its (dataset, name), or is added:
    other settings under a known name, e.g. a smaller ``paper`` in a test."""
    before = dict(_TABLE)
    _TABLE.update({(p.dataset, p.name): p for p in profiles})
    try:
        yield
    finally:
        _TABLE.clear()
        _TABLE.update(before)


def check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(choices)}")


def profiles_of(dataset: str) -> tuple[str, ...]:
    """The profiles defined for ``dataset``, in :data:`PROFILES` order."""
    check_choice("dataset", dataset, DATASETS)
    return tuple(p for p in PROFILES if (dataset, p) in _TABLE)


def get_profile(dataset: str, profile: str) -> Profile:
    """The :class:`Profile` named ``profile`` for ``dataset``; a clear error where none is."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("profile", profile, PROFILES)
    try:
        return _TABLE[(dataset, profile)]
    except KeyError:
        raise ValueError(
            f"profile {profile!r} is not defined for dataset {dataset!r} (it has: {', '.join(profiles_of(dataset))})"
        ) from None


def profile_for(dataset: str, profile: str | Profile | None = None) -> Profile:
    """``profile`` itself (a :class:`Profile`), the profile of that name for ``dataset``, or
    (None) the dataset's :data:`DEFAULT_PROFILE`; a clear error where none is."""
    if isinstance(profile, Profile):
        return profile
    return get_profile(dataset, DEFAULT_PROFILE.get(dataset, "") if profile is None else profile)


def resolve_device(device: str | None, profile: Profile) -> torch.device:
    """Where ``profile`` trains: ``device`` ('cpu' or 'cuda'), or by default the GPU when one
    is visible and the profile needs one, else the CPU. A GPU profile on a machine without
    a GPU is refused unless 'cpu' is asked for explicitly (it would run for hours)."""
    if device is None:
        if profile.needs_gpu and not torch.cuda.is_available():
            raise ValueError(
                f"profile {profile.name!r} on {profile.dataset} trains a CNN per configuration "
                "and needs a GPU, and torch sees none: pass device 'cpu' (--device cpu) to run "
                "it on the CPU anyway (hours), or use profile 'smoke'"
            )
        device = "cuda" if profile.needs_gpu else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU: use device 'cpu' (--device cpu)")
    return torch.device(device)
