import pytest
import torch

from l2dlib import experts as E
from l2dlib.data.mog import make_mog
from l2dlib.models import MLP
from l2dlib.train import Split, TrainConfig, predict, train


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
    data = make_mog(600, standardize=True)
    cfgs = [(1, 0), (3, 1), (2, 2)]
    methods = ["softmax", "softmax", "ova"]
    config = TrainConfig(max_epochs=2, batch_size=64, lr=0.05, patience=5)
    sp = _splits(data, cfgs)
    stacked = MLP([4 + j for j, _ in cfgs], seeds=[10, 11, 12])
    train(stacked, sp["train"], sp["val"], methods=methods, seeds=[0, 1, 2], config=config, progress=False)
    together = predict(stacked, data.x["test"])
    for m, (j, seed) in enumerate(cfgs):
        alone = MLP(4 + j, seeds=[10 + m])
        one = {s: Split(v.x, v.y, v.experts[m : m + 1, :, :j]) for s, v in sp.items()}
        train(alone, one["train"], one["val"], methods=[methods[m]], seeds=[m], config=config, progress=False)
        torch.testing.assert_close(predict(alone, data.x["test"])[0], together[m, :, : 4 + j],
                                   rtol=1e-4, atol=1e-4)
        assert bool((together[m, :, 4 + j :] < -1e3).all())  # padded outputs stay masked


def test_early_stopping_restores_the_best_state():
    data = make_mog(600, standardize=True)
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
