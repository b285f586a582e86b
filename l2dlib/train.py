"""One training loop for every model here: M stacked MLPs on MoG or one network on CIFAR-10.

SGD with Nesterov momentum and weight decay, a per-step cosine learning-rate schedule,
and per-model early stopping on the validation loss: a model stops after ``patience``
epochs without improvement and gets its best-validation state back. Once a model of a
stack has stopped it leaves the forward and backward passes (its weights still drift
under momentum and weight decay, but its best state is frozen). A model in a stack gets
the same bits as alone when the stack's output width is fixed by the model itself (the
runner does so) and its blocks are aligned (``models.ALIGN``: parameters padded, the last
partial batch of an epoch dropped, evaluation inputs padded to whole blocks), on one thread.
Stacked MLPs take their gradients by hand (``models.MLP.backward_by_hand``: autograd's
bits without its graph); the CIFAR-10 networks go through autograd.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm  # plain bars: no ipywidgets needed in notebooks

from .config import TrainConfig
from .losses import expert_correct, loss_terms_from_correct, mean_loss_grad
from .models import ALIGN, aligned


@dataclass
class Split:
    """A split's inputs x [N, ...] and labels y [N], shared by all models, and each
    model's expert predictions ``experts`` [M, N, J] (-1 pads a model with fewer experts)."""

    x: Tensor
    y: Tensor
    experts: Tensor


@dataclass
class TrainHistory:
    best_epoch: Tensor  # [M], 1-based epoch of the restored state
    best_val_loss: Tensor  # [M]
    epochs_run: int  # epochs until every model had stopped


Transform = Callable[[Tensor], Tensor]
Augment = Callable[[Tensor, torch.Generator], Tensor]


def per_model_loss(
    logits: Tensor, y: Tensor, correct: Tensor, methods: Sequence[str], weight: Tensor | None = None
) -> Tensor:
    """Mean surrogate loss of each model, [M]: logits [M, B, C], y [M, B] and expert
    correctness c = I[m_j = y] [M, B, J]; model m uses ``methods[m]``. ``weight`` [B]
    (0 or 1) masks padding rows out of the mean.

    Models are taken in runs of equal method (slices, no copies): order the models by
    method for speed.
    """
    parts = []
    for method, run in _method_runs(methods):
        terms = loss_terms_from_correct(logits[run], y[run], correct[run], method)
        parts.append(terms.mean(-1) if weight is None else (terms * weight).sum(-1) / weight.sum())
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _method_runs(methods: Sequence[str]) -> list[tuple[str, slice]]:
    """(method, the slice of the stack it covers) per run of equal methods, in order."""
    runs, start = [], 0
    for method, run in itertools.groupby(methods):
        stop = start + len(list(run))
        runs.append((method, slice(start, stop)))
        start = stop
    return runs


class SGD:
    """The update of ``torch.optim.SGD(..., foreach=True)`` (momentum, optional Nesterov,
    weight decay; no dampening), written out with the foreach kernels it calls, in its order:
    the same bits (tested against it). Without its per-step Python (0.24 ms a MoG step,
    5-9% of one: benchmarks/mog_step.py) and without the 1.5 s import of ``torch._dynamo`` that building a torch
    optimiser costs every worker process. Parameters without a gradient are left alone."""

    def __init__(self, params, *, momentum: float, nesterov: bool, weight_decay: float) -> None:
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum")
        self.params = list(params)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.buffers: dict[int, Tensor] = {}  # per parameter (index), from its first step

    @torch.no_grad()
    def step(self, lr: float) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        if self.weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum != 0:
            if all(i in self.buffers for i in live):
                bufs = [self.buffers[i] for i in live]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads, alpha=1)
            else:  # torch's first step (or a parameter's first gradient): one at a time
                bufs = []
                for i, g in zip(live, grads):
                    if i not in self.buffers:
                        self.buffers[i] = g.detach().clone()
                    else:
                        self.buffers[i].mul_(self.momentum).add_(g, alpha=1)
                    bufs.append(self.buffers[i])
            if self.nesterov:
                torch._foreach_add_(grads, bufs, alpha=self.momentum)
            else:
                grads = bufs
        torch._foreach_add_(params, grads, alpha=-lr)


def per_model_loss_grad(logits: Tensor, y: Tensor, correct: Tensor, methods: Sequence[str]) -> Tensor:
    """d/d logits of ``per_model_loss(logits, y, correct, methods).sum()`` [M, B, C] (the
    trainer's loss; :func:`l2dlib.losses.mean_loss_grad` per run of one method)."""
    parts = [mean_loss_grad(logits[run], y[run], correct[run], method) for method, run in _method_runs(methods)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@torch.no_grad()
def predict(
    model: nn.Module,
    x: Tensor,
    *,
    preprocess: Transform | None = None,
    batch_size: int = 8192,
    amp: bool = False,
    models: Tensor | None = None,
) -> Tensor:
    """Logits [M, N, C] of every model (or of the stacked ``models`` [M'] only) on shared
    inputs x [N, ...], in eval mode, in chunks of ``batch_size`` rows, each zero-padded to a
    multiple of :data:`~l2dlib.models.ALIGN` rows and cut back (see there: so a model's
    logits do not depend on how many models share the stack)."""
    was_training = model.training
    model.eval()
    count = model.num_models if models is None else len(models)
    outs = []
    try:
        for chunk in torch.split(x, batch_size):
            rows = chunk.shape[0]
            if rows % ALIGN:
                chunk = torch.cat([chunk, chunk.new_zeros(aligned(rows) - rows, *chunk.shape[1:])])
            xb = preprocess(chunk) if preprocess else chunk
            xb = xb.unsqueeze(0).expand(count, *xb.shape)
            with _autocast(x.device, amp):
                outs.append((model(xb) if models is None else model(xb, models)).float()[:, :rows])
    finally:
        model.train(was_training)
    return torch.cat(outs, dim=1)


@torch.no_grad()
def split_loss(
    model: nn.Module,
    split: Split,
    methods: Sequence[str],
    *,
    preprocess: Transform | None = None,
    batch_size: int = 8192,
    amp: bool = False,
    logits: Tensor | None = None,
) -> Tensor:
    """Each model's mean surrogate loss on all of ``split`` [M], in eval mode (float32
    logits; or the given ``logits`` [M, N, C] of the split, from :func:`predict`)."""
    if logits is None:
        logits = predict(model, split.x, preprocess=preprocess, batch_size=batch_size, amp=amp)
    y = split.y.unsqueeze(0).expand(logits.shape[0], -1)
    return per_model_loss(logits, y, expert_correct(split.y, split.experts), methods)


def train(
    model: nn.Module,
    train_split: Split,
    val_split: Split,
    *,
    methods: Sequence[str],
    seeds: Sequence[int],
    config: TrainConfig = TrainConfig(),
    preprocess: Transform | None = None,
    augment: Augment | None = None,
    progress: bool = True,
) -> TrainHistory:
    """Train the ``model.num_models`` models in place and restore each one's best state.

    ``methods[m]`` is model m's surrogate, ``seeds[m]`` seeds its batch order and
    augmentation. ``preprocess`` maps raw inputs to network inputs (e.g. uint8 images to
    normalised floats); ``augment`` is applied to training batches only, after it.
    """
    num_models = model.num_models
    if not len(methods) == len(seeds) == num_models == train_split.experts.shape[0]:
        raise ValueError(
            f"{num_models} models but {len(methods)} methods, {len(seeds)} seeds and "
            f"expert predictions for {train_split.experts.shape[0]}"
        )
    device = train_split.x.device
    n = train_split.x.shape[0]
    if n < config.batch_size:
        raise ValueError(f"the training split has {n} examples, fewer than one batch of {config.batch_size}")
    # The last partial batch of each epoch is dropped: every step has the same batch size,
    # so a stacked model's blocks stay aligned (models.ALIGN) and its bits are its own.
    steps_per_epoch = n // config.batch_size
    total_steps = config.max_epochs * steps_per_epoch
    opt = SGD(model.parameters(), momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay)
    step = 0  # the cosine schedule's, per step (the rate LambdaLR would set: base x factor)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    if augment and num_models > 1:  # one augmentation stream would be shared by the stack
        raise ValueError(f"augmentation is supported for one model at a time, got a stack of {num_models}")
    aug_gen = torch.Generator(device=device).manual_seed(int(seeds[0])) if augment else None

    best_loss = torch.full((num_models,), math.inf, device=device)
    best_epoch = torch.zeros(num_models, dtype=torch.long, device=device)
    since_best = torch.zeros(num_models, dtype=torch.long, device=device)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # Expert correctness is all the losses need; flattened to [M*N, J] so a batch is one
    # index_select (several times faster on CPU than gather over [M, N, J]).
    num_experts = train_split.experts.shape[-1]
    correct_flat = expert_correct(train_split.y, train_split.experts).reshape(-1, num_experts)
    row_offset = (torch.arange(num_models, device=device) * n).unsqueeze(1)  # [M, 1]
    # The validation split, zero-padded to a multiple of ALIGN rows once; padding rows are
    # masked out of the loss.
    n_val = val_split.x.shape[0]
    pad = aligned(n_val) - n_val
    val_x = torch.cat([val_split.x, val_split.x.new_zeros(pad, *val_split.x.shape[1:])])
    val_y = torch.nn.functional.pad(val_split.y, (0, pad)).unsqueeze(0).expand(num_models, -1)
    val_correct = torch.nn.functional.pad(expert_correct(val_split.y, val_split.experts), (0, 0, 0, pad))
    val_weight = (torch.arange(n_val + pad, device=device) < n_val).float()

    bar = tqdm(
        range(1, config.max_epochs + 1),
        desc=f"training {num_models} model(s)",
        unit="epoch",
        leave=False,
        disable=not progress,
    )
    by_hand = hasattr(model, "backward_by_hand") and not config.amp
    active = list(range(num_models))  # models still training, in stack order
    epoch = 0
    try:
        for epoch in bar:
            model.train()
            # Only models still training take part: stopped ones cost nothing (a subset of a
            # stack is a slice of its weights; CIFAR's single model never needs one).
            subset = None if len(active) == num_models else torch.tensor(active, device=device)
            run_methods = [methods[m] for m in active]
            offsets = row_offset if subset is None else row_offset[subset]
            perms = torch.stack([torch.randperm(n, generator=gens[m]) for m in active]).to(device)
            for idx in torch.split(
                perms[:, : steps_per_epoch * config.batch_size], config.batch_size, dim=1
            ):  # [M', B]
                xb = train_split.x[idx]
                if preprocess:
                    xb = preprocess(xb.flatten(0, 1)).unflatten(0, idx.shape)
                if augment:
                    xb = augment(xb.flatten(0, 1), aug_gen).unflatten(0, idx.shape)
                cb = correct_flat.index_select(0, (idx + offsets).flatten()).unflatten(0, idx.shape)
                yb = train_split.y[idx]
                if by_hand:  # the MLP's gradients without autograd's graph (the same bits)
                    grad = functools.partial(per_model_loss_grad, y=yb, correct=cb, methods=run_methods)
                    model.backward_by_hand(xb, grad, subset)
                else:
                    with _autocast(device, config.amp):
                        logits = model(xb) if subset is None else model(xb, subset)
                    loss = per_model_loss(logits.float(), yb, cb, run_methods).sum()
                    model.zero_grad(set_to_none=True)
                    loss.backward()
                opt.step(config.lr * (0.5 * (1 + math.cos(math.pi * step / total_steps))))
                step += 1

            val_logits = predict(
                model, val_x, preprocess=preprocess, batch_size=config.eval_batch_size, amp=config.amp, models=subset
            )
            val_loss = torch.full((num_models,), math.inf, device=device)  # stopped models: no change
            val_loss[active] = per_model_loss(
                val_logits,
                val_y[: len(active)],
                val_correct if subset is None else val_correct[subset],
                run_methods,
                weight=val_weight,
            )
            running = since_best < config.patience
            improved = running & (val_loss < best_loss)
            best_loss = torch.where(improved, val_loss, best_loss)
            best_epoch = torch.where(improved, epoch, best_epoch)
            since_best = torch.where(improved, 0, since_best + running.long())
            _keep_best(best_state, model.state_dict(), improved)
            active = (since_best < config.patience).nonzero().flatten().tolist()  # one host sync
            bar.set_postfix(active=len(active))
            if not active:
                break
    finally:  # also on Ctrl-C: no stale bar in notebooks
        bar.close()
    if not config.restore_best:  # the state after the last epoch, with its validation loss
        return TrainHistory(torch.full((num_models,), epoch), val_loss.cpu(), epoch)
    never = (best_epoch == 0).nonzero().flatten().tolist()
    if never:
        warnings.warn(
            f"model(s) {never} never improved on the validation loss (non-finite?); their initial weights are kept",
            stacklevel=2,
        )
    model.load_state_dict(best_state)
    return TrainHistory(best_epoch.cpu(), best_loss.cpu(), epoch)


def _keep_best(best: dict[str, Tensor], current: dict[str, Tensor], improved: Tensor) -> None:
    """Copy current into best for improved models (stacked tensors have a leading model dim)."""
    if improved.numel() == 1:
        if bool(improved):
            for k, v in current.items():
                best[k].copy_(v)
        return
    for k, v in current.items():
        mask = improved.view(-1, *([1] * (v.dim() - 1)))
        best[k].copy_(torch.where(mask, v, best[k]))


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")
