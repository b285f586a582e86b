"""Models. ``MLP`` holds M independent small MLPs as stacked weights (one is the M=1 case);
``WideResNet`` (the paper's) and ``FastResNet`` (the GPU profile's) are the CIFAR-10
networks, mapping images float [B, 3, 32, 32] to scores [B, K+J]; they work in
channels_last and under bf16 autocast and are initialised from an explicit ``seed``.
``FastTail`` is a FastResNet's last group with a new head (the ``cpu_end_to_end`` profile).

Training many small MoG models at once is a batched matmul per layer instead of M
Python-level forward passes; each model gets exactly its own gradient because the
trainer sums the per-model losses; ``MLP.backward_by_hand`` gives the trainer those
gradients without autograd's graph, bit for bit.

One concern over 350 lines: the networks the trainer trains, each with its initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

MASKED_LOGIT = -1e4  # for padded output columns: exp() underflows to 0, no inf*0 = NaN
# Every per-model block of floats that elementwise kernels see spans a multiple of this many
# values. CPU kernels run a vectorised main loop over the flattened tensor in steps of two
# vectors (32 floats with AVX-512) and a scalar loop over the rest, and the scalar exp, FMA
# etc. round differently: a model whose values straddled that boundary in a stack of M
# would get other bits than alone. Aligned blocks put every value through the vector path
# whatever M is (tested: a model alone equals it in any stack, bit for bit).
ALIGN = 32


def aligned(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`ALIGN`."""
    return -(-n // ALIGN) * ALIGN


class MLP(nn.Module):
    """M stacked MLPs ``in_features -> hidden... -> num_outputs[m]`` with ReLU.

    Parameters
    ----------
    num_outputs : int or sequence of int
        Outputs of each model (K+J). Models with fewer than ``width`` are zero-padded and
        their extra logits are masked to a large negative number (inert: exp() gives exactly
        0, and so do their gradients).
    width : outputs of every model in the stack (default: the largest of ``num_outputs``).
        The runner fixes it per configuration, never by its companions: padded columns join
        a model's log-sum-exp and change its rounding.
    seeds : sequence of int
        One initialisation seed per model (so a stack of M equals M separate models).
    hidden, in_features : the architecture (the paper's MoG net is 2-32-16-8-(K+J)).

    Each layer's weights and biases are stored as [M, S] with S a multiple of
    :data:`ALIGN` (zero-padded; see there) and used as views [M, in, out] and [M, out].
    ``forward`` maps x [M, B, in] (or [B, in], shared by all models) to logits [M, B, C].
    """

    def __init__(
        self,
        num_outputs: int | Sequence[int],
        seeds: Sequence[int] = (0,),
        hidden: Sequence[int] = (32, 16, 8),
        in_features: int = 2,
        width: int | None = None,
    ) -> None:
        super().__init__()
        outs = [num_outputs] * len(seeds) if isinstance(num_outputs, int) else list(num_outputs)
        if len(outs) != len(seeds):
            raise ValueError(f"got {len(outs)} output sizes for {len(seeds)} seeds")
        width = max(outs) if width is None else width
        if width < max(outs):
            raise ValueError(f"width {width} is smaller than the largest model's {max(outs)} outputs")
        sizes = [in_features, *hidden, width]
        self.shapes = list(zip(sizes[:-1], sizes[1:]))  # (in, out) per layer
        weights = [[] for _ in self.shapes]
        biases = [[] for _ in self.shapes]
        for seed, out in zip(seeds, outs):
            g = torch.Generator().manual_seed(int(seed))
            true_sizes = [in_features, *hidden, out]
            for layer, (fan_in, fan_out) in enumerate(zip(true_sizes[:-1], true_sizes[1:])):
                # nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b.
                bound = 1.0 / math.sqrt(fan_in)
                w = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
                b = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
                pad = sizes[layer + 1] - fan_out
                w, b = nn.functional.pad(w, (0, pad)).flatten(), nn.functional.pad(b, (0, pad))
                weights[layer].append(nn.functional.pad(w, (0, aligned(w.numel()) - w.numel())))
                biases[layer].append(nn.functional.pad(b, (0, aligned(b.numel()) - b.numel())))
        self.weights = nn.ParameterList(nn.Parameter(torch.stack(w)) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(torch.stack(b)) for b in biases)
        mask = torch.arange(sizes[-1]).unsqueeze(0) < torch.tensor(outs).unsqueeze(1)
        # Added to the last layer's bias: 0 for a model's own outputs, MASKED_LOGIT for padding.
        self.register_buffer("output_offset", torch.where(mask, 0.0, MASKED_LOGIT).unsqueeze(1))
        self.num_outputs = outs

    @property
    def num_models(self) -> int:
        return len(self.num_outputs)

    def layers(self, models: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """(weight [M', in, out], bias [M', out]) per layer, for all models or ``models`` [M']."""
        out = []
        for (fan_in, fan_out), w, b in zip(self.shapes, self.weights, self.biases):
            if models is not None:
                w, b = w[models], b[models]
            out.append((w[:, : fan_in * fan_out].view(-1, fan_in, fan_out), b[:, :fan_out]))
        return out

    def forward(self, x: Tensor, models: Tensor | None = None) -> Tensor:
        """Logits [M', B, C] for x [M', B, in] (or [B, in] shared); ``models`` [M'] picks a
        subset of the stack (the trainer skips models that have stopped early)."""
        layers = self.layers(models)
        offset = self.output_offset if models is None else self.output_offset[models]
        h = x if x.dim() == 3 else x.expand(len(layers[0][0]), *x.shape)  # [M', B, in]
        for i, (w, b) in enumerate(layers):
            if i < len(layers) - 1:  # in place: a fresh buffer per layer costs more than the ReLU
                h = torch.baddbmm(b.unsqueeze(1), h, w).relu_()  # [M', B, out]
            else:
                h = torch.baddbmm(b.unsqueeze(1) + offset, h, w)  # [M', B, C]
        return h

    def backward_by_hand(
        self, x: Tensor, logits_grad: Callable[[Tensor], Tensor], models: Tensor | None = None
    ) -> None:
        """Set each parameter's ``.grad`` to the gradient of a loss of the logits of x
        (as :meth:`forward`), given its gradient ``logits_grad(logits)`` [M', B, C], without
        autograd's graph: the same matrix products and sums autograd runs, so the same bits
        (tested). ReLU's backward is a product with its 0/1 mask: exact, as autograd's
        ``threshold_backward`` is (up to the sign of a zero gradient), and about 3.5x
        faster portably, as fast natively (measured in a step). Models outside ``models``
        get zero gradients, as through autograd."""
        layers = self.layers(models)
        offset = self.output_offset if models is None else self.output_offset[models]
        h = x if x.dim() == 3 else x.expand(len(layers[0][0]), *x.shape)
        inputs, masks = [], []
        for i, (w, b) in enumerate(layers):
            inputs.append(h)
            if i < len(layers) - 1:
                h = torch.baddbmm(b.unsqueeze(1), h, w).relu_()
                masks.append(torch.gt(h, 0, out=torch.empty_like(h)))
            else:
                h = torch.baddbmm(b.unsqueeze(1) + offset, h, w)
        grad = logits_grad(h)
        for i in reversed(range(len(layers))):
            weight, bias = self.weights[i], self.biases[i]
            fan_in, fan_out = self.shapes[i]
            weight.grad, bias.grad = torch.zeros_like(weight), torch.zeros_like(bias)  # padding: 0
            rows = slice(None) if models is None else models
            weight.grad[rows, : fan_in * fan_out] = inputs[i].transpose(1, 2).bmm(grad).flatten(1)
            bias.grad[rows, :fan_out] = grad.sum(1)
            if i:
                grad = grad.bmm(layers[i][0].transpose(1, 2)).mul_(masks[i - 1])


class Stacked(nn.Module):
    """Wraps one ordinary model (x [B, ...] -> [B, C]) in the trainer's [M=1, B, C] convention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_models = 1

    def forward(self, x: Tensor) -> Tensor:  # [1, B, ...] -> [1, B, C]
        return self.model(x[0]).unsqueeze(0)


# ---------------------------------------------------------------- CIFAR-10 networks

OUTPUT_SCALE = 0.125  # FastResNet's fixed logit scale (ResNet-9's), the same in train and eval


class WideResNet(nn.Module):
    """WRN-depth-widen (Zagoruyko & Komodakis, 2016), as in the authors' reference code.

    A 3x3 conv to 16 channels, three groups of (depth - 4) / 6 pre-activation basic blocks
    (BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3) of widths 16k, 32k, 64k with strides 1, 2, 2
    and a 1x1 projection shortcut where the shape changes, then BN-ReLU, global average
    pooling and a linear head with bias. Convs are bias-free with He (fan-out) init.

    Parameters
    ----------
    depth : 6n + 4 (28 in the paper).
    widen : width multiplier k (the paper's CIFAR-10 runs use 4).
    num_outputs : scores per image (K + J).
    dropout : between the two convs of each block (0 disables it).
    seed : initialisation seed.

    ``forward``: x float [B, 3, H, W] -> [B, num_outputs].
    """

    def __init__(
        self, depth: int = 28, widen: int = 4, num_outputs: int = 10, dropout: float = 0.0, *, seed: int = 0
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1 (e.g. 16, 22, 28, 40), got {depth}")
        if widen < 1:
            raise ValueError(f"expected widen >= 1, got {widen}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False)]
        for group, stride in enumerate((1, 2, 2)):
            for i in range(n):
                layers.append(
                    _WideBlock(
                        widths[group] if i == 0 else widths[group + 1],
                        widths[group + 1],
                        stride if i == 0 else 1,
                        dropout,
                    )
                )
        layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[3], num_outputs)
        _init(self, seed)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class _WideBlock(nn.Module):
    """Pre-activation basic block. Where the shape changes, the projection shortcut takes
    the block's pre-activated input (as in the reference code); otherwise the raw input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        pre = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        h = self.conv1(pre)
        h = self.conv2(self.dropout(torch.relu(self.bn2(h))))
        return h + skip


class FastResNet(nn.Module):
    """A small, fast CIFAR network after ResNet-9 (Page, 2018) with airbench94's widths.

    A conv-BN-GELU stem at full resolution, then three groups that each halve the
    resolution: conv3x3 -> maxpool2 -> BN -> GELU, plus a residual branch of two
    conv3x3-BN-GELU; then global max pooling and a linear head with bias whose output is
    multiplied by the fixed ``output_scale`` (default :data:`OUTPUT_SCALE`, which tempers
    the large max-pooled features; constant in training and evaluation alike).

    No label smoothing, test-time augmentation, or scale that changes at eval: the scores
    are exactly what the head computes, so calibration is the network's own.

    Parameters
    ----------
    num_outputs : scores per image (K + J).
    widths : channels of the three groups; the stem uses the first (smaller widths give
        the tiny network of the smoke profile).
    output_scale : fixed multiplier of the head's output.
    seed : initialisation seed.

    ``forward``: x float [B, 3, H, W] (H, W divisible by 8) -> [B, num_outputs].
    """

    def __init__(
        self,
        num_outputs: int = 10,
        *,
        widths: tuple[int, int, int] = (64, 256, 256),
        output_scale: float = OUTPUT_SCALE,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"expected three positive widths, got {widths}")
        self.stem = _conv_bn_gelu(3, widths[0])
        self.groups = nn.Sequential(*(_FastGroup(c_in, c_out) for c_in, c_out in zip((widths[0], *widths[:2]), widths)))
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[2], num_outputs)
        self.output_scale = output_scale
        _init(self, seed)

    def embed(self, x: Tensor) -> Tensor:
        """The pooled penultimate activations [B, widths[2]] (the CPU profile's features)."""
        return self.pool(self.groups(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x)) * self.output_scale


class _FastGroup(nn.Module):
    """conv3x3 -> maxpool2 -> BN -> GELU, then h + (conv-BN-GELU)^2 (h): [B, C_in, H, W] ->
    [B, C_out, H/2, W/2]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )
        self.residual = nn.Sequential(
            _conv_bn_gelu(out_channels, out_channels), _conv_bn_gelu(out_channels, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(x)
        return h + self.residual(h)


class FastTail(nn.Module):
    """A FastResNet's last group, started from given weights, and a new L2D head: the part
    of the network the ``cpu_end_to_end`` profile trains with the L2D loss, on the frozen
    first two groups' outputs. x float [B, widths[1], H, W] -> [B, num_outputs], computed as
    FastResNet computes it (global max pooling, head times ``output_scale``).

    ``group_state`` is the state dict of a FastResNet's ``groups[2]`` (None: He init);
    the head is initialised from ``seed`` as FastResNet's."""

    def __init__(
        self,
        num_outputs: int,
        *,
        widths: tuple[int, int, int],
        group_state: dict[str, Tensor] | None = None,
        output_scale: float = OUTPUT_SCALE,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.group = _FastGroup(widths[1], widths[2])
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[2], num_outputs)
        self.output_scale = output_scale
        _init(self, seed)
        if group_state is not None:
            self.group.load_state_dict(group_state)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.group(x))) * self.output_scale


def _conv_bn_gelu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.GELU()
    )


@torch.no_grad()
def _init(model: nn.Module, seed: int) -> None:
    """Re-initialise every parameter from one seeded generator (the constructors' own init
    draws from the global random state): convs He normal (fan-out, as in the WRN reference
    code), BN weight 1 and bias 0, linear weight U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
    default) and bias 0."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            nn.init.uniform_(m.weight, -bound, bound, generator=g)
            nn.init.zeros_(m.bias)
