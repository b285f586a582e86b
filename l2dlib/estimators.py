"""From the K+J scores to expert-correctness estimates, deferral and system predictions.

The model emits ``logits`` [N, K+J]: class scores g_1..g_K then deferral scores
g_perp_1..g_perp_J.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .losses import asymmetric_logits, at_least_float32, check_method


def expert_correctness(logits: Tensor, num_classes: int, method: str) -> Tensor:
    """Raw estimates of P(m_j = y | x), [N, J].

    softmax (Eq. 2): p_perp_j / (1 - sum_j' p_perp_j'), with p = softmax(logits). Since
    1 - sum_j' p_perp_j' is the softmax mass on the K classes, this equals
    exp(g_perp_j - logsumexp(g_1..g_K)), which we compute that way for stability.
    The value is not capped: it exceeds 1 whenever g_perp_j beats logsumexp of the classes.

    ova (Eq. 3): sigmoid(g_perp_j), always in (0, 1).

    asymmetric_softmax: e^{g_perp_j} / (e^{g_perp_j} + sum_k e^{g_k} - max_k e^{g_k})
    (Cao et al., 2023, per expert), always in (0, 1).

    decoupled: sigmoid(g_perp_j), the expert's own head (Montreuil et al., 2026), in (0, 1).
    """
    check_method(method)
    _check_columns(logits, num_classes)
    g = at_least_float32(logits)
    g_defer = g[..., num_classes:]
    if method == "softmax":
        return torch.exp(g_defer - torch.logsumexp(g[..., :num_classes], dim=-1, keepdim=True))
    if method == "asymmetric_softmax":
        return torch.sigmoid(asymmetric_logits(g, num_classes))
    return torch.sigmoid(g_defer)  # ova, decoupled


def defer(logits: Tensor, num_classes: int, method: str) -> Tensor:
    """Rejector r(x) [N]: 0 = the classifier predicts, j in 1..J = defer to expert j.

    The augmented-action methods defer to argmax_j g_perp_j when it beats max_k g_k.
    Softmax and sigmoid are monotone in the score, so the same rule serves softmax and OvA;
    for the asymmetric softmax, g_perp_j > max_k g_k is exactly psi_j > max_k
    softmax_K(g)_k (Cao et al., 2023). The decoupled surrogate's heads live on two scales,
    so it compares probabilities, the Bayes rule read off its heads: defer when
    max_j sigmoid(g_perp_j) > max_k softmax_K(g)_k (in logs, as -softplus(-g_perp_j)
    against max_k g_k - logsumexp_k g_k).
    """
    check_method(method)
    _check_columns(logits, num_classes)
    g_class, g_defer = logits[..., :num_classes], logits[..., num_classes:]
    if method == "decoupled":
        g_class, g_defer = at_least_float32(g_class), at_least_float32(g_defer)
        best_class = g_class.max(-1).values - torch.logsumexp(g_class, -1)
        best_defer, expert = (-F.softplus(-g_defer)).max(-1)
    else:
        best_class = g_class.max(-1).values
        best_defer, expert = g_defer.max(-1)
    return torch.where(best_defer > best_class, expert + 1, torch.zeros_like(expert))


def system_predictions(logits: Tensor, expert_preds: Tensor, num_classes: int, method: str) -> Tensor:
    """The L2D system's prediction [N]: classifier argmax, or the chosen expert's label."""
    _check_columns(logits, num_classes)
    r = defer(logits, num_classes, method)
    classifier = logits[..., :num_classes].argmax(-1)
    chosen = expert_preds.gather(-1, (r - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(r == 0, classifier, chosen)


def _check_columns(logits: Tensor, num_classes: int) -> None:
    if logits.shape[-1] <= num_classes:
        raise ValueError(f"logits have {logits.shape[-1]} columns: expected K+J with K={num_classes}, J >= 1")
