"""The paper's three studies: their axes, their experts and their grids of configurations.

One configuration (:class:`RunConfig`) is one trained model: (method, seed, number of
experts or expert quality). Experts (see the book's introduction):

- increasing_experts: J = 1..8 identical oracles on the "expert region" (MoG clusters
  {2, 3}, CIFAR-10 classes 0-4), uniformly random elsewhere.
- expert_dependence: J = 4; expert 0 random everywhere, experts 1-3 right with
  probability p on the region (else a uniform guess), random elsewhere.
- specialized_experts: expert j is an oracle on classes {2j, 2j+1}; J = 1..K/2.
- authors_experts (MoG, beyond the paper's figures): J = 1..8 copies of the expert of the
  authors' MoG script, right with probability 0.7 on labels {1, 2} and 0.2 elsewhere.
- with human experts (datasets cifar10h and cifar10n, see :mod:`l2dlib.data.crowds`):
  increasing_experts has J crowd members (CIFAR-10H), or the J = 1..3 recorded workers
  (CIFAR-10N); expert_dependence a plain crowd member beside three whose labels are the
  true one with probability p and a crowd member's otherwise; specialized_experts crowd
  members on classes {2j, 2j+1}, guessing uniformly elsewhere. shifted_crowd (cifar10n):
  the J = 1..3 workers in training, judged against CIFAR-10H annotators on the test images.
- training_budget (beyond the paper): how far training ends from the optimum. Each
  configuration trains for exactly its number of epochs at its learning rate (cosine
  schedule, no early stopping, the last state kept), on a grid of budgets
  (:data:`BUDGETS`), with the increasing-experts oracles at J in
  :data:`BUDGET_NUM_EXPERTS` and the dependence study's experts at p = 0.95.

One concern over 350 lines: what a configuration is, with the checks of the grid's
parameters that the CLI and the notebooks share.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import METHODS
from .config import TrainConfig
from .data import HUMAN_DATASETS, cifar10, crowds, mog
from .experts import (
    Expert,
    authors_expert,
    crowd_member,
    oracle,
    probabilistic,
    random_expert,
    specialist,
    worker,
)
from .profiles import Profile, check_choice

STUDIES = (
    "increasing_experts",
    "expert_dependence",
    "specialized_experts",
    "authors_experts",
    "training_budget",
    "shifted_crowd",
)
NUM_CLASSES = {"mog": mog.NUM_CLASSES, "cifar10": cifar10.NUM_CLASSES} | dict.fromkeys(
    HUMAN_DATASETS, cifar10.NUM_CLASSES
)
CIFAR10N_WORKERS = 3  # recorded workers per image
EXPERT_REGION = {"mog": (2, 3), "cifar10": (0, 1, 2, 3, 4)}
DEFAULT_EXPERT_PS = (0.2, 0.4, 0.6, 0.8, 0.95)
DEPENDENCE_NUM_EXPERTS = 4
# training_budget: (epochs, learning rates) per dataset, from well under convergence to far
# past it, and from about the authors' MoG rate (0.001 on a loss in bits) to four times ours
# (at 0.1, 8 of 195 paper-profile models already lost most ReLUs); see docs/decisions.md.
BUDGETS = {
    "mog": ((1, 5, 20, 100), (0.001, 0.01, 0.05, 0.2)),
    "cifar10": ((3, 10, 50), (0.001, 0.01, 0.1)),
}
BUDGET_NUM_EXPERTS = (1, 2, 4, 8)
BUDGET_EXPERT_P = 0.95  # plus the dependence study's experts at the paper's largest p


@dataclass(frozen=True)
class Axis:
    """What a study varies, in one place for the runner, the CLI, the report and the plots."""

    column: str  # table column: num_experts | expert_p
    option: str  # run_studies keyword that sets it: num_experts | expert_ps
    flag: str  # the CLI option
    symbol: str  # J | p
    label: str  # axis label of the figures
    per: str  # unit of a slope along it
    expert_kind: str | None  # the experts whose ECE the study reads (None: mean over all; see stats.select_experts)
    summary: str  # one line for --help and the book


_J = Axis("num_experts", "num_experts", "--num-experts", "J", "number of experts", "expert", None, "")
AXES = {
    "increasing_experts": replace(_J, summary="J = 1..8 oracles on the expert region"),
    "expert_dependence": Axis(
        "expert_p",
        "expert_ps",
        "--expert-p",
        "p",
        "correctness probability p of the other experts",
        "unit of p",
        "fixed",  # expert 0 (l2dlib.stats.FIXED_EXPERT): the random expert, or a plain crowd member
        "one random expert beside three of quality p",
    ),
    "specialized_experts": replace(_J, summary="expert j an oracle on classes 2j, 2j+1"),
    "authors_experts": replace(_J, summary="J = 1..8 copies of the authors' MoG expert (MoG only)"),
    "training_budget": replace(_J, summary="oracles at J = 1, 2, 4, 8 on a grid of epochs and learning rates"),
    "shifted_crowd": replace(_J, summary="CIFAR-10N workers in training, CIFAR-10H annotators at test (cifar10n only)"),
}


#: The increasing-experts study's choice of expert on MoG, as the notebook's ``experts``
#: parameter names it -> the study (the CLI's name) that adds J such experts.
J_SWEEP_EXPERTS = {
    "oracle": "increasing_experts",  # the paper's: oracles on clusters 2, 3 (Figure 1 a, b)
    "authors": "authors_experts",  # the expert of the authors' MoG script
}


def j_sweep_study(experts: str) -> str:
    """The study that adds J experts of kind ``experts`` (:data:`J_SWEEP_EXPERTS`)."""
    check_choice("experts", experts if isinstance(experts, str) else repr(experts), J_SWEEP_EXPERTS)
    return J_SWEEP_EXPERTS[experts]


# Schedule settings a configuration may set for itself (the training_budget study does):
# None takes the profile's. The cache key hashes the schedule that results either way.
SCHEDULE = ("max_epochs", "lr", "patience")
# What identifies one model (with the expert, one table row), stated once: tables group,
# list and key their rows by these columns.
IDENTITY = ("study", "method", "seed", "num_experts", "expert_p", "data_seed", *SCHEDULE)


@dataclass(frozen=True)
class RunConfig:
    """One model of a study."""

    study: str
    dataset: str
    profile: str
    method: str
    seed: int
    num_experts: int
    expert_p: float | None
    experts: tuple[Expert, ...] = field(repr=False)
    data_seed: int | None = None  # MoG: a draw of our generator; None: the paper's data
    max_epochs: int | None = None  # SCHEDULE: None takes the profile's
    lr: float | None = None
    patience: int | None = None

    def train_config(self, profile: Profile) -> TrainConfig:
        """The profile's schedule with this configuration's own settings (:data:`SCHEDULE`);
        a training_budget model keeps its last state (it ends exactly at its budget)."""
        own = {k: getattr(self, k) for k in SCHEDULE if getattr(self, k) is not None}
        if self.study == "training_budget":
            own["restore_best"] = False
        return replace(profile.train, **own) if own else profile.train

    def as_dict(self, profile: Profile) -> dict[str, Any]:
        """Everything that determines this configuration's numbers (the cache key hashes it;
        the schedule as it results, so setting a profile's own value changes nothing)."""
        d = asdict(self)
        for k in SCHEDULE:
            d.pop(k)
        d["experts"] = [e.as_dict() for e in self.experts]
        train = asdict(self.train_config(profile))
        if not train.pop("restore_best"):  # added after results version 6: in the key only when False
            train["restore_best"] = False
        d["settings"] = {
            "train": train,
            "model": profile.model,
            "model_options": dict(profile.model_options),
            "augment": profile.augment,
        }
        if profile.extractor is not None:
            d["settings"]["extractor"] = asdict(profile.extractor)
        if self.dataset == "mog":
            d["settings"]["points_per_split"] = profile.points
            d["settings"]["standardize"] = profile.standardize
        else:
            d["settings"]["val_split"] = {
                "fraction": cifar10.VAL_FRACTION,
                "seed": cifar10.SPLIT_SEED,
                "synthetic": profile.synthetic,
            }
        if self.dataset in HUMAN_DATASETS:
            d["settings"]["human_split"] = {"fractions": crowds.FRACTIONS, "seed": crowds.SPLIT_SEED}
        return d

    @property
    def identity(self) -> tuple:
        """The values of :data:`IDENTITY`: which model this is (a table's row key, with the expert)."""
        return tuple(getattr(self, f) for f in IDENTITY)


def num_classes_of(dataset: str) -> int:
    check_choice("dataset", dataset, tuple(NUM_CLASSES))
    return NUM_CLASSES[dataset]


def study_experts(
    study: str, dataset: str, *, num_experts: int | None = None, expert_p: float | None = None
) -> tuple[Expert, ...]:
    """The experts of one configuration."""
    if dataset in HUMAN_DATASETS or study == "shifted_crowd":
        return human_experts(study, dataset, num_experts=num_experts, expert_p=expert_p)
    if study == "training_budget" and expert_p is not None:
        study = "expert_dependence"
    if study in ("increasing_experts", "training_budget"):
        return tuple(oracle(EXPERT_REGION[dataset]) for _ in range(num_experts))
    if study == "authors_experts":
        if dataset != "mog":
            raise ValueError(
                f"authors_experts (the authors' MoG expert) is defined for dataset mog only, not {dataset}"
            )
        return tuple(authors_expert() for _ in range(num_experts))
    if study == "expert_dependence":
        region = EXPERT_REGION[dataset]
        return (random_expert(),) + tuple(probabilistic(region, expert_p) for _ in range(DEPENDENCE_NUM_EXPERTS - 1))
    if study == "specialized_experts":
        return tuple(specialist((2 * j, 2 * j + 1)) for j in range(num_experts))
    raise ValueError(f"unknown study {study!r}: expected one of {', '.join(STUDIES)}")


def human_experts(
    study: str, dataset: str, *, num_experts: int | None = None, expert_p: float | None = None
) -> tuple[Expert, ...]:
    """The experts of one configuration on a human-expert dataset (see the module docstring)."""
    everything = tuple(range(NUM_CLASSES[dataset]))
    if study == "shifted_crowd" and dataset != "cifar10n":
        raise ValueError(f"shifted_crowd trains with CIFAR-10N workers: dataset cifar10n only, not {dataset}")
    if study in ("increasing_experts", "shifted_crowd"):
        if dataset == "cifar10h":
            return tuple(crowd_member(everything) for _ in range(num_experts))
        if num_experts > CIFAR10N_WORKERS:
            raise ValueError(f"{dataset} records {CIFAR10N_WORKERS} workers per image: J <= 3, got {num_experts}")
        return tuple(worker(j) for j in range(num_experts))
    if study == "expert_dependence":
        raised = tuple(crowd_member(everything, expert_p) for _ in range(DEPENDENCE_NUM_EXPERTS - 1))
        return (crowd_member(everything),) + raised
    if study == "specialized_experts":
        return tuple(crowd_member((2 * j, 2 * j + 1)) for j in range(num_experts))
    raise ValueError(
        f"study {study!r} has simulated experts only; {dataset} runs increasing_experts, expert_dependence, "
        "specialized_experts" + (" and shifted_crowd" if dataset == "cifar10n" else "")
    )


def run_config(
    study: str,
    dataset: str,
    profile: str,
    method: str,
    seed: int,
    num_experts: int,
    expert_p: float | None,
    data_seed: int | None = None,
    *,
    max_epochs: int | None = None,
    lr: float | None = None,
    patience: int | None = None,
) -> RunConfig:
    experts = study_experts(study, dataset, num_experts=num_experts, expert_p=expert_p)
    draw = None if data_seed is None else int(data_seed)
    schedule = dict(
        max_epochs=None if max_epochs is None else int(max_epochs),
        lr=None if lr is None else float(lr),
        patience=None if patience is None else int(patience),
    )
    return RunConfig(study, dataset, profile, method, int(seed), int(num_experts), expert_p, experts, draw, **schedule)


def study_configs(
    study: str,
    dataset: str,
    profile: str,
    *,
    seeds: Sequence[int],
    methods: Sequence[str] = METHODS,
    num_experts: Sequence[int] | None = None,
    expert_ps: Sequence[float] | None = None,
    data_seeds: Sequence[int] | None = None,
    schedule: dict[str, Any] | None = None,
) -> list[RunConfig]:
    """The study's grid, in table order (method, data seed, seed, then J or p). ``data_seeds``
    (MoG) are draws of our generator, None the paper's data. ``num_experts`` and
    ``expert_ps`` replace the defaults where the study varies them and are ignored otherwise
    (:func:`check_options` rejects them where no study of a run uses them). ``schedule``
    sets :data:`SCHEDULE` values for every configuration (:func:`check_schedule`); the
    training_budget study sets its own and refuses it."""
    check_choice("study", study, STUDIES)
    num_classes = num_classes_of(dataset)
    methods, seeds = check_methods(methods), check_seeds(seeds)
    schedules = [check_schedule(schedule)]
    if study == "training_budget" and any(v is not None for v in schedules[0].values()):
        raise ValueError("training_budget sets each configuration's epochs, learning rate and patience itself")
    if study == "expert_dependence":
        ps = DEFAULT_EXPERT_PS if expert_ps is None else check_probabilities(expert_ps)
        grid = [(DEPENDENCE_NUM_EXPERTS, p) for p in ps]
    elif study == "training_budget":
        js = BUDGET_NUM_EXPERTS if num_experts is None else check_num_experts(num_experts)
        grid = [(j, None) for j in js] + [(DEPENDENCE_NUM_EXPERTS, BUDGET_EXPERT_P)]
        if dataset not in BUDGETS:
            raise ValueError(f"training_budget is defined for {' and '.join(BUDGETS)}, not {dataset}")
        epochs, lrs = BUDGETS[dataset]
        schedules = [{"max_epochs": e, "lr": lr, "patience": e} for e in epochs for lr in lrs]
    else:
        limit = num_classes // 2 if study == "specialized_experts" else None
        if dataset == "cifar10n" and study in ("increasing_experts", "shifted_crowd"):
            limit = CIFAR10N_WORKERS
        default = tuple(range(1, 9)) if limit is None else tuple(range(1, limit + 1))
        js = default if num_experts is None else check_num_experts(num_experts)
        if limit is not None and max(js) > limit:
            why = "two classes per expert" if study == "specialized_experts" else "recorded workers per image"
            raise ValueError(f"{study} on {dataset} allows J <= {limit} ({why}), got {max(js)}")
        grid = [(j, None) for j in js]
    draws = [None] if data_seeds is None else check_seeds(data_seeds, "data_seeds")
    return [
        run_config(study, dataset, profile, method, seed, j, p, ds, **schedule)
        for method in methods
        for ds in draws
        for schedule in schedules
        for seed in seeds
        for j, p in grid
    ]


def check_options(studies: Sequence[str], *, num_experts=None, expert_ps=None) -> None:
    """An option that no chosen study varies is an error naming both (not silently ignored)."""
    for option, value in (("num_experts", num_experts), ("expert_ps", expert_ps)):
        if value is None:
            continue
        users = [s for s in studies if AXES[s].option == option]
        if not users:
            flag = "--num-experts" if option == "num_experts" else "--expert-p"
            fixed = ", ".join(f"{s} varies {AXES[s].symbol} ({AXES[s].flag})" for s in studies)
            raise ValueError(f"{option} ({flag}) does not apply to {' and '.join(studies)}: {fixed}")


def check_schedule(schedule: dict[str, Any] | None) -> dict[str, Any]:
    """Schedule settings (:data:`SCHEDULE`; None: the profile's): max_epochs and patience
    integers >= 1, lr a number > 0."""
    schedule = dict(schedule or {})
    unknown = set(schedule) - set(SCHEDULE)
    if unknown:
        raise ValueError(f"unknown schedule setting(s) {sorted(unknown)}: expected {', '.join(SCHEDULE)}")
    for name in ("max_epochs", "patience"):
        v = schedule.get(name)
        if v is not None and (not _is_int(v) or v < 1):
            raise ValueError(f"{name} must be an integer >= 1 (or None: the profile's), got {v!r}")
    lr = schedule.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0):
        raise ValueError(f"lr must be a number > 0 (or None: the profile's), got {lr!r}")
    return schedule


# -------------------------------------------------------------- parameter checks
# The CLI's and the notebooks' inputs go through these: a clear message naming the
# parameter and what it expects, and duplicates removed with a note.


def _as_list(name: str, value: Any, what: str) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty list of {what}, got {value!r}")
    return list(value)


def _unique(name: str, values: list) -> tuple:
    out = tuple(dict.fromkeys(values))
    if len(out) < len(values):
        dropped = sorted({v for v in values if values.count(v) > 1}, key=values.index)
        warnings.warn(f"{name}: duplicate value(s) {', '.join(map(str, dropped))} removed", stacklevel=3)
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_seeds(seeds: Any, name: str = "seeds") -> tuple[int, ...]:
    """seeds: a non-empty list of non-negative integers, duplicates removed."""
    values = _as_list(name, seeds, "non-negative integers")
    for s in values:
        if not _is_int(s) or s < 0:
            raise ValueError(f"{name} must be a non-empty list of non-negative integers, got {s!r} in {seeds!r}")
    return _unique(name, values)


def check_methods(methods: Any) -> tuple[str, ...]:
    values = _as_list("methods", methods, f"method names ({', '.join(METHODS)})")
    for m in values:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r} in methods: expected some of {', '.join(METHODS)}")
    return _unique("methods", values)


def check_num_experts(num_experts: Any) -> tuple[int, ...]:
    values = _as_list("num_experts", num_experts, "integers >= 1")
    for j in values:
        if not _is_int(j):
            raise ValueError(f"num_experts must be a non-empty list of integers >= 1, got {j!r} in {num_experts!r}")
        if j < 1:
            raise ValueError(f"number of experts J must be >= 1, got {j}")
    return _unique("num_experts", values)


def check_probabilities(expert_ps: Any) -> tuple[float, ...]:
    values = _as_list("expert_ps", expert_ps, "probabilities in [0, 1]")
    for p in values:
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise ValueError(f"expert_ps must be a non-empty list of numbers in [0, 1], got {p!r} in {expert_ps!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"expert correctness probability p must lie in [0, 1], got {p}")
    return _unique("expert_ps", [float(p) for p in values])
