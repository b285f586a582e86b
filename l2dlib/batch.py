"""One batch of configurations, in any process: its data and model, training as one
stack, evaluation on the test points, and its cache entries.

A configuration's numbers depend on it alone. An MLP's output width is fixed by its own J
(K + max(8, J)), never by its companions: a padded column joins the model's log-sum-exp
and changes its rounding, which 50 epochs amplify; stacks hold models of one width. Every
per-model block of floats is aligned (``models.ALIGN``), and every MoG model trains on one
thread. Tested: a configuration trained alone and in any stack gives bit-identical rows.

One concern over 350 lines: a batch from its data (simulated or human experts) to its cache
entries, each step used by every executor.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import METHODS, numerics, results
from .data import HUMAN_DATASETS, Dataset
from .evaluation import Points, evaluate
from .experts import draw_predictions
from .losses import expert_correct
from .models import MLP, FastResNet, FastTail, Stacked, WideResNet
from .profiles import Profile
from .rng import derive_seed
from .studies import RunConfig
from .train import Split, per_model_loss, predict, split_loss, train

INIT_STREAM, ORDER_STREAM = 2, 3  # seed streams (experts use 1, see l2dlib.experts)
# Models that train on one thread, in a worker or not, so no result depends on how many
# threads split a reduction (and two single-threaded workers are faster anyway, measured).
ONE_THREAD_MODELS = ("mlp", "fast_tail")


# MLPs have output columns for at least this many experts (the rest masked), so every
# configuration of the paper's grids (J <= 8) shares one width and can share a stack.
EXPERT_SLOTS = 8


def output_width(cfg: RunConfig, profile: Profile, num_classes: int) -> int:
    """The model's number of output columns, a function of the configuration alone."""
    slots = max(EXPERT_SLOTS, cfg.num_experts) if profile.model == "mlp" else cfg.num_experts
    return num_classes + slots


def load_data(
    profile: Profile,
    device: torch.device,
    data_dir: str | Path | None = None,
    data_seed: int | None = None,
    results_dir: str | Path | None = None,
    progress: bool = False,
) -> Dataset:
    """The profile's data on ``device``: MoG from the paper's parameters or our generator's
    draw ``data_seed``; CIFAR-10 from ``data_dir`` (see ``data.cifar10``), or, for a profile
    with an extractor, its frozen features (trained and cached under ``results_dir``), or
    for ``fast_tail`` its frozen body's outputs."""
    if profile.dataset == "mog":
        from .data.mog import make_mog, params_for

        data = make_mog(params_for(data_seed), profile.points, standardize=profile.standardize)
        # train_batch evaluates each training seed on its own test draw (mog_test_split)
        label = data.label.replace(" points)", " points; test points drawn afresh per seed)")
        return replace(data, label=label).to(device)
    from .data import cifar10

    images = cifar10.synthetic_cifar10() if profile.synthetic else cifar10.load_cifar10(data_dir)
    if profile.extractor is None:
        return images.to(device)
    from .features import body_dataset, extractor_folder, feature_dataset

    make = body_dataset if profile.model == "fast_tail" else feature_dataset
    features = make(images, profile.extractor, extractor_folder(results_dir), progress=progress)
    if profile.dataset in HUMAN_DATASETS:
        from .data.crowds import crowd_dataset

        features = crowd_dataset(profile.dataset, features, data_dir, synthetic=profile.synthetic)
    return features.to(device)


def build_model(cfgs: Sequence[RunConfig], profile: Profile, data: Dataset) -> torch.nn.Module:
    """The profile's model for a batch of configurations: one stacked MLP for MoG, one
    network (wrapped to the trainer's [1, B, C] convention) for CIFAR-10."""
    k = data.num_classes
    device = data.x["train"].device
    seeds = [derive_seed(c.seed, INIT_STREAM, c.num_experts) for c in cfgs]
    if profile.model == "mlp":
        return MLP(
            [k + c.num_experts for c in cfgs],
            seeds=seeds,
            in_features=data.x["train"].shape[1],
            width=output_width(cfgs[0], profile, k),
            **dict(profile.model_options),
        ).to(device)
    if len(cfgs) != 1:
        raise ValueError(f"{profile.model} trains one configuration at a time, got {len(cfgs)}")
    if profile.model == "fast_tail":  # the extractor's last group, trained again, and a new head
        net = FastTail(
            k + cfgs[0].num_experts, widths=profile.extractor.widths, group_state=data.tail_state, seed=seeds[0]
        )
    else:
        net_class = {"fast_resnet": FastResNet, "wide_resnet": WideResNet}[profile.model]
        net = net_class(num_outputs=k + cfgs[0].num_experts, seed=seeds[0], **dict(profile.model_options))
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    return Stacked(net.to(device, memory_format=memory_format))


def _image_transforms(profile: Profile, device: torch.device):
    """(preprocess, augment) for the trainer: CIFAR-10 normalisation (channels_last on a GPU)
    and random crop + flip; nothing for MoG."""
    if profile.dataset != "cifar10" or profile.extractor is not None:
        return None, None
    from .data.transforms import augment, normalize

    aug = augment if profile.augment else None
    if device.type == "cuda":
        return (lambda x: normalize(x).contiguous(memory_format=torch.channels_last)), aug
    return normalize, aug


@dataclass
class BatchResult:
    """Per configuration of a batch: (rows, bins, points), best epoch and training-split
    classifier accuracy; and the batch's cost."""

    evaluated: list[tuple[list[dict], list[dict], Points]]
    best_epochs: list[int]
    train_accuracies: list[float]
    epochs_run: int
    wall_seconds: float


def train_batch(cfgs: Sequence[RunConfig], data: Dataset, profile: Profile, progress: bool = False) -> BatchResult:
    """Train a batch of configurations of one output width and schedule as one stack and
    evaluate each on its test points: the rows (with the surrogate losses of each split and,
    on MoG, the reference values), the reliability bins and the per-point estimates."""
    k, device = data.num_classes, data.x["train"].device
    widths = {output_width(c, profile, k) for c in cfgs}
    if len(widths) != 1:  # see the module docstring: the width must not depend on companions
        raise ValueError(f"a batch must hold configurations of one output width, got {sorted(widths)}")
    t0 = time.perf_counter()
    slots = widths.pop() - k
    schedules = {c.train_config(profile) for c in cfgs}
    if len(schedules) != 1:  # one optimiser and schedule per stack
        raise ValueError(f"a batch must hold configurations of one schedule, got {len(schedules)}")
    config = schedules.pop()
    splits = {
        s: Split(data.x[s], data.y[s], _expert_tensor(cfgs, data.y[s], k, s, slots, *_human(data, s)))
        for s in ("train", "val")
    }
    model = build_model(cfgs, profile, data)
    preprocess, augment = _image_transforms(profile, device)
    methods = [c.method for c in cfgs]
    evaluated: list = [None] * len(cfgs)
    test_loss = [0.0] * len(cfgs)
    with numerics.one_thread(profile.model in ONE_THREAD_MODELS):
        history = train(
            model,
            splits["train"],
            splits["val"],
            methods=methods,
            seeds=[derive_seed(c.seed, ORDER_STREAM) for c in cfgs],
            config=config,
            preprocess=preprocess,
            augment=augment,
            progress=progress,
        )
        eval_kw = dict(preprocess=preprocess, batch_size=config.eval_batch_size)
        train_logits = predict(model, splits["train"].x, **eval_kw)
        train_loss = split_loss(model, splits["train"], methods, logits=train_logits).tolist()
        train_accuracy = [
            (train_logits[m, :, :k].argmax(-1) == splits["train"].y).double().mean().item() for m in range(len(cfgs))
        ]
        tests = _test_sets(cfgs, data, profile)
        for x, y, members, split in tests:
            # Test logits in float32 even when training used bf16: the estimates are what is measured.
            picked = None if len(members) == len(cfgs) else torch.tensor(members, device=device)
            logits = predict(model, x, models=picked, **eval_kw)
            tested = [cfgs[m] for m in members]
            experts = _expert_tensor(tested, y, k, split, slots, *_human(data, split))
            for i, (m, c) in enumerate(zip(members, tested)):
                j = k + c.num_experts
                evaluated[m] = evaluate(logits[i, :, :j], y, experts[i, :, : c.num_experts], k, c.method)
            correct = expert_correct(y, experts)
            losses = per_model_loss(logits, y.expand(len(members), -1), correct, [c.method for c in tested])
            for m, value in zip(members, losses.tolist()):
                test_loss[m] = value
    for m, (rows, _, _) in enumerate(evaluated):
        for row in rows:
            row.update(train_loss=train_loss[m], val_loss=float(history.best_val_loss[m]), test_loss=test_loss[m])
    if profile.dataset == "mog":  # the truth is known: Bayes accuracies, noise floors, Bayes risks
        from .data.mog import bayes_risk, make_mog, params_for, posteriors, reference

        post = {}  # per training seed: the true class posteriors at its test points
        for c, (rows, _, points) in zip(cfgs, evaluated):
            params = params_for(c.data_seed)
            if c.seed not in post:
                raw = make_mog(params, profile.points, test_seed=c.seed).x["test"]  # the same points, unscaled
                post[c.seed] = posteriors(params, raw.double().numpy())  # (a batch shares its data seed)
            ref = reference(params, c.experts, len(points.correct))
            risk = bayes_risk(post[c.seed], c.experts, c.method)
            for row, (floor, spread) in zip(rows, ref["floors"]):
                row.update(
                    ece_noise_floor=floor,
                    ece_noise_floor_sd=spread,
                    bayes_classifier_accuracy=ref["bayes_classifier_accuracy"],
                    bayes_system_accuracy=ref["bayes_system_accuracy"],
                    bayes_risk=risk,
                )
    return BatchResult(
        evaluated, history.best_epoch.tolist(), train_accuracy, history.epochs_run, time.perf_counter() - t0
    )


def _test_sets(
    cfgs: Sequence[RunConfig], data: Dataset, profile: Profile
) -> list[tuple[torch.Tensor, torch.Tensor, list[int], str]]:
    """(x, y, the batch positions evaluated on these test points, the split's name).
    CIFAR-10: its one test split; the shifted-crowd study its split ``shift``. MoG: a fresh
    draw per training seed (:func:`mog_test_split`)."""
    if profile.dataset != "mog":
        out = []
        for split in ("test", "shift"):
            members = [m for m, c in enumerate(cfgs) if (c.study == "shifted_crowd") == (split == "shift")]
            if members:
                out.append((data.x[split], data.y[split], members, split))
        return out
    by_seed: dict[int, list[int]] = {}
    for m, c in enumerate(cfgs):
        by_seed.setdefault(c.seed, []).append(m)
    device = data.x["train"].device
    out = []
    for seed, members in by_seed.items():
        x, y = mog_test_split(profile, cfgs[members[0]].data_seed, seed)
        out.append((x.to(device), y.to(device), members, "test"))
    return out


def mog_test_split(profile: Profile, data_seed: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The MoG test points (x, y) that the models of training seed ``seed`` are evaluated
    on: a draw of their own from the same mixture, scaled as the training split is, so the
    spread over seeds covers test-set sampling (the truth is known; docs/decisions.md)."""
    from .data.mog import make_mog, params_for

    fresh = make_mog(params_for(data_seed), profile.points, standardize=profile.standardize, test_seed=seed)
    return fresh.x["test"], fresh.y["test"]


def _human(data: Dataset, split: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The split's annotator counts and recorded workers, where the dataset has them."""
    return tuple(None if d is None else d.get(split) for d in (data.crowd, data.workers))


def _expert_tensor(
    cfgs: Sequence[RunConfig],
    y: torch.Tensor,
    num_classes: int,
    split: str,
    slots: int,
    crowd: torch.Tensor | None = None,
    workers: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stacked expert predictions on labels ``y`` of ``split`` [M, N, slots], padded with -1
    (never correct); human experts read the split's ``crowd`` counts and ``workers``."""
    out = []
    for c in cfgs:
        e = draw_predictions(list(c.experts), y, num_classes, c.seed, split, crowd, workers)
        out.append(torch.nn.functional.pad(e, (0, slots - e.shape[1]), value=-1))
    return torch.stack(out).to(y.device)


def make_batches(
    todo: Sequence[RunConfig], profile: Profile, num_classes: int, *, workers: int = 1
) -> list[list[RunConfig]]:
    """Stacks of at most ``profile.max_models_per_batch`` configurations of one output
    width (see the module docstring), balanced in size and mixed in J, each ordered by
    method (the trainer takes runs of one method as slices); the widest first. A stack
    shares its data and its schedule too. With several ``workers``, each group is split into
    a multiple of their number of stacks where it has enough configurations, so that no
    worker idles at the end (five stacks of 26 on two workers take three rounds, six of 22
    take three shorter ones). Which stack a configuration lands in never changes its bits."""
    by_width: dict[tuple, list[RunConfig]] = {}
    for c in todo:
        train = c.train_config(profile)
        draw = -1 if c.data_seed is None else -2 - c.data_seed
        key = (output_width(c, profile, num_classes), draw, train.max_epochs, train.lr, train.patience)
        by_width.setdefault(key, []).append(c)
    batches = []
    for width in sorted(by_width, reverse=True):
        group = by_width[width]
        count = -(-len(group) // profile.max_models_per_batch)  # ceil
        if workers > 1 and count % workers:
            count = min(len(group), count + workers - count % workers)
        batches += [sorted(group[i::count], key=lambda c: METHODS.index(c.method)) for i in range(count)]
    return batches


_worker_data: dict[tuple, Dataset] = {}


def run_key(cfg: RunConfig, profile: Profile, data_fingerprint: str, mode: str | None = None) -> str:
    """The cache key of one configuration: everything that decides its numbers, the data and
    the numerics mode (:func:`l2dlib.numerics.mode`: this process's unless ``mode``)."""
    mode = numerics.mode() if mode is None else mode
    return results.config_key(cfg.as_dict(profile) | {"data": data_fingerprint, "numerics": mode})


def run_in_process(
    cfgs: list[RunConfig],
    profile: Profile,
    data_dir: Path | None = None,
    results_dir: Path | None = None,
    device: str = "cpu",
    numerics_mode: str | None = None,
) -> BatchResult:
    """One batch in a worker process or cluster job (on a CPU: one thread); the data is made
    (CIFAR-10 features: read from their cache) once per process. ``numerics_mode``: the
    mode the run's keys were made in; a process that computes in another refuses."""
    if numerics_mode is not None and numerics.mode() != numerics_mode:
        raise RuntimeError(
            f"this process computes in numerics mode {numerics.mode()}, the run's keys are for "
            f"{numerics_mode}: give both the same ATEN_CPU_CAPABILITY, MKL_CBWR and L2D_NUMERICS"
        )
    if device == "cpu":
        torch.set_num_threads(1)
    return train_batch(cfgs, worker_data(profile, cfgs[0].data_seed, data_dir, results_dir, device), profile)


def worker_data(
    profile: Profile, data_seed: int | None, data_dir: Path | None, results_dir: Path | None, device: str = "cpu"
) -> Dataset:
    """The batch's data, made once per process."""
    key = (profile, data_seed, device)
    if key not in _worker_data:
        with warnings.catch_warnings():  # the parent process has said it once
            warnings.filterwarnings("ignore", message="the CIFAR-10 files", category=UserWarning)
            _worker_data[key] = load_data(profile, torch.device(device), data_dir, data_seed, results_dir)
    return _worker_data[key]


def cache_batch(
    batch: Sequence[RunConfig],
    res: BatchResult,
    data: Dataset,
    prof: Profile,
    results_dir: Path,
    device_text: str,
    git_commit: str,
) -> None:
    """Write each configuration's cache entry and its per-point estimates (atomically:
    concurrent jobs are safe; the points first, so an entry never lacks them)."""
    for c, (rows, bins, points), best, accuracy in zip(batch, res.evaluated, res.best_epochs, res.train_accuracies):
        key = run_key(c, prof, data.fingerprint)
        extra = {
            "best_epoch": best,
            "train_classifier_accuracy": accuracy,
            "bins": bins,
            "batch_size_models": len(batch),
            "batch_epochs_run": res.epochs_run,
            "batch_training_examples": len(data.y["train"]),
            "batch_wall_seconds": res.wall_seconds,
            "device": device_text,
            "git_commit": git_commit,
            "data_fingerprint": data.fingerprint,
        }
        path = results.cache_dir(results_dir, prof.dataset, c.study, prof.name) / f"{key}.json"
        results.write_points(path, points)
        results.write_cached(path, c.as_dict(prof), rows, extra)
