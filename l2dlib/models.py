"""Models. ``MLP`` holds M independent small MLPs as stacked weights (one is the M=1 case).

Training many small MoG models at once is a batched matmul per layer instead of M
Python-level forward passes; each model gets exactly its own gradient because the
trainer sums the per-model losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

MASKED_LOGIT = -1e4  # for padded output columns: exp() underflows to 0, no inf*0 = NaN


class MLP(nn.Module):
    """M stacked MLPs ``in_features -> hidden... -> num_outputs[m]`` with ReLU.

    Parameters
    ----------
    num_outputs : int or sequence of int
        Outputs of each model (K+J). Models with fewer than the largest are zero-padded
        and their extra logits are masked to a large negative number.
    seeds : sequence of int
        One initialisation seed per model (so a stack of M equals M separate models).
    hidden, in_features : the architecture (the paper's MoG net is 2-32-16-8-(K+J)).

    ``forward`` maps x [M, B, in] (or [B, in], shared by all models) to logits [M, B, C].
    """

    def __init__(
        self,
        num_outputs: int | Sequence[int],
        seeds: Sequence[int] = (0,),
        hidden: Sequence[int] = (32, 16, 8),
        in_features: int = 2,
    ) -> None:
        super().__init__()
        outs = [num_outputs] * len(seeds) if isinstance(num_outputs, int) else list(num_outputs)
        if len(outs) != len(seeds):
            raise ValueError(f"got {len(outs)} output sizes for {len(seeds)} seeds")
        sizes = [in_features, *hidden, max(outs)]
        weights = [[] for _ in range(len(sizes) - 1)]
        biases = [[] for _ in range(len(sizes) - 1)]
        for seed, out in zip(seeds, outs):
            g = torch.Generator().manual_seed(int(seed))
            true_sizes = [in_features, *hidden, out]
            for layer, (fan_in, fan_out) in enumerate(zip(true_sizes[:-1], true_sizes[1:])):
                # nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b.
                bound = 1.0 / math.sqrt(fan_in)
                w = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
                b = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
                pad = sizes[layer + 1] - fan_out
                weights[layer].append(nn.functional.pad(w, (0, pad)))
                biases[layer].append(nn.functional.pad(b, (0, pad)))
        self.weights = nn.ParameterList(nn.Parameter(torch.stack(w)) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(torch.stack(b)) for b in biases)
        mask = torch.arange(sizes[-1]).unsqueeze(0) < torch.tensor(outs).unsqueeze(1)
        # Added to the last layer's bias: 0 for a model's own outputs, MASKED_LOGIT for padding.
        self.register_buffer("output_offset", torch.where(mask, 0.0, MASKED_LOGIT).unsqueeze(1))
        self.num_outputs = outs

    @property
    def num_models(self) -> int:
        return len(self.num_outputs)

    def forward(self, x: Tensor, models: Tensor | None = None) -> Tensor:
        """Logits [M', B, C] for x [M', B, in] (or [B, in] shared); ``models`` [M'] picks a
        subset of the stack (the trainer skips models that have stopped early)."""
        weights, biases, offset = list(self.weights), list(self.biases), self.output_offset
        if models is not None:
            weights = [w[models] for w in weights]
            biases = [b[models] for b in biases]
            offset = offset[models]
        h = x if x.dim() == 3 else x.expand(len(weights[0]), *x.shape)  # [M', B, in]
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases)):
            if i < last:
                h = torch.relu(torch.baddbmm(b.unsqueeze(1), h, w))  # [M', B, out]
            else:
                h = torch.baddbmm(b.unsqueeze(1) + offset, h, w)  # [M', B, C]
        return h


class Stacked(nn.Module):
    """Wraps one ordinary model (x [B, ...] -> [B, C]) in the trainer's [M=1, B, C] convention."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_models = 1

    def forward(self, x: Tensor) -> Tensor:  # [1, B, ...] -> [1, B, C]
        return self.model(x[0]).unsqueeze(0)
