"""The paper's three studies as grids of configurations -> tidy DataFrames.

One configuration is one trained model: (method, seed, number of experts or expert
quality). ``run_study`` reuses every configuration already in the cache, trains the rest
(MoG: many models at once as one stacked MLP), evaluates them on the test split and
writes the study table with its provenance.

Experts (see DESIGN.md and the book's introduction for what is pinned down):

- increasing_experts: J = 1..8 identical oracles on the "expert region" (MoG clusters
  {2, 3}, CIFAR-10 classes 0-4), uniformly random elsewhere.
- expert_dependence: J = 4; expert 0 random everywhere, experts 1-3 right with
  probability p on the region (else a uniform guess), random elsewhere.
- specialized_experts: expert j is an oracle on classes {2j, 2j+1}; J = 1..K/2.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm  # plain bars: no ipywidgets needed in notebooks

from . import METHODS, estimators, metrics, results
from .data import DATASETS, Dataset
from .experts import Expert, draw_predictions, oracle, probabilistic, random_expert, specialist
from .losses import check_method
from .models import MLP, FastResNet, Stacked, WideResNet
from .rng import derive_seed
from .train import Split, TrainConfig, predict, train

STUDIES = ("increasing_experts", "expert_dependence", "specialized_experts")
PROFILES = ("smoke", "quick", "paper", "faithful")
EXPERT_REGION = {"mog": (2, 3), "cifar10": (0, 1, 2, 3, 4)}
DEFAULT_NUM_EXPERTS = {"increasing_experts": tuple(range(1, 9))}  # specialists: 1..K/2
DEFAULT_EXPERT_PS = (0.2, 0.4, 0.6, 0.8, 0.95)
DEPENDENCE_NUM_EXPERTS = 4
INIT_STREAM, ORDER_STREAM = 2, 3  # seed streams (experts use 1, see l2dlib.experts)

# Columns of every study table, in order (DESIGN.md's contract plus a few extras).
COLUMNS = [
    "study", "dataset", "profile", "method", "seed", "num_experts", "expert_p", "expert",
    "expert_kind", "ece", "system_accuracy", "classifier_accuracy", "coverage",
    "frac_estimates_above_1", "mean_estimate", "expert_accuracy", "ece_10", "ece_30",
    "ece_adaptive", "ece_uncapped", "brier", "best_epoch", "data_label",
]
RELIABILITY_BINS = 20
# Columns of the reliability-diagram tables (<study>-<profile>.reliability.csv).
RELIABILITY_COLUMNS = ["study", "method", "seed", "num_experts", "expert_p", "expert", "expert_kind",
                       "bin_lower", "bin_upper", "count", "confidence", "accuracy"]


@dataclass(frozen=True)
class Profile:
    """Everything a profile fixes for one dataset."""

    name: str
    dataset: str
    seeds: tuple[int, ...]
    train: TrainConfig
    num_points: int = 20_000  # MoG only
    model: str = "mlp"  # mlp | fast_resnet | wide_resnet
    model_options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of the model
    synthetic: bool = False  # CIFAR-10 smoke: synthetic CIFAR-shaped images instead of the data
    augment: bool = False  # random crop (4-pixel padding) and horizontal flip, on the device
    # Models trained at once (MoG stacks them); each batch is cached when it finishes, so an
    # interrupted run keeps every finished batch. 32 trains as fast as 65 (measured).
    max_models_per_batch: int = 32
    # CPU worker processes, one thread each. Tiny models are memory-bound and use a second
    # core poorly from one process: two single-threaded workers train about 1.4x more
    # models per second than one process with two threads (measured on 2 cores).
    cpu_workers: int = 2


# lr 0.05: at 0.1, 8 of 195 paper-profile models lost most ReLUs in the first epochs and
# kept a weak epoch-1-2 state; at 0.05 none of 195 did (measured; docs/decisions.md).
_MOG_TRAIN = TrainConfig(max_epochs=50, batch_size=256, lr=0.05, momentum=0.9, nesterov=True,
                         weight_decay=5e-4, patience=20)
_CIFAR = dict(dataset="cifar10", augment=True, max_models_per_batch=1, cpu_workers=1)
_PROFILES = {
    ("mog", "smoke"): Profile("smoke", "mog", (0,), replace(_MOG_TRAIN, max_epochs=3, batch_size=64),
                              num_points=400, cpu_workers=1),
    ("mog", "quick"): Profile("quick", "mog", (0, 1, 2), _MOG_TRAIN),
    ("mog", "paper"): Profile("paper", "mog", (0, 1, 2, 3, 4), _MOG_TRAIN),
    ("mog", "faithful"): Profile("faithful", "mog", (0, 1, 2, 3, 4), _MOG_TRAIN),
    # A tiny net on a few hundred synthetic images, one epoch: exercises the CIFAR path on a CPU.
    ("cifar10", "smoke"): Profile(
        "smoke", seeds=(0,), model="fast_resnet", model_options=(("widths", (8, 16, 16)),), synthetic=True,
        train=TrainConfig(max_epochs=1, batch_size=64, lr=0.05, eval_batch_size=512), **_CIFAR),
    # The fast residual net on the full data, on a GPU (bf16 autocast). Not yet run on a GPU:
    # the schedule is the conventional one for ResNet-9-like nets and may need tuning.
    ("cifar10", "paper"): Profile(
        "paper", seeds=(0, 1, 2), model="fast_resnet",
        train=TrainConfig(max_epochs=30, batch_size=512, lr=0.2, weight_decay=5e-4, patience=20,
                          eval_batch_size=2000, amp=True), **_CIFAR),
    # The paper's WideResNet-28-4 with the authors' defaults: batch 1024, Nesterov SGD lr 0.1,
    # weight decay 5e-4, cosine over 100 epochs, early stopping look-ahead 20.
    ("cifar10", "faithful"): Profile(
        "faithful", seeds=(0, 1, 2), model="wide_resnet", model_options=(("depth", 28), ("widen", 4)),
        train=TrainConfig(max_epochs=100, batch_size=1024, lr=0.1, weight_decay=5e-4, patience=20,
                          eval_batch_size=2000, amp=True), **_CIFAR),
}


DEFAULT_PROFILE = {"mog": "quick", "cifar10": "paper"}


def get_profile(dataset: str, profile: str) -> Profile:
    check_choice("dataset", dataset, DATASETS)
    check_choice("profile", profile, PROFILES)
    try:
        return _PROFILES[(dataset, profile)]
    except KeyError:
        defined = ", ".join(p for d, p in _PROFILES if d == dataset)
        raise ValueError(f"profile {profile!r} is not defined for dataset {dataset!r} (it has: {defined}; "
                         "CIFAR-10 trains with paper or faithful on a GPU, smoke on a CPU)") from None


def check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(choices)}")


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

    def as_dict(self, profile: Profile) -> dict[str, Any]:
        d = asdict(self)
        d["experts"] = [asdict(e) for e in self.experts]
        d["settings"] = {"train": asdict(profile.train), "model": profile.model,
                         "model_options": dict(profile.model_options), "augment": profile.augment}
        if self.dataset == "mog":
            d["settings"]["num_points"] = profile.num_points
        else:  # the train/val split of the official training set (data.cifar10 defaults)
            d["settings"]["val_split"] = {"fraction": 0.1, "seed": 0, "synthetic": profile.synthetic}
        return d


def study_experts(study: str, dataset: str, num_classes: int, *, num_experts: int | None = None,
                  expert_p: float | None = None) -> tuple[Expert, ...]:
    """The experts of one configuration."""
    if study == "increasing_experts":
        return tuple(oracle(EXPERT_REGION[dataset]) for _ in range(num_experts))
    if study == "expert_dependence":
        region = EXPERT_REGION[dataset]
        return (random_expert(),) + tuple(probabilistic(region, expert_p) for _ in range(DEPENDENCE_NUM_EXPERTS - 1))
    if study == "specialized_experts":
        return tuple(specialist((2 * j, 2 * j + 1)) for j in range(num_experts))
    raise ValueError(f"unknown study {study!r}: expected one of {', '.join(STUDIES)}")


def study_configs(study: str, dataset: str, profile: str, *, seeds: Sequence[int],
                  methods: Sequence[str] = METHODS, num_experts: Sequence[int] | None = None,
                  expert_ps: Sequence[float] | None = None) -> list[RunConfig]:
    """The study's grid, ordered by method (the trainer batches runs of equal method)."""
    check_choice("study", study, STUDIES)
    num_classes = num_classes_of(dataset)
    for method in methods:
        check_method(method)
    if not methods:
        raise ValueError("expected at least one method")
    if not seeds:
        raise ValueError("expected at least one seed")
    if study == "expert_dependence":
        ps = tuple(DEFAULT_EXPERT_PS if expert_ps is None else expert_ps)
        for p in ps:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"expert correctness probability p must lie in [0, 1], got {p}")
        grid = [(DEPENDENCE_NUM_EXPERTS, p) for p in ps]
    else:
        limit = num_classes // 2 if study == "specialized_experts" else None
        default = DEFAULT_NUM_EXPERTS[study] if limit is None else tuple(range(1, limit + 1))
        js = tuple(default if num_experts is None else num_experts)
        for j in js:
            if j < 1:
                raise ValueError(f"number of experts J must be >= 1, got {j}")
            if limit is not None and j > limit:
                raise ValueError(f"specialized_experts on {dataset} allows J <= {limit} "
                                 f"(two classes per expert), got {j}")
        grid = [(j, None) for j in js]
    return [
        RunConfig(study, dataset, profile, method, int(seed), j, p,
                  study_experts(study, dataset, num_classes, num_experts=j, expert_p=p))
        for method in methods for seed in seeds for j, p in grid
    ]


def num_classes_of(dataset: str) -> int:
    check_choice("dataset", dataset, DATASETS)
    return {"mog": 4, "cifar10": 10}[dataset]


def load_data(dataset: str, profile: Profile, device: torch.device, data_dir: str | Path | None = None) -> Dataset:
    """The profile's data on ``device`` (CIFAR-10 from ``data_dir``, see ``data.cifar10``)."""
    if dataset == "mog":
        from .data.mog import make_mog

        return make_mog(profile.num_points, standardize=True).to(device)
    from .data import cifar10

    if profile.synthetic:
        return cifar10.synthetic_cifar10().to(device)
    return cifar10.load_cifar10(data_dir, device=device)


def build_model(cfgs: Sequence[RunConfig], profile: Profile, data: Dataset) -> torch.nn.Module:
    """The profile's model for a batch of configurations: one stacked MLP for MoG, one
    network (wrapped to the trainer's [1, B, C] convention) for CIFAR-10."""
    k = data.num_classes
    device = data.x["train"].device
    seeds = [derive_seed(c.seed, INIT_STREAM, c.num_experts) for c in cfgs]
    if profile.model == "mlp":
        return MLP([k + c.num_experts for c in cfgs], seeds=seeds,
                   in_features=data.x["train"].shape[1]).to(device)
    if len(cfgs) != 1:
        raise ValueError(f"{profile.model} trains one configuration at a time, got {len(cfgs)}")
    net_class = {"fast_resnet": FastResNet, "wide_resnet": WideResNet}[profile.model]
    net = net_class(num_outputs=k + cfgs[0].num_experts, seed=seeds[0], **dict(profile.model_options))
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    return Stacked(net.to(device, memory_format=memory_format))


def _image_transforms(profile: Profile, device: torch.device):
    """(preprocess, augment) for the trainer: CIFAR-10 normalisation (channels_last on a GPU)
    and random crop + flip; nothing for MoG."""
    if profile.dataset != "cifar10":
        return None, None
    from .data.cifar10 import augment, normalize

    if device.type == "cuda":
        return (lambda x: normalize(x).contiguous(memory_format=torch.channels_last)), (augment if profile.augment else None)
    return normalize, (augment if profile.augment else None)


def evaluate(logits: torch.Tensor, y: torch.Tensor, expert_preds: torch.Tensor, num_classes: int,
             method: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Metrics on one split: logits [N, K+J], y [N], expert_preds [N, J].

    Returns one row per expert (ECE with 20 bins as in the paper, its variants, system
    metrics) and one row per (expert, bin) for reliability diagrams.
    """
    estimates = estimators.expert_correctness(logits, num_classes, method).cpu()  # [N, J]
    correct = (expert_preds == y.unsqueeze(1)).cpu()
    system = {
        "system_accuracy": metrics.accuracy(estimators.system_predictions(logits, expert_preds, num_classes), y),
        "classifier_accuracy": metrics.accuracy(logits[:, :num_classes].argmax(1), y),
        "coverage": metrics.coverage(estimators.defer(logits, num_classes)),
    }
    rows, bins = [], []
    for j in range(expert_preds.shape[1]):
        c, r = estimates[:, j], correct[:, j]
        rows.append({
            "expert": j,
            "ece": metrics.ece(c, r, RELIABILITY_BINS),
            **system,
            "frac_estimates_above_1": float((c > 1).float().mean()),
            "mean_estimate": float(c.mean()),
            "expert_accuracy": float(r.float().mean()),
            "ece_10": metrics.ece(c, r, 10),
            "ece_30": metrics.ece(c, r, 30),
            "ece_adaptive": metrics.adaptive_ece(c, r, RELIABILITY_BINS),
            "ece_uncapped": metrics.ece(c, r, RELIABILITY_BINS, cap=False),
            "brier": metrics.brier(c, r),
        })
        diagram = metrics.reliability_bins(c, r, RELIABILITY_BINS)
        bins += [{"expert": j, **b} for b in diagram.astype(object).where(diagram.notna(), None).to_dict("records")]
    return rows, bins


def _expert_tensor(cfgs: Sequence[RunConfig], data: Dataset, split: str, width: int) -> torch.Tensor:
    """Stacked expert predictions [M, N, width], padded with -1 (never correct)."""
    out = []
    for c in cfgs:
        e = draw_predictions(list(c.experts), data.y[split], data.num_classes, c.seed, split)
        out.append(torch.nn.functional.pad(e, (0, width - e.shape[1]), value=-1))
    return torch.stack(out).to(data.y[split].device)


def _train_batch(cfgs: Sequence[RunConfig], data: Dataset, profile: Profile,
                 progress: bool) -> tuple[list[tuple[list[dict], list[dict]]], list[int], int]:
    """Train a batch of configurations as one stack: per config (rows, bins), per config best
    epoch, and the epochs the batch ran (until its last model stopped)."""
    width = max(c.num_experts for c in cfgs)
    k = data.num_classes
    device = data.x["train"].device
    splits = {s: Split(data.x[s], data.y[s], _expert_tensor(cfgs, data, s, width)) for s in ("train", "val", "test")}
    model = build_model(cfgs, profile, data)
    preprocess, augment = _image_transforms(profile, device)
    history = train(model, splits["train"], splits["val"], methods=[c.method for c in cfgs],
                    seeds=[derive_seed(c.seed, ORDER_STREAM) for c in cfgs], config=profile.train,
                    preprocess=preprocess, augment=augment, progress=progress)
    # Test logits in float32 even when training used bf16: the estimates are what is measured.
    logits = predict(model, data.x["test"], preprocess=preprocess, batch_size=profile.train.eval_batch_size)
    evaluated = [evaluate(logits[m, :, : k + c.num_experts], data.y["test"],
                          splits["test"].experts[m, :, : c.num_experts], k, c.method)
                 for m, c in enumerate(cfgs)]
    return evaluated, history.best_epoch.tolist(), history.epochs_run


def _batches(todo: list, size: int, parts: int) -> list[list]:
    """Split the work into ``parts`` interleaved shares (so each gets a mix of J), each cut
    into equal batches of at most ``size`` models, ordered by method (the trainer takes
    runs of equal method as slices)."""
    batches = []
    for i in range(parts):
        share = todo[i::parts]
        count = -(-len(share) // size)  # ceil
        batches += [share[j::count] for j in range(count)]
    return [sorted(b, key=lambda ck: METHODS.index(ck[0].method)) for b in batches if b]


def _train_timed(cfgs, data, profile, progress):
    t0 = time.perf_counter()
    rows, best, epochs = _train_batch(cfgs, data, profile, progress)
    return rows, best, epochs, time.perf_counter() - t0


def _worker(cfgs: list[RunConfig], profile: Profile):
    """A CPU worker process (MoG): its own copy of the data, one thread."""
    torch.set_num_threads(1)
    return _train_timed(cfgs, load_data(profile.dataset, profile, torch.device("cpu")), profile, False)


def _worker_count(profile: Profile, device: torch.device, num_todo: int) -> int:
    workers = profile.cpu_workers if device.type == "cpu" and profile.dataset == "mog" else 1
    return max(1, min(workers, num_todo))


def _train_all(todo, data: Dataset, profile: Profile, device: torch.device, progress: bool):
    """Yield (batch, (rows, best epochs, epochs run, wall seconds)) as batches finish."""
    workers = _worker_count(profile, device, len(todo))
    batches = _batches(todo, profile.max_models_per_batch, workers)
    if workers == 1:
        for batch in batches:
            yield batch, _train_timed([c for c, _ in batch], data, profile, progress)
        return
    ctx = multiprocessing.get_context("spawn")  # fork + torch threads can deadlock
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(_worker, [c for c, _ in b], profile): i
                   for i, b in enumerate(batches)}
        try:
            for fut in concurrent.futures.as_completed(futures):
                yield batches[futures[fut]], fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def run_study(study: str, dataset: str = "mog", profile: str = "quick", **kwargs) -> pd.DataFrame:
    """Run (or reuse) every configuration of one study; see :func:`run_studies`."""
    return run_studies([study], dataset, profile, **kwargs)[study]


def run_studies(studies: Sequence[str], dataset: str = "mog", profile: str = "quick", *,
                seeds: Sequence[int] | None = None, methods: Sequence[str] = METHODS,
                num_experts: Sequence[int] | None = None, expert_ps: Sequence[float] | None = None,
                results_dir: str | Path = "results", force: bool = False, device: str = "cpu",
                data_dir: str | Path | None = None, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Run (or reuse) every configuration of the studies and write each table and provenance.

    The studies' missing configurations are trained together (one pool of stacked models),
    each finished configuration is cached at once, and each study's tidy table (columns
    ``COLUMNS``) is written to ``<results_dir>/<dataset>/<study>-<profile>.csv`` with its
    provenance (``.json``) beside it. Interrupting loses at most the batches in training;
    the same call resumes. ``num_experts`` applies to the studies that vary J,
    ``expert_ps`` to expert_dependence; ``data_dir`` holds CIFAR-10 (see ``data.cifar10``).
    """
    prof = get_profile(dataset, profile)
    seeds = tuple(prof.seeds if seeds is None else seeds)
    grids = {s: study_configs(s, dataset, profile, seeds=seeds, methods=methods,
                              num_experts=num_experts, expert_ps=expert_ps) for s in studies}
    dev = resolve_device(device)
    started = time.perf_counter()
    data = load_data(dataset, prof, dev, data_dir)
    keyed = {s: [(c, results.config_key(c.as_dict(prof) | {"data": data.fingerprint})) for c in cfgs]
             for s, cfgs in grids.items()}
    paths = {k: results.cache_dir(results_dir, dataset, s, profile) / f"{k}.json"
             for s, pairs in keyed.items() for _, k in pairs}
    entries = {} if force else {k: e for k, path in paths.items() if (e := results.read_cached(path))}
    todo = [(c, k) for pairs in keyed.values() for c, k in pairs if k not in entries]

    env = results.environment()
    total = len(paths)
    bar = tqdm(total=total, initial=total - len(todo), unit="config", disable=not progress,
               desc=f"{'+'.join(studies)} ({dataset}, {profile})")
    for batch, (rows, best_epochs, epochs_run, wall) in _train_all(todo, data, prof, dev, progress):
        for (c, k), (r, b), best in zip(batch, rows, best_epochs):
            extra = {"best_epoch": best, "bins": b, "batch_size_models": len(batch),
                     "batch_epochs_run": epochs_run, "batch_training_examples": len(data.y["train"]),
                     "batch_wall_seconds": wall, "device": _device_description(dev, prof, todo),
                     "git_commit": env["git_commit"],
                     "data_fingerprint": data.fingerprint}
            results.write_cached(paths[k], c.as_dict(prof), r, extra)
            entries[k] = {"rows": r, "bins": b, "best_epoch": best}
        bar.update(len(batch))
    bar.close()

    tables = {}
    for study, pairs in keyed.items():
        table = pd.DataFrame(
            [
                {"study": c.study, "dataset": c.dataset, "profile": c.profile, "method": c.method,
                 "seed": c.seed, "num_experts": c.num_experts, "expert_p": c.expert_p,
                 "expert_kind": c.experts[row["expert"]].kind, "best_epoch": entries[k]["best_epoch"],
                 "data_label": data.label, **row}
                for c, k in pairs for row in entries[k]["rows"]
            ]
        )[COLUMNS]
        reliability = pd.DataFrame(
            [
                {"study": c.study, "method": c.method, "seed": c.seed, "num_experts": c.num_experts,
                 "expert_p": c.expert_p, "expert_kind": c.experts[b["expert"]].kind, **b}
                for c, k in pairs for b in entries[k]["bins"]
            ]
        )[RELIABILITY_COLUMNS]
        provenance = {
            "results_version": results.RESULTS_VERSION, "study": study, "dataset": dataset,
            "profile": profile, "seeds": list(seeds), "methods": list(methods),
            "num_configs": len(pairs), "num_computed": sum(1 for c, _ in todo if c.study == study),
            "num_rows": len(table), "settings": pairs[0][0].as_dict(prof)["settings"],
            "device": _device_description(dev, prof, todo), "data_label": data.label,
            "data_fingerprint": data.fingerprint,
            "wall_seconds": round(time.perf_counter() - started, 3),
            "wall_seconds_covers": list(studies), "command": _command(), **env,
        }
        keys_sha = hashlib.sha256(" ".join(sorted(k for _, k in pairs)).encode()).hexdigest()[:16]
        provenance["config_keys_sha"] = keys_sha
        if provenance["num_computed"] or not _same_table_on_disk(results_dir, dataset, study, profile, keys_sha):
            # Rewrite only when something changed: a table assembled wholly from the cache
            # keeps the provenance (commit, device, wall time) of the run that computed it.
            results.write_table(results_dir, dataset, study, profile, table, provenance, reliability)
        tables[study] = table
    return tables


def study_table(study: str, dataset: str = "mog", profile: str = "quick", *, recompute: bool = False,
                results_dir: str | Path = "results", **kwargs) -> tuple[pd.DataFrame, dict]:
    """What a notebook shows: the study table and its provenance.

    MoG runs live on the CPU (finished configurations come from the cache; ``recompute``
    retrains them). CIFAR-10 reads the committed table unless ``recompute`` is set,
    which needs a GPU.
    """
    if dataset == "mog" or recompute:
        if dataset != "mog":
            kwargs.setdefault("device", "cuda")
        run_study(study, dataset, profile, results_dir=results_dir, force=recompute, **kwargs)
    return results.load_table(results_dir, dataset, study, profile)


def _same_table_on_disk(results_dir, dataset: str, study: str, profile: str, keys_sha: str) -> bool:
    try:
        _, provenance = results.load_table(results_dir, dataset, study, profile)
    except (FileNotFoundError, ValueError):
        return False
    return provenance.get("config_keys_sha") == keys_sha


def _command() -> str:
    """How this run was started, as a command a reader could type (or the Python call)."""
    if sys.argv and sys.argv[0].endswith(("__main__.py", "l2dlib")):
        return "python -m l2dlib " + " ".join(sys.argv[1:])
    return "l2dlib.experiments.run_studies (from Python or a notebook)"


def _device_description(device: torch.device, profile: Profile, todo: list) -> str:
    workers = _worker_count(profile, device, len(todo))
    name = results.device_name(device) if workers == 1 else f"{results.device_name(device).split(',')[0]}, {workers} worker processes x 1 thread)"
    return name


def committed_table(study: str, dataset: str, profile: str, *, results_dir: str | Path = "results",
                    recompute: bool = False, **kwargs) -> tuple[pd.DataFrame | None, dict | str]:
    """A table a page shows where it exists: (table, provenance), or (None, why not).
    With ``recompute`` the study is run first (CIFAR-10: on a GPU)."""
    if recompute:
        return study_table(study, dataset, profile, results_dir=results_dir, recompute=True, **kwargs)
    return results.find_table(results_dir, dataset, study, profile)


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU: use device 'cpu' (--device cpu)")
    return torch.device(device)
