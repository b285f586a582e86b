"""Configuration: the frozen dataclasses a run is made of, each default stated once.

:class:`TrainConfig` (the training loop), :class:`ExtractorConfig` (the CPU profile's
one-time CNN), :class:`Profile` (everything a run fixes for one dataset besides the study
grid; the profiles themselves are in :mod:`l2dlib.profiles`) and :class:`ClusterOptions`
(what each SLURM job asks for). Nothing here imports training code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    patience: int = 20  # early-stopping look-ahead, epochs (the paper's 20)
    eval_batch_size: int = 8192
    amp: bool = False  # bf16 autocast for the forward pass on CUDA (losses stay float32)
    # False: keep the state after the last epoch (the training_budget study); True: the
    # state of the best validation loss (with early stopping, the paper's rule).
    restore_best: bool = True

    def __post_init__(self) -> None:
        for name in ("max_epochs", "batch_size", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"expected lr > 0, got {self.lr}")
        if not self.restore_best and self.patience < self.max_epochs:
            raise ValueError(
                "restore_best=False keeps the last state, so early stopping must be off: "
                f"patience ({self.patience}) >= max_epochs ({self.max_epochs})"
            )


FEATURES_VERSION = 2  # bump when the training or extraction code changes its output


@dataclass(frozen=True)
class ExtractorConfig:
    """The one-time CNN: :class:`~l2dlib.models.FastResNet` of ``widths``, trained with
    cross-entropy, random crops and flips, SGD (Nesterov) with a linear warm-up over the
    first ``warmup`` share of the steps and a linear decay to 0; no label smoothing.

    It trains on a seeded ``fit_fraction`` of the train split only; the L2D heads train on
    the rest, so the features they learn from are of images the extractor has not seen, as
    the validation and test features are. A feature is the mean of an image's and its
    mirror image's embedding."""

    widths: tuple[int, int, int] = (32, 64, 128)
    epochs: int = 30
    batch_size: int = 256
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: float = 0.15
    seed: int = 0
    fit_fraction: float = 0.6

    def __post_init__(self) -> None:
        if not 0 < self.fit_fraction < 1:
            raise ValueError(
                "expected 0 < fit_fraction < 1 (the heads train on the rest of the train split), "
                f"got {self.fit_fraction}"
            )

    def key(self, data_fingerprint: str) -> str:
        """16 hex digits of these settings, the image data and :data:`FEATURES_VERSION`."""
        blob = json.dumps(
            {"settings": asdict(self), "data": data_fingerprint, "version": FEATURES_VERSION}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Profile:
    """Everything a profile fixes for one dataset."""

    name: str
    dataset: str
    seeds: tuple[int, ...]
    train: TrainConfig
    points: int = 20_000  # MoG: points per split (train, validation and test are separate draws)
    standardize: bool = True  # MoG: inputs scaled by the training split's mean and std
    data_seeds: tuple[int, ...] | None = None  # MoG: draws of our generator; None: the paper's data
    # mlp (MoG nets and L2D heads on features) | fast_resnet | wide_resnet | fast_tail (the
    # extractor's last group and a head, on its frozen body's outputs)
    model: str = "mlp"
    model_options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of the model
    synthetic: bool = False  # CIFAR-10 smoke: synthetic CIFAR-shaped images instead of the data
    augment: bool = False  # random crop (4-pixel padding) and horizontal flip, on the device
    # Models trained at once (MoG stacks models of equal J); each batch is cached when it
    # finishes, so an interrupted run keeps every finished batch. 32 trains as fast as 65.
    max_models_per_batch: int = 32
    # CPU worker processes, one thread each. Tiny models are memory-bound and use a second
    # core poorly from one process: two single-threaded workers train about 1.4x more
    # models per second than one process with two threads (measured on 2 cores).
    cpu_workers: int = 2
    # CIFAR-10 on a CPU: the images become the frozen features of this CNN, trained once.
    extractor: ExtractorConfig | None = None
    # The grid a run of this profile covers unless told otherwise (None: the studies' own J
    # and p; num_experts applies to increasing_experts): a profile too slow for the full grid
    # says what it fits.
    num_experts: tuple[int, ...] | None = None
    expert_ps: tuple[float, ...] | None = None
    # What the model is, for panel titles and captions.
    description: str = ""
    # Whether a CPU run is a mistake: the CIFAR-10 networks train for hours without a GPU.
    needs_gpu: bool = False


@dataclass(frozen=True)
class ClusterOptions:
    """What each SLURM job asks for. None: a default by profile (a GPU per job for the
    CIFAR-10 GPU profiles, none otherwise; CPUs: :meth:`cpus`)."""

    # A GPU job's data loading and augmentation use a few cores; MoG stacks and feature
    # heads train on one thread (bit-identity), so a job without a GPU needs one CPU.
    CPUS_WITH_GPU: ClassVar[int] = 8
    CPUS_WITHOUT_GPU: ClassVar[int] = 1

    partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: int = 16
    time_min: int = 120
    array_parallelism: int = 64  # jobs of one submission running at once
    sbatch: tuple[str, ...] = ()  # extra sbatch options, e.g. ("--account=abc", "--qos=high")
    cancel_on_interrupt: bool = False
    poll_seconds: float = 5.0

    def cpus(self, gpus: int) -> int:
        """CPUs per job: ``cpus_per_job``, else the default for a job with ``gpus`` GPUs."""
        if self.cpus_per_job is not None:
            return self.cpus_per_job
        return self.CPUS_WITH_GPU if gpus else self.CPUS_WITHOUT_GPU
