"""Pointwise (conditional) risks of the surrogates, for checking Eqs. 1-3 numerically.

At one x, with eta_k = P(y = k | x) and q_j = P(m_j = y | x), the expected softmax loss is
Eq. 4 of the paper's appendix,

    L_SM(g) = - sum_k eta_k log p_k - sum_j q_j log p_perp_j,   p = softmax(g),

and the expected OvA loss (logistic phi) is

    L_OvA(g) = sum_k [eta_k phi(g_k) + (1 - eta_k) phi(-g_k)]
             + sum_j [q_j phi(g_perp_j) + (1 - q_j) phi(-g_perp_j)].

The asymmetric softmax (Cao et al., 2023, one binary term per expert) has

    L_ASM(g) = - sum_k eta_k log softmax_K(g)_k
               - sum_j [q_j log psi_j + (1 - q_j) log(1 - psi_j)],
    psi_j = e^{g_perp_j} / (e^{g_perp_j} + sum_k e^{g_k} - max_k e^{g_k}).

The decoupled surrogate (Montreuil et al., 2026) has a class softmax and a sigmoid per expert,

    L_DEC(g) = - sum_k eta_k log softmax_K(g)_k
               + beta sum_j [q_j phi(g_perp_j) + (1 - q_j) phi(-g_perp_j)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .losses import DECOUPLED_BETA, asymmetric_logits, check_method


def pointwise_risk(g: Tensor, eta: Tensor, q: Tensor, method: str) -> Tensor:
    """Expected surrogate loss at one x: g [K+J], eta [K] (sums to 1), q [J] in [0, 1]."""
    check_method(method)
    k = eta.shape[-1]
    if method == "softmax":
        logp = torch.log_softmax(g, -1)
        return -(eta * logp[..., :k]).sum(-1) - (q * logp[..., k:]).sum(-1)
    phi = lambda z: F.softplus(-z)
    if method == "decoupled":
        h = g[..., k:]
        class_risk = -(eta * torch.log_softmax(g[..., :k], -1)).sum(-1)
        return class_risk + DECOUPLED_BETA * (q * phi(h) + (1 - q) * phi(-h)).sum(-1)
    if method == "asymmetric_softmax":
        z = asymmetric_logits(g, k)  # psi_j = sigmoid(z_j)
        class_risk = -(eta * torch.log_softmax(g[..., :k], -1)).sum(-1)
        return class_risk + (q * phi(z) + (1 - q) * phi(-z)).sum(-1)
    targets = torch.cat([eta, q], -1)
    return (targets * phi(g) + (1 - targets) * phi(-g)).sum(-1)


def minimal_risk(eta: Tensor, q: Tensor, method: str) -> Tensor:
    """min over g of :func:`pointwise_risk`, in closed form (eta [..., K], q [..., J]): the
    surrogate's Bayes risk at one x. Softmax: the optimum is Eq. 1, p = [eta, q] / Z with
    Z = 1 + sum_j q_j, so the risk is -sum_k eta_k log(eta_k / Z) - sum_j q_j log(q_j / Z).
    OvA: each logistic term at its optimum is a binary entropy, sum_k H(eta_k) + sum_j
    H(q_j). Asymmetric softmax: the class softmax gives the entropy of eta, and each psi_j
    can take any value in (0, 1) whatever the class scores, so H(eta) + sum_j H(q_j).
    Decoupled: the heads are independent, so H(eta) + beta sum_j H(q_j)."""
    check_method(method)
    xlogy = torch.special.xlogy
    if method == "softmax":  # log(t / z) as log t - log z: a tiny t / z would underflow to 0
        z = 1 + q.sum(-1)
        return -xlogy(eta, eta).sum(-1) - xlogy(q, q).sum(-1) + (eta.sum(-1) + q.sum(-1)) * torch.log(z)
    binary = -(xlogy(q, q) + xlogy(1 - q, 1 - q)).sum(-1)
    if method == "ova":
        return -(xlogy(eta, eta) + xlogy(1 - eta, 1 - eta)).sum(-1) + binary
    if method == "decoupled":
        return -xlogy(eta, eta).sum(-1) + DECOUPLED_BETA * binary
    return -xlogy(eta, eta).sum(-1) + binary


def minimise_pointwise_risk(eta: Tensor, q: Tensor, method: str, *, steps: int = 200) -> Tensor:
    """The minimiser g* [K+J] of :func:`pointwise_risk`, by L-BFGS in float64 from g = 0.

    The softmax risk is invariant to adding a constant to every g; the returned g* is
    one of the minimisers (the estimators are invariant too).
    """
    eta, q = eta.double(), q.double()
    g = torch.zeros(eta.shape[-1] + q.shape[-1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [g], lr=1.0, max_iter=steps, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        risk = pointwise_risk(g, eta, q, method)
        risk.backward()
        return risk

    for _ in range(5):  # restarts: the asymmetric risk has a kink where the top class changes
        opt.step(closure)
    return g.detach()


def softmax_optimum(eta: Tensor, q: Tensor) -> Tensor:
    """Eq. 1 (and the class part of it): the softmax probabilities at the optimum,
    [eta_1..eta_K, q_1..q_J] / (1 + sum_j q_j)."""
    return torch.cat([eta, q], -1) / (1 + q.sum(-1, keepdim=True))


def check_equations(eta: Tensor, q: Tensor):
    """Minimise both pointwise risks and compare the minimisers with Eqs. 1-3.

    Returns a DataFrame with one row per expert: the true q_j, the softmax probability
    p*_perp_j next to Eq. 1's q_j / (1 + sum q), and the estimates of Eq. 2 (softmax),
    Eq. 3 (OvA), the asymmetric softmax and the decoupled surrogate read off the minimisers.
    """
    import pandas as pd

    from .estimators import expert_correctness

    k = eta.shape[-1]
    g_sm = minimise_pointwise_risk(eta, q, "softmax")
    g_ova = minimise_pointwise_risk(eta, q, "ova")
    g_asm = minimise_pointwise_risk(eta, q, "asymmetric_softmax")
    g_dec = minimise_pointwise_risk(eta, q, "decoupled")
    p = torch.softmax(g_sm, -1)
    return pd.DataFrame(
        {
            "q_j": q.double().numpy(),
            "p*_perp_j (softmax minimiser)": p[k:].numpy(),
            "Eq. 1: q_j / (1 + sum q)": softmax_optimum(eta.double(), q.double())[k:].numpy(),
            "Eq. 2 estimate": expert_correctness(g_sm.unsqueeze(0), k, "softmax")[0].double().numpy(),
            "Eq. 3 estimate": expert_correctness(g_ova.unsqueeze(0), k, "ova")[0].double().numpy(),
            "asymmetric softmax estimate": expert_correctness(g_asm.unsqueeze(0), k, "asymmetric_softmax")[0]
            .double()
            .numpy(),
            "decoupled estimate": expert_correctness(g_dec.unsqueeze(0), k, "decoupled")[0].double().numpy(),
        }
    )


def shifted_estimates(g: Tensor, num_classes: int, shifts, *, scores: str = "classes", expert: int = 0):
    """Eq. 2 and Eq. 3 after moving scores of g by each shift: ``scores="classes"`` lowers
    every class score by it (a less confident classifier), ``"expert"`` raises expert
    ``expert``'s deferral score by it.

    At fixed scores Eq. 2 is exp(g_perp_j) / sum_k exp(g_k): expert j's estimate depends on
    its own score and the class scores only. Lowering the class scores multiplies every
    softmax estimate by e^shift (soon above 1) and leaves every OvA estimate as it was;
    raising one expert's score moves that expert's estimate alone under either read-out.
    """
    import pandas as pd

    from .estimators import expert_correctness

    if scores not in ("classes", "expert"):
        raise ValueError(f"scores must be 'classes' or 'expert', got {scores!r}")
    rows = []
    for shift in shifts:
        h = g.clone()
        if scores == "classes":
            h[:num_classes] -= shift
        else:
            h[num_classes + expert] += shift
        sm = expert_correctness(h.unsqueeze(0), num_classes, "softmax")[0]
        ova = expert_correctness(h.unsqueeze(0), num_classes, "ova")[0]
        for j in range(g.shape[-1] - num_classes):
            rows.append(
                {"shift": float(shift), "expert": j, "softmax (Eq. 2)": float(sm[j]), "OvA (Eq. 3)": float(ova[j])}
            )
    return pd.DataFrame(rows)
