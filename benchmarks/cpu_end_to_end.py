"""The budget of a CIFAR-10 CPU regime that trains part of the network with the L2D loss
(issue: ``cpu_end_to_end``), measured before any grid is fitted to it.

The committed extractor's first two groups are frozen and run once (their output, 64 x 8 x 8
per image, is cached in memory); per configuration its last group (conv 64->128, pool, two
residual convs at 4 x 4) is fine-tuned together with a new L2D head. M configurations are
stacked as one network with grouped convolutions (``groups=M``: block m sees only its own
channels, so each model's arithmetic is its own). Prints seconds per training epoch over the
heads' 18,000 images for M = 1 and M = 4 (per model), and the train-test gap after a few
epochs, so the grid can be sized to about two hours on 2 cores.

    .venv/bin/python benchmarks/cpu_end_to_end.py [--epochs 2] [--models 1 4]
"""

from __future__ import annotations

import l2dlib  # noqa: F401  first: the portable numerics must be requested before torch loads

# isort: split

import argparse
import copy
import time
from pathlib import Path

import torch
from torch import nn

from l2dlib.data.cifar10 import load_cifar10
from l2dlib.data.transforms import normalize
from l2dlib.experts import draw_predictions, oracle
from l2dlib.features import fit_split
from l2dlib.losses import expert_correct, loss_terms_from_correct
from l2dlib.models import FastResNet
from l2dlib.profiles import get_profile
from l2dlib.studies import EXPERT_REGION

REPO = Path(__file__).resolve().parent.parent


class StackedLastGroup(nn.Module):
    """M copies of the extractor's last group and M L2D heads as one grouped network:
    [B, M*64, 8, 8] -> [M, B, K+J]."""

    def __init__(self, group: nn.Module, width_in: int, width: int, outputs: int, copies: int) -> None:
        super().__init__()
        self.m, self.width = copies, width

        def grouped(conv: nn.Conv2d, c_in: int) -> nn.Conv2d:
            out = nn.Conv2d(c_in * copies, conv.out_channels * copies, 3, padding=1, bias=False, groups=copies)
            out.weight.data.copy_(conv.weight.data.repeat(copies, 1, 1, 1))
            return out

        def bn(b: nn.BatchNorm2d) -> nn.BatchNorm2d:
            out = nn.BatchNorm2d(b.num_features * copies)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(out, name).data.copy_(getattr(b, name).data.repeat(copies))
            return out

        down, res = group.down, group.residual
        self.down = nn.Sequential(grouped(down[0], width_in), down[1], bn(down[2]), nn.GELU())
        self.res = nn.Sequential(
            *(nn.Sequential(grouped(block[0], width), bn(block[1]), nn.GELU()) for block in (res[0], res[1]))
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Parameter(torch.randn(copies, width, outputs) * width**-0.5)
        self.bias = nn.Parameter(torch.zeros(copies, 1, outputs))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.down(h.repeat(1, self.m, 1, 1))
        h = h + self.res(h)
        z = self.pool(h).flatten(1).view(-1, self.m, self.width).transpose(0, 1)  # [M, B, width]
        return torch.baddbmm(self.bias, z, self.head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--num-experts", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = get_profile("cifar10", "frozen_features").extractor
    images = load_cifar10(REPO / "data")
    (weights,) = (REPO / "results" / "cifar10").glob("extractor-*.pt")
    net = FastResNet(images.num_classes, widths=cfg.widths)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["state"])
    net.eval()
    _, heads = fit_split(len(images.y["train"]), cfg)  # the train images the extractor has not seen
    t0 = time.perf_counter()
    frozen = {}
    with torch.no_grad():
        for split, idx in (("train", heads), ("test", None)):
            x = images.x[split] if idx is None else images.x[split][idx]
            out = [net.groups[1](net.groups[0](net.stem(normalize(x[i : i + 1000])))) for i in range(0, len(x), 1000)]
            frozen[split] = torch.cat(out)
    y = {"train": images.y["train"][heads], "test": images.y["test"]}
    print(f"frozen part, once: {time.perf_counter() - t0:.0f} s; {tuple(frozen['train'].shape)} train inputs")
    k, j = images.num_classes, args.num_experts
    experts = [oracle(EXPERT_REGION["cifar10"]) for _ in range(j)]
    correct = {s: expert_correct(y[s], draw_predictions(experts, y[s], k, 0, s)) for s in y}
    for m in args.models:
        model = StackedLastGroup(copy.deepcopy(net.groups[2]), cfg.widths[1], cfg.widths[2], k + j, m)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        n, batch = len(y["train"]), 256
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            model.train()
            order = torch.randperm(n)
            for i in range(n // batch):
                idx = order[i * batch : (i + 1) * batch]
                logits = model(frozen["train"][idx])
                yy = y["train"][idx].expand(m, -1)
                loss = loss_terms_from_correct(logits, yy, correct["train"][idx].expand(m, -1, -1), "softmax")
                opt.zero_grad()
                loss.mean(1).sum().backward()
                opt.step()
        per_epoch = (time.perf_counter() - t0) / args.epochs
        model.eval()
        with torch.no_grad():
            acc = {}
            for s in ("train", "test"):
                logits = torch.cat([model(frozen[s][i : i + 1000]) for i in range(0, len(y[s]), 1000)], 1)
                acc[s] = (logits[..., :k].argmax(-1) == y[s]).float().mean().item()
        print(
            f"M = {m}: {per_epoch:.1f} s per epoch ({per_epoch / m:.1f} s per model-epoch) on "
            f"{torch.get_num_threads()} threads; after {args.epochs} epochs classifier accuracy "
            f"train {acc['train']:.4f}, test {acc['test']:.4f}"
        )


if __name__ == "__main__":
    main()
