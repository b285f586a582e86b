"""Surrogate losses for multi-expert learning to defer.

All take ``logits`` [..., K+J] (K class scores g_1..g_K, then J deferral scores
g_perp_1..g_perp_J), labels ``y`` [...] and expert predictions ``expert_preds`` [..., J].
A negative expert prediction marks a padded (absent) expert: it is never correct.
Logs are natural. ``softmax_loss``, ``ova_loss``, ``asymmetric_softmax_loss`` and
``decoupled_loss`` return
the mean over all leading dimensions; ``loss_terms`` returns per-sample values and ``loss_terms_from_correct``
takes the expert-correctness indicators c_j = I[m_j = y] directly (the trainer's path).

The losses are computed in rearranged but exactly equal forms with few reductions per
row (see each function); tests check them against the written-out formulas.
``mean_loss_grad`` is the gradient of the batch-mean loss with respect to the logits,
written out (the trainer's MLP path); tests check it against autograd's, bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import METHODS


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")


def at_least_float32(logits: Tensor) -> Tensor:
    """bf16/fp16 logits (from autocast) become float32; float64 stays float64."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def expert_correct(y: Tensor, expert_preds: Tensor) -> Tensor:
    """c_j = I[m_j = y] as float32, [..., J]."""
    return (expert_preds == y.unsqueeze(-1)).to(torch.float32)


# ---------------------------------------------------------------- the losses, as written in the papers


def softmax_loss(logits: Tensor, y: Tensor, expert_preds: Tensor) -> Tensor:
    """Softmax surrogate (Mozannar & Sontag, extended to J experts), batch mean.

    -log p_y - sum_j I[m_j = y] log p_perp_j, p = softmax over all K+J scores.
    logits [N, K+J], y [N], expert_preds [N, J].
    """
    return loss_terms(logits, y, expert_preds, "softmax").mean()


def ova_loss(logits: Tensor, y: Tensor, expert_preds: Tensor) -> Tensor:
    """One-vs-all surrogate (Verma & Nalisnick, logistic phi), batch mean.

    phi[g_y] + sum_{k != y} phi[-g_k] + sum_j phi[-g_perp_j]
    + sum_j I[m_j = y] (phi[g_perp_j] - phi[-g_perp_j]),  phi[z] = log(1 + exp(-z)).
    logits [N, K+J], y [N], expert_preds [N, J].
    """
    return loss_terms(logits, y, expert_preds, "ova").mean()


def asymmetric_softmax_loss(logits: Tensor, y: Tensor, expert_preds: Tensor) -> Tensor:
    """Asymmetric softmax surrogate (Cao et al., 2023; one binary term per expert), batch mean.

    -log softmax_K(g)_y - sum_j [I[m_j = y] log psi_j + I[m_j != y] log(1 - psi_j)],
    psi_j = e^{g_perp_j} / (e^{g_perp_j} + sum_k e^{g_k} - max_k e^{g_k}).
    logits [N, K+J], y [N], expert_preds [N, J].
    """
    return loss_terms(logits, y, expert_preds, "asymmetric_softmax").mean()


#: The decoupled surrogate's weight on each expert's logistic term, beta = lambda / J held
#: fixed as J grows: the regime in which, their abstract says, Montreuil et al. (2026) bound
#: the excess risk with a constant that does not grow with J. 1 weighs each expert's term as
#: the classifier's.
DECOUPLED_BETA = 1.0


def decoupled_loss(logits: Tensor, y: Tensor, expert_preds: Tensor) -> Tensor:
    """Decoupled surrogate (Montreuil et al., 2026), batch mean: a softmax over the K
    classes and an independent sigmoid per expert for "expert j is right",

    -log softmax_K(g)_y + beta sum_j [-I[m_j = y] log sigmoid(g_perp_j)
                                      - I[m_j != y] log(1 - sigmoid(g_perp_j))],

    beta = :data:`DECOUPLED_BETA`. logits [N, K+J], y [N], expert_preds [N, J].
    """
    return loss_terms(logits, y, expert_preds, "decoupled").mean()


def loss_terms_from_correct(logits: Tensor, y: Tensor, correct: Tensor, method: str) -> Tensor:
    """Per-sample loss [...] from logits [..., K+J], y [...] and c = I[m_j = y] [..., J]."""
    _check(logits, y, correct, method)
    return _FORMS[method][0](logits, y, correct)


def _check(logits: Tensor, y: Tensor, correct: Tensor, method: str) -> None:
    check_method(method)
    if logits.shape[-1] - correct.shape[-1] < 2:
        raise ValueError(
            f"logits have {logits.shape[-1]} columns for J={correct.shape[-1]} experts: "
            "expected K+J columns with K >= 2"
        )
    if y.shape != logits.shape[:-1] or correct.shape[:-1] != logits.shape[:-1]:
        raise ValueError(
            f"shape mismatch: logits {tuple(logits.shape)}, y {tuple(y.shape)}, experts {tuple(correct.shape)}"
        )


def loss_terms(logits: Tensor, y: Tensor, expert_preds: Tensor, method: str) -> Tensor:
    """Per-sample surrogate loss [...] for ``method`` in ``l2dlib.METHODS``."""
    return loss_terms_from_correct(logits, y, expert_correct(y, expert_preds), method)


# ---------------------------------------------------------------- fast, exactly equal forms
# One row reduction each instead of a full log_softmax (about 10x slower on CPU over a
# short last dimension); tests compare values and gradients with the formulas above.


def _linear_part(g: Tensor, y: Tensor, correct: Tensor) -> Tensor:
    """g_y + sum_j c_j g_perp_j, shared by both losses."""
    num_classes = g.shape[-1] - correct.shape[-1]
    g_y = g.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return g_y + (correct * g[..., num_classes:]).sum(-1)


def _logsumexp_last(g: Tensor) -> Tensor:
    # Same value and gradient as torch.logsumexp(g, -1) for finite g (shifting by a constant
    # max leaves both unchanged); this composition is ~25% faster in the trainer's hot path
    # on one CPU thread (0.25 vs 0.33 ms forward + backward for [16, 256, 12]).
    top = g.detach().amax(-1, keepdim=True)
    return (g - top).exp().sum(-1).log() + top.squeeze(-1)


def _softmax_terms(logits: Tensor, y: Tensor, correct: Tensor) -> Tensor:
    # -log p_y - sum_j c_j log p_perp_j with log p = g - lse(g)
    #   = (1 + sum_j c_j) lse(g) - g_y - sum_j c_j g_perp_j
    g = at_least_float32(logits)
    return (1 + correct.sum(-1)) * _logsumexp_last(g) - _linear_part(g, y, correct)


def _ova_terms(logits: Tensor, y: Tensor, correct: Tensor) -> Tensor:
    # phi[z] = softplus(-z) = softplus(z) - z, so every column costs softplus(g) and the
    # positive ones (the label, the correct experts) subtract their score:
    #   sum_all softplus(g) - g_y - sum_j c_j g_perp_j
    g = at_least_float32(logits)
    return F.softplus(g).sum(-1) - _linear_part(g, y, correct)


def asymmetric_logits(logits: Tensor, num_classes: int) -> Tensor:
    """z_j = g_perp_j - log(sum_k e^{g_k} - max_k e^{g_k}), [..., J] (classes k <= K).

    The asymmetric softmax of Cao et al. (2023) gives the expert the probability
    psi_perp = e^{g_perp} / (e^{g_perp} + sum_k e^{g_k} - max_k e^{g_k}) = sigmoid(z),
    bounded in (0, 1). With J experts we give each expert its own such probability,
    against the classes only (the original treats one expert).
    """
    g = at_least_float32(logits)
    g_class = g[..., :num_classes]
    # log(sum - max): log-sum-exp over the classes with the (first) largest one left out
    top = torch.nn.functional.one_hot(g_class.argmax(-1), num_classes).to(torch.bool)
    rest = torch.logsumexp(g_class.masked_fill(top, float("-inf")), dim=-1, keepdim=True)
    return g[..., num_classes:] - rest


def _asymmetric_softmax_terms(logits: Tensor, y: Tensor, correct: Tensor) -> Tensor:
    # -log softmax_K(g)_y - sum_j [c_j log psi_j + (1 - c_j) log(1 - psi_j)], psi_j = sigmoid(z_j)
    #   = lse_K(g) - g_y + sum_j [softplus(z_j) - c_j z_j]
    num_classes = logits.shape[-1] - correct.shape[-1]
    g = at_least_float32(logits)
    g_class = g[..., :num_classes]
    z = asymmetric_logits(g, num_classes)
    class_nll = _logsumexp_last(g_class) - g_class.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return class_nll + (F.softplus(z) - correct * z).sum(-1)


def _decoupled_terms(logits: Tensor, y: Tensor, correct: Tensor) -> Tensor:
    # -log softmax_K(g)_y + beta sum_j [-c_j log sigmoid(h_j) - (1 - c_j) log(1 - sigmoid(h_j))]
    #   = lse_K(g) - g_y + beta sum_j [softplus(h_j) - c_j h_j]
    num_classes = logits.shape[-1] - correct.shape[-1]
    g = at_least_float32(logits)
    g_class, h = g[..., :num_classes], g[..., num_classes:]
    class_nll = _logsumexp_last(g_class) - g_class.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return class_nll + DECOUPLED_BETA * (F.softplus(h) - correct * h).sum(-1)


# ---------------------------------------------------------------- gradients by hand
# The trainer's MLP steps skip autograd (models.MLP.backward_by_hand). The gradient of the
# batch-mean loss is written out as the very kernels autograd runs backward through the
# forms above, on tensors of the same strides, with the same sums (so the same bits in
# either numerics mode; tested), and fewer of them: the loss value itself is never needed.


def mean_loss_grad(logits: Tensor, y: Tensor, correct: Tensor, method: str) -> Tensor:
    """d/d logits of ``loss_terms_from_correct(logits, y, correct, method).mean(-1).sum()``,
    [M, B, C] for float32 (or float64) logits [M, B, C], y [M, B] and c = I[m_j = y]
    [M, B, J] of the logits' dtype."""
    _check(logits, y, correct, method)
    # mean's backward hands each row 1 / B, as a contiguous tensor (strides pick kernel paths)
    upstream = torch.full(logits.shape[:-1], 1.0, dtype=logits.dtype, device=logits.device) / logits.shape[-2]
    return _FORMS[method][1](logits, y, correct, upstream)


def _linear_grad(logits: Tensor, y: Tensor, correct: Tensor, upstream: Tensor) -> Tensor:
    """upstream x d(g_y + sum_j c_j g_perp_j)/dg: upstream at y and at the correct experts."""
    positive = torch.zeros_like(logits).scatter_(-1, y.unsqueeze(-1), 1.0)
    positive[..., logits.shape[-1] - correct.shape[-1] :] = correct
    return upstream.unsqueeze(-1) * positive


def _softmax_grad(logits: Tensor, y: Tensor, correct: Tensor, upstream: Tensor) -> Tensor:
    # (1 + sum_j c_j) lse(g) - linear part: autograd scales upstream by (1 + sum_j c_j),
    # divides by the sum of exponentials (log's backward), multiplies by each exponential
    # (exp's), then adds the linear part's (negated) gradient.
    e = _exp_underflowing_to_zero(logits - logits.amax(-1, keepdim=True))
    scale = (upstream * (1 + correct.sum(-1))) / e.sum(-1)
    return scale.unsqueeze(-1) * e - _linear_grad(logits, y, correct, upstream)


# Below these, exp is exactly 0 (float32 underflows near -104, float64 near -745).
_EXP_UNDERFLOW = {torch.float32: -200.0, torch.float64: -1500.0}


def _exp_underflowing_to_zero(x: Tensor) -> Tensor:
    """``x.exp()`` bit for bit, for x finite or NaN. exp of a value below the underflow is
    exactly 0, but the kernels take a slow path for it (exp over a stack's masked columns,
    -1e4: 4x slower portably, 20x natively), so those values get exp(0) times 0 instead:
    a native MoG step 17% faster, a portable one no slower (measured)."""
    limit = _EXP_UNDERFLOW.get(x.dtype)
    if limit is None:
        return x.exp()
    kept = (x > limit).to(x.dtype)
    return (x * kept).exp() * kept


def _ova_grad(logits: Tensor, y: Tensor, correct: Tensor, upstream: Tensor) -> Tensor:
    # sum_all softplus(g) - linear part: softplus's own backward kernel, on the upstream
    # expanded over the columns as sum's backward hands it over.
    spread = upstream.unsqueeze(-1).expand(logits.shape)
    return torch.ops.aten.softplus_backward(spread, logits, 1.0, 20.0) - _linear_grad(logits, y, correct, upstream)


def _class_nll_grad(logits: Tensor, y: Tensor, num_classes: int, upstream: Tensor) -> Tensor:
    """upstream x d(lse_K(g) - g_y)/dg over the class columns, [..., K]."""
    g_class = logits[..., :num_classes]
    e = (g_class - g_class.amax(-1, keepdim=True)).exp()
    label = torch.zeros_like(e).scatter_(-1, y.unsqueeze(-1), 1.0)
    return (upstream / e.sum(-1)).unsqueeze(-1) * e - upstream.unsqueeze(-1) * label


def _asymmetric_softmax_grad(logits: Tensor, y: Tensor, correct: Tensor, upstream: Tensor) -> Tensor:
    # lse_K(g) - g_y + sum_j [softplus(z_j) - c_j z_j], z_j = g_perp_j - rest: the experts'
    # terms reach the classes through rest (logsumexp's backward, the largest class masked).
    num_classes = logits.shape[-1] - correct.shape[-1]
    g_class = logits[..., :num_classes]
    top = torch.nn.functional.one_hot(g_class.argmax(-1), num_classes).to(torch.bool)
    masked = g_class.masked_fill(top, float("-inf"))
    rest = torch.logsumexp(masked, dim=-1, keepdim=True)
    z = logits[..., num_classes:] - rest
    spread = upstream.unsqueeze(-1).expand(z.shape)
    grad_z = torch.ops.aten.softplus_backward(spread, z, 1.0, 20.0) - spread * correct
    through_rest = ((-grad_z).sum(-1, keepdim=True) * (masked - rest).exp()).masked_fill(top, 0)
    return torch.cat([_class_nll_grad(logits, y, num_classes, upstream) + through_rest, grad_z], -1)


def _decoupled_grad(logits: Tensor, y: Tensor, correct: Tensor, upstream: Tensor) -> Tensor:
    # lse_K(g) - g_y + beta sum_j [softplus(h_j) - c_j h_j]
    num_classes = logits.shape[-1] - correct.shape[-1]
    weight = upstream * DECOUPLED_BETA
    h = logits[..., num_classes:]
    spread = weight.unsqueeze(-1).expand(h.shape)
    experts = torch.ops.aten.softplus_backward(spread, h, 1.0, 20.0) - spread * correct
    return torch.cat([_class_nll_grad(logits, y, num_classes, upstream), experts], -1)


# Per method: its per-sample terms, and the gradient of their batch mean by hand.
_FORMS = {
    "softmax": (_softmax_terms, _softmax_grad),
    "ova": (_ova_terms, _ova_grad),
    "asymmetric_softmax": (_asymmetric_softmax_terms, _asymmetric_softmax_grad),
    "decoupled": (_decoupled_terms, _decoupled_grad),
}
assert set(_FORMS) == set(METHODS)
