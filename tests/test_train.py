import math

import pytest
import torch

from l2dlib import experts as E
from l2dlib.data.mog import make_mog
from l2dlib.models import MLP
from l2dlib.train import SGD, Split, TrainConfig, predict, train


def _splits(data, cfgs):
    """Per-model expert predictions for configs [(J, seed)], padded to the widest."""
    width = max(j for j, _ in cfgs)
    out = {}
    for s in ("train", "val"):
        preds = []
        for j, seed in cfgs:
            e = E.draw_predictions([E.oracle((2, 3))] * j, data.y[s], 4, seed, s)
            preds.append(torch.nn.functional.pad(e, (0, width - j), value=-1))
        out[s] = Split(data.x[s], data.y[s], torch.stack(preds))
    return out


def test_stacked_training_matches_training_each_model_alone():
    data = make_mog(points=512, standardize=True)
    cfgs = [(1, 0), (3, 1), (2, 2)]
    methods = ["softmax", "decoupled", "ova"]
    config = TrainConfig(max_epochs=2, batch_size=64, lr=0.05, patience=5)
    sp = _splits(data, cfgs)
    stacked = MLP([4 + j for j, _ in cfgs], seeds=[10, 11, 12])
    train(stacked, sp["train"], sp["val"], methods=methods, seeds=[0, 1, 2], config=config, progress=False)
    together = predict(stacked, data.x["test"])
    for m, (j, _) in enumerate(cfgs):
        alone = MLP(4 + j, seeds=[10 + m])
        one = {s: Split(v.x, v.y, v.experts[m : m + 1, :, :j]) for s, v in sp.items()}
        train(alone, one["train"], one["val"], methods=[methods[m]], seeds=[m], config=config, progress=False)
        torch.testing.assert_close(predict(alone, data.x["test"])[0], together[m, :, : 4 + j], rtol=1e-4, atol=1e-4)
        assert bool((together[m, :, 4 + j :] < -1e3).all())  # padded outputs stay masked


def test_early_stopping_restores_the_best_state():
    data = make_mog(points=512, standardize=True)
    sp = _splits(data, [(2, 0)])
    config = TrainConfig(max_epochs=40, batch_size=64, lr=0.5, patience=3)  # lr high: val loss wobbles
    model = MLP(6, seeds=[0])
    hist = train(model, sp["train"], sp["val"], methods=["softmax"], seeds=[0], config=config, progress=False)
    assert hist.epochs_run <= hist.best_epoch.item() + config.patience
    from l2dlib.losses import loss_terms

    val = loss_terms(predict(model, data.x["val"])[0], data.y["val"], sp["val"].experts[0], "softmax").mean()
    assert val.item() == pytest.approx(hist.best_val_loss.item(), rel=1e-5)


def test_bad_config():
    with pytest.raises(ValueError, match="patience >= 1, got 0"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="lr > 0"):
        TrainConfig(lr=0)


def test_early_stopping_stops_at_the_epoch_the_patience_implies(monkeypatch):
    """Scripted validation losses: each model stops ``patience`` epochs after its best one,
    drops out of the stack, and gets the state of its best epoch back."""
    import l2dlib.train as T

    script = [[5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9], [5.0, 4.5, 4.0, 3.9, 3.8, 3.9, 4.0, 4.1]]
    data = make_mog(points=512, standardize=True)
    sp = _splits(data, [(2, 0), (2, 1)])
    model = MLP([6, 6], seeds=[0, 1])
    real_predict, real_loss = T.predict, T.per_model_loss
    seen = {"epoch": 0, "active": [], "states": []}

    def predict(m, x, **kw):
        models = kw.get("models")
        seen["epoch"] += 1
        seen["active"].append([0, 1] if models is None else models.tolist())
        seen["states"].append({k: v.clone() for k, v in m.state_dict().items()})
        return real_predict(m, x, **kw)

    def loss(logits, y, correct, methods, weight=None):
        if weight is None:  # a training step
            return real_loss(logits, y, correct, methods)
        return torch.tensor([script[m][seen["epoch"] - 1] for m in seen["active"][-1]])

    monkeypatch.setattr(T, "predict", predict)
    monkeypatch.setattr(T, "per_model_loss", loss)
    config = TrainConfig(max_epochs=8, batch_size=64, lr=0.05, patience=2)
    hist = train(model, sp["train"], sp["val"], methods=["softmax", "ova"], seeds=[0, 1], config=config, progress=False)
    assert hist.best_epoch.tolist() == [3, 5] and hist.epochs_run == 7
    assert seen["active"] == [[0, 1]] * 5 + [[1]] * 2  # model 0 left the stack after epoch 5
    assert hist.best_val_loss.tolist() == [3.0, 3.799999952316284]
    for name, value in model.state_dict().items():  # each model's best state, restored
        for m, best in enumerate(hist.best_epoch.tolist()):
            if value.dim() and value.shape[0] == 2:
                assert torch.equal(value[m], seen["states"][best - 1][name][m]), (name, m)


def test_a_budget_trains_exactly_its_steps_and_keeps_the_last_state(monkeypatch):
    data = make_mog(points=512, standardize=True)
    sp = _splits(data, [(2, 0)])
    config = TrainConfig(max_epochs=3, batch_size=100, lr=0.05, patience=3, restore_best=False)
    model = MLP(6, seeds=[0])
    steps, real_step = [], SGD.step
    monkeypatch.setattr(SGD, "step", lambda opt, lr: (steps.append(lr), real_step(opt, lr)))
    history = train(model, sp["train"], sp["val"], methods=["softmax"], seeds=[0], config=config, progress=False)
    assert len(steps) == 3 * (len(data.y["train"]) // 100)  # epochs x whole batches: the documented steps
    assert history.epochs_run == 3 and history.best_epoch.tolist() == [3]
    # The kept state is the last one: its validation loss is what the history reports.
    val = Split(sp["val"].x, sp["val"].y, sp["val"].experts)
    from l2dlib.train import split_loss

    assert float(split_loss(model, val, ["softmax"])[0]) == pytest.approx(float(history.best_val_loss[0]), rel=1e-5)
    with pytest.raises(ValueError, match="early stopping must be off"):
        TrainConfig(max_epochs=3, patience=2, restore_best=False)


def _stack_and_batch(rows=64):
    """Four stacked MLPs of J = 1, 4, 2, 3 (one output width, masked columns) and a batch."""
    from l2dlib.losses import expert_correct

    gen = torch.Generator().manual_seed(0)
    model = MLP([6, 9, 7, 8], seeds=[1, 2, 3, 4], width=9)
    x = torch.randn(4, rows, 2, generator=gen)
    y = torch.randint(5, (4, rows), generator=gen)
    experts = torch.randint(5, (4, rows, 4), generator=gen)
    for m, j in enumerate((1, 4, 2, 3)):
        experts[m, :, j:] = -1
    return model, x, y, expert_correct(y, experts)


@pytest.mark.parametrize("subset", [None, [0, 2, 3]])
def test_gradients_by_hand_are_autograds_bit_for_bit(subset):
    """MLP.backward_by_hand with the loss's gradient by hand against loss.backward(), for a
    stack of four methods and for a subset of it (stopped models get zero gradients)."""
    from l2dlib.train import per_model_loss, per_model_loss_grad

    methods = ["softmax", "ova", "asymmetric_softmax", "decoupled"]
    model, x, y, c = _stack_and_batch()
    picked = None if subset is None else torch.tensor(subset)
    if picked is not None:
        x, y, c, methods = x[picked], y[picked], c[picked], [methods[m] for m in subset]
    per_model_loss(model(x, picked), y, c, methods).sum().backward()
    autograd = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    model.backward_by_hand(x, lambda g: per_model_loss_grad(g, y, c, methods), picked)
    for name, p, reference in zip((n for n, _ in model.named_parameters()), model.parameters(), autograd):
        assert torch.equal(p.grad.view(torch.int32), reference.view(torch.int32)), name
    if picked is not None:
        assert all(bool((p.grad[1] == 0).all()) for p in model.parameters())


def test_training_by_hand_equals_training_through_autograd(monkeypatch):
    """Early stopping, with models leaving the stack on the way: the same weights bit for
    bit whether the trainer takes the gradients by hand or through autograd."""
    data = make_mog(points=512, standardize=True)
    cfgs = [(1, 0), (3, 1), (2, 2)]
    methods = ["softmax", "ova", "ova"]
    config = TrainConfig(max_epochs=6, batch_size=64, lr=0.5, patience=1)  # lr 0.5: two models stop early
    sp = _splits(data, cfgs)
    states = []
    for by_hand in (True, False):
        if not by_hand:
            monkeypatch.delattr(MLP, "backward_by_hand")
        model = MLP([4 + j for j, _ in cfgs], seeds=[10, 11, 12])
        history = train(model, sp["train"], sp["val"], methods=methods, seeds=[0, 1, 2], config=config, progress=False)
        states.append((model.state_dict(), history.best_epoch.tolist(), history.best_val_loss.tolist()))
    (hand, hand_epochs, hand_loss), (auto, auto_epochs, auto_loss) = states
    assert hand_epochs == auto_epochs and hand_loss == auto_loss
    assert min(hand_epochs) + config.patience < config.max_epochs  # the stack shrank on the way
    assert all(
        torch.equal(hand[k].view(torch.int32), auto[k].view(torch.int32)) for k in hand if hand[k].is_floating_point()
    )


@pytest.mark.parametrize(
    "options",
    [
        dict(momentum=0.9, nesterov=True, weight_decay=5e-4),
        dict(momentum=0.9, nesterov=False, weight_decay=0.0),
        dict(momentum=0.0, nesterov=False, weight_decay=1e-3),
    ],
)
def test_the_optimiser_is_torchs_sgd_bit_for_bit(options):
    """SGD against torch.optim.SGD(foreach=True) with a LambdaLR schedule: five
    steps of random gradients, one parameter without a gradient at first."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (7,), (2, 5)]
    ours = [torch.randn(s, generator=gen) for s in shapes]
    theirs = [p.clone().requires_grad_() for p in ours]
    torch_opt = torch.optim.SGD(theirs, lr=0.1, foreach=True, **options)
    sched = torch.optim.lr_scheduler.LambdaLR(torch_opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / 5)))
    opt = SGD(ours, **options)
    for t in range(5):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            g = None if (i == 2 and t < 2) else torch.randn(a.shape, generator=gen)
            a.grad, b.grad = g, None if g is None else g.clone()
        opt.step(0.1 * (0.5 * (1 + math.cos(math.pi * t / 5))))
        torch_opt.step()
        sched.step()
        assert all(torch.equal(a.view(torch.int32), b.detach().view(torch.int32)) for a, b in zip(ours, theirs)), t
