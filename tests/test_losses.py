"""The surrogates against their papers' formulas, written out by hand with plain math."""

import math

import pytest
import torch

from l2dlib import losses

# One point, K = 3 classes, J = 2 experts; label 1; expert 0 right, expert 1 wrong.
G = [0.5, 2.0, -1.0, 1.5, 0.3]
Y, M = 1, [1, 0]


def _as_tensors(g=G, y=Y, m=M):
    return torch.tensor([g]), torch.tensor([y]), torch.tensor([m])


def test_softmax_loss_matches_formula():
    z = sum(math.exp(v) for v in G)
    expected = -math.log(math.exp(G[Y]) / z)  # -log p_y
    for j, mj in enumerate(M):
        expected -= (mj == Y) * math.log(math.exp(G[3 + j]) / z)  # -I[m_j=y] log p_perp_j
    assert losses.softmax_loss(*_as_tensors()).item() == pytest.approx(expected, rel=1e-6)


def test_ova_loss_matches_formula():
    phi = lambda z: math.log(1 + math.exp(-z))
    expected = phi(G[Y]) + sum(phi(-G[k]) for k in range(3) if k != Y)
    expected += sum(phi(-G[3 + j]) for j in range(2))
    expected += sum((mj == Y) * (phi(G[3 + j]) - phi(-G[3 + j])) for j, mj in enumerate(M))
    assert losses.ova_loss(*_as_tensors()).item() == pytest.approx(expected, rel=1e-6)


def test_asymmetric_softmax_loss_matches_formula():
    """Cao et al.'s asymmetric softmax, one binary term per expert, written out by hand."""
    classes = [math.exp(v) for v in G[:3]]
    total, top = sum(classes), max(classes)
    expected = -math.log(classes[Y] / total)
    for j, mj in enumerate(M):
        psi = math.exp(G[3 + j]) / (math.exp(G[3 + j]) + total - top)
        expected -= math.log(psi) if mj == Y else math.log(1 - psi)
    assert losses.asymmetric_softmax_loss(*_as_tensors()).item() == pytest.approx(expected, rel=1e-6)


def test_decoupled_loss_matches_formula():
    """Montreuil et al.'s decoupled surrogate: class softmax, one sigmoid per expert."""
    classes = [math.exp(v) for v in G[:3]]
    expected = -math.log(classes[Y] / sum(classes))
    for j, mj in enumerate(M):
        s = 1 / (1 + math.exp(-G[3 + j]))
        expected -= losses.DECOUPLED_BETA * (math.log(s) if mj == Y else math.log(1 - s))
    assert losses.decoupled_loss(*_as_tensors()).item() == pytest.approx(expected, rel=1e-6)


def test_decoupled_heads_share_no_gradient():
    """The class scores' gradient does not depend on the experts' scores or correctness,
    and each expert's gradient is sigmoid(g_perp_j) - c_j times beta, its own alone."""
    g = torch.tensor([G], requires_grad=True)
    losses.decoupled_loss(g, torch.tensor([Y]), torch.tensor([M])).backward()
    other = torch.tensor([G[:3] + [-4.0, 7.0]], requires_grad=True)
    losses.decoupled_loss(other, torch.tensor([Y]), torch.tensor([[2, 1]])).backward()
    torch.testing.assert_close(g.grad[0, :3], other.grad[0, :3])
    c = torch.tensor([1.0, 0.0])
    torch.testing.assert_close(g.grad[0, 3:], losses.DECOUPLED_BETA * (torch.sigmoid(torch.tensor(G[3:])) - c))


@pytest.mark.parametrize("method", ["softmax", "ova", "asymmetric_softmax", "decoupled"])
def test_gradients_match_direct_autograd(method):
    """The rearranged losses give the same gradients as the textbook form."""
    g = torch.randn(64, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randint(4, (64,), generator=torch.Generator().manual_seed(1))
    m = torch.randint(4, (64, 3), generator=torch.Generator().manual_seed(2))
    c = (m == y[:, None]).double()
    g1, g2 = g.clone().requires_grad_(), g.clone().requires_grad_()
    if method == "softmax":
        logp = torch.log_softmax(g2, -1)
        ref = -(logp.gather(1, y[:, None]).squeeze(1) + (c * logp[:, 4:]).sum(1))
    elif method == "ova":
        onehot = torch.nn.functional.one_hot(y, 4).double()
        targets = torch.cat([onehot, c], 1)
        ref = torch.nn.functional.binary_cross_entropy_with_logits(g2, targets, reduction="none").sum(1)
    elif method == "asymmetric_softmax":
        # Cao et al.'s psi_j = e^{g_perp_j} / (e^{g_perp_j} + sum_k e^{g_k} - max_k e^{g_k}), per expert
        e = g2.exp()
        rest = e[:, :4].sum(1, keepdim=True) - e[:, :4].max(1, keepdim=True).values
        psi = e[:, 4:] / (e[:, 4:] + rest)
        ref = -torch.log_softmax(g2[:, :4], -1).gather(1, y[:, None]).squeeze(1)
        ref = ref - (c * psi.log() + (1 - c) * (1 - psi).log()).sum(1)
    if method == "decoupled":  # a cross-entropy over the classes, a logistic loss per expert
        ref = torch.nn.functional.cross_entropy(g2[:, :4], y, reduction="none")
        bce = torch.nn.functional.binary_cross_entropy_with_logits(g2[:, 4:], c, reduction="none")
        ref = ref + losses.DECOUPLED_BETA * bce.sum(1)
    ours = losses.loss_terms(g1.float(), y, m, method)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g1.grad, g2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["softmax", "ova", "asymmetric_softmax", "decoupled"])
def test_padded_expert_changes_nothing(method):
    """A padded expert (prediction -1, logit masked to -1e4) leaves the loss unchanged."""
    g, y, m = _as_tensors()
    padded_g = torch.cat([g, torch.tensor([[-1e4]])], 1)
    padded_m = torch.cat([m, torch.tensor([[-1]])], 1)
    plain = losses.loss_terms(g, y, m, method)
    torch.testing.assert_close(losses.loss_terms(padded_g, y, padded_m, method), plain)


def test_bad_input():
    g, y, m = _as_tensors()
    with pytest.raises(ValueError, match="unknown method 'bogus'"):
        losses.loss_terms(g, y, m, "bogus")
    with pytest.raises(ValueError, match="K >= 2"):
        losses.softmax_loss(g[:, :3], y, m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["softmax", "ova", "asymmetric_softmax", "decoupled"])
def test_the_gradient_by_hand_is_autograds_bit_for_bit(method, dtype):
    """mean_loss_grad (the trainer's path) against autograd through the loss it stands for,
    on stacked logits with a batch of 100 (1/100 is not exact), masked columns, scores far
    below the rest (exp(-300) is 0 in float32, not in float64) and padded experts; compared
    as integers, so even the sign of a zero must agree."""
    gen = torch.Generator().manual_seed(3)
    g = torch.randn(3, 100, 9, generator=gen, dtype=dtype) * 4
    g[0, :, 8] = -1e4  # a masked output column
    g[2, :, 6] = -300.0
    y = torch.randint(5, (3, 100), generator=gen)
    m = torch.randint(5, (3, 100, 4), generator=gen)
    m[1, :, 3] = -1  # a padded expert
    c = losses.expert_correct(y, m).to(dtype)
    leaf = g.clone().requires_grad_()
    losses.loss_terms_from_correct(leaf, y, c, method).mean(-1).sum().backward()
    ours = losses.mean_loss_grad(g, y, c, method)
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    assert torch.equal(ours.view(bits), leaf.grad.view(bits))
