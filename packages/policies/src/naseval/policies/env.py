"""The SearchEnv protocol: everything a search policy may ask of a weight-sharing supernet.

Policies are written against this protocol only, so the same code searches the trainer's real
supernet (which satisfies it structurally; this package never imports naseval.trainer), a
tabular env replaying recorded ground truth, or a toy env with a known optimum.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import torch

from naseval.space import Architecture, Space


@runtime_checkable
class SearchEnv(Protocol):
    """What a policy sees of the supernet.

    Minibatch order: the env keeps one cursor over training minibatches and one over
    validation minibatches. `train_shared` consumes training minibatches; `mixture_loss`
    peeks without consuming (for "train" the minibatch the next `train_shared` step will use;
    for "valid" the current validation minibatch, which advances by one on every
    `train_shared` step). That is exactly DARTS's pairing of one architecture step on
    (train batch t, valid batch t) with one weight step on train batch t.
    """

    @property
    def space(self) -> Space:
        """The search space."""
        ...

    @property
    def steps_per_epoch(self) -> int:
        """Training minibatches in one pass over the (possibly truncated) training split."""
        ...

    def train_shared(
        self,
        arch: Architecture | None = None,
        weights: torch.Tensor | None = None,
        steps: int = 1,
    ) -> float:
        """Run `steps` SGD steps of the shared weights and return the mean training loss.

        `arch` trains that single path; `weights` (n(n+1)/2, |ops|), each row a distribution
        over ops, trains the mixture (DARTS; treated as a constant); with neither, every
        minibatch trains a path drawn uniformly from the space (random-WS).
        """
        ...

    def evaluate(self, arch: Architecture, batches: int = 1, offset: int = 0) -> float:
        """Validation perplexity of `arch` under the shared weights, without dropout.

        Deterministic for given weights: it evaluates validation minibatches
        offset .. offset + batches - 1 (wrapping around), each from a zero hidden state, so
        architectures compared on the same (batches, offset) see the same data.
        `batches=0` means the whole validation split.
        """
        ...

    def mixture_loss(self, weights: torch.Tensor, split: str) -> torch.Tensor:
        """Differentiable mean cross-entropy of the mixture on one `split` minibatch.

        `split` is "train" or "valid"; gradients flow to `weights` and to `parameters()`.
        Between two `train_shared` calls it should be a deterministic function of `weights`
        and the shared weights (the same minibatch *and the same dropout masks* on every
        call): second-order DARTS differences two "train" losses at w +- R v with R about
        0.01 / ||v||, so masks redrawn per call turn its implicit term into mask noise.
        """
        ...

    def parameters(self) -> Iterable[torch.nn.Parameter]:
        """The shared weights (for DARTS's unrolled second-order step)."""
        ...
