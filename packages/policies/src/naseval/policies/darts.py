"""DARTS (Liu et al. 2019, "DARTS: Differentiable Architecture Search"), recurrent-cell version.

Architecture parameters alpha (n(n+1)/2, |ops|) weight every (node, predecessor) edge's ops by
a row-wise softmax; the supernet runs the mixture. Before every weight step on a training
minibatch, one Adam step on alpha against the validation loss: first order (the gradient at
the current weights) or second order (through one unrolled weight step, quark0/darts
rnn/architect.py). The final cell is `Architecture.from_alpha(softmax(alpha))`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch

from naseval.policies.base import (
    MIXTURE_MEMBERS,
    Budget,
    SearchCallback,
    SearchCheckpoint,
    SearchProgress,
    SearchResult,
    check_positive,
    check_search_args,
    draw_seed,
    env_device,
    is_real,
)
from naseval.policies.env import SearchEnv
from naseval.space import Architecture, Space


@dataclass(frozen=True)
class DartsConfig:
    """DARTS settings; defaults are quark0/darts rnn/train_search.py's."""

    second_order: bool = False  # unrolled step (--unrolled; the rnn default is first order)
    arch_lr: float = 3e-3  # Adam lr on alpha (--arch_lr)
    arch_weight_decay: float = 1e-3  # Adam weight decay on alpha (--arch_wdecay)
    arch_betas: tuple[float, float] = (0.9, 0.999)  # Adam betas (rnn architect.py: the defaults)
    init_scale: float = 1e-3  # alpha ~ init_scale * N(0, 1) (rnn model_search.py)
    xi: float = 20.0  # unrolled step size = the weight SGD lr (--lr 20; architect uses eta = lr)
    weight_decay: float = 5e-7  # weight decay in the unrolled step and its vector (--wdecay)
    clip: float | None = 0.25  # norm clip of the unrolled gradients (--clip), None for none
    hvp_r: float = 1e-2  # finite-difference Hessian-vector step R = hvp_r / ||v|| (architect r)

    def __post_init__(self) -> None:
        for name in ("arch_lr", "init_scale", "xi", "hvp_r"):
            check_positive("DartsConfig", name, getattr(self, name))
        for name in ("arch_weight_decay", "weight_decay"):
            check_positive("DartsConfig", name, getattr(self, name), allow_zero=True)
        if self.clip is not None:
            check_positive("DartsConfig", "clip", self.clip)
        if not isinstance(self.second_order, bool):
            raise ValueError(f"DartsConfig.second_order must be a bool, got {self.second_order!r}")
        try:
            betas = tuple(self.arch_betas)
        except TypeError:  # not a pair at all
            betas = ()
        if len(betas) != 2 or not all(is_real(b) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"DartsConfig.arch_betas must be two numbers in [0, 1), got {self.arch_betas!r}"
            )
        object.__setattr__(self, "arch_betas", (float(betas[0]), float(betas[1])))

    @classmethod
    def small_space(cls) -> DartsConfig:
        # Sciuto et al. 2020, sec. 4.2 run DARTS unchanged in the small space.
        return cls()


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return float(torch.sqrt(torch.stack([(t.double() ** 2).sum() for t in tensors]).sum()))


def _clip_(grads: list[torch.Tensor], max_norm: float | None) -> None:
    """Scale the gradients in place to total norm <= max_norm (architect.py's _clip)."""
    if max_norm is None:
        return
    total = _norm(grads)
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)


def _set_(params: list[torch.nn.Parameter], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def mixture_weights(alpha: torch.Tensor, space: Space) -> torch.Tensor:
    """softmax(alpha) per row, with the rows of a fixed prefix's nodes set to its one-hot table.

    The fixed nodes are not searched: their mixture is their own single path (the chosen
    predecessor's row one-hot on the fixed op, the node's other rows zero), a constant, so no
    gradient reaches their alpha rows.
    """
    weights = torch.softmax(alpha, dim=-1)
    if space.fixed is None:
        return weights
    rows = space.n_fixed * (space.n_fixed + 1) // 2
    table = torch.as_tensor(
        space.fixed.to_alpha(space.ops), dtype=weights.dtype, device=weights.device
    )
    return torch.cat([table, weights[rows:]])


def darts_hypergradient(
    env: SearchEnv,
    alpha: torch.Tensor,
    *,
    second_order: bool,
    xi: float = 20.0,
    weight_decay: float = 5e-7,
    clip: float | None = 0.25,
    hvp_r: float = 1e-2,
) -> torch.Tensor:
    """d L_valid / d alpha, first order or through one unrolled weight step; same shape as alpha.

    Second order, with w the shared weights and v the (clipped) validation gradient:
        w' = w - xi * (clip(grad_w L_train(w, alpha)) + weight_decay * w)
        g  = grad_alpha L_valid(w', alpha)
             - xi * [grad_alpha L_train(w + R v, alpha) - grad_alpha L_train(w - R v, alpha)] / 2R
        v  = clip(grad_w' L_valid(w', alpha)) + weight_decay * w',   R = hvp_r / ||v||.
    The weight-decay term in v is architect.py's (it differentiates L_valid + wd/2 ||w'||^2).
    The Hessian-vector product is taken at w, as in the paper's eq. 7 (architect.py's rnn
    version perturbs w' instead, which differs by O(xi)); the weights are restored on return.
    The mixture is `mixture_weights(alpha, env.space)`: a fixed prefix's rows are constant
    one-hot rows, so their gradient is zero.
    """
    return _hypergradient(env, alpha, second_order, xi, weight_decay, clip, hvp_r)[0]


def _hypergradient(
    env: SearchEnv,
    alpha: torch.Tensor,
    second_order: bool,
    xi: float,
    weight_decay: float,
    clip: float | None,
    hvp_r: float,
) -> tuple[torch.Tensor, float]:
    """`darts_hypergradient` and the validation loss it differentiated (at w or at w')."""
    alpha = alpha.detach().requires_grad_(True)
    space = env.space
    weights = mixture_weights(alpha, space)
    params = [p for p in env.parameters() if p.requires_grad]
    if not second_order or not params:
        valid_loss = env.mixture_loss(weights, "valid")
        (grad,) = torch.autograd.grad(valid_loss, [alpha])
        return grad.detach(), float(valid_loss.detach())

    original = [p.detach().clone() for p in params]
    try:
        # The unrolled weights w' (alpha is a constant in this step).
        g_train = _grads(env.mixture_loss(weights.detach(), "train"), params)
        _clip_(g_train, clip)
        unrolled = [w - xi * (g + weight_decay * w) for w, g in zip(original, g_train)]
        _set_(params, unrolled)

        valid_loss = env.mixture_loss(weights, "valid")
        grad_alpha, *g_valid = _grads(valid_loss, [alpha, *params])
        _clip_(g_valid, clip)
        vector = [g + weight_decay * w for g, w in zip(g_valid, unrolled)]

        norm = _norm(vector)
        if norm == 0.0:
            return grad_alpha.detach(), float(valid_loss.detach())
        r = hvp_r / norm
        _set_(params, [w + r * v for w, v in zip(original, vector)])
        (grad_plus,) = _grads(env.mixture_loss(mixture_weights(alpha, space), "train"), [alpha])
        _set_(params, [w - r * v for w, v in zip(original, vector)])
        (grad_minus,) = _grads(env.mixture_loss(mixture_weights(alpha, space), "train"), [alpha])
        implicit = (grad_plus - grad_minus) / (2 * r)
        return (grad_alpha - xi * implicit).detach(), float(valid_loss.detach())
    finally:
        _set_(params, original)


class DartsPolicy:
    """DARTS on a mixture supernet: alternate alpha steps (validation) and weight steps (train)."""

    name: ClassVar[str] = "darts"
    needs_mixture: ClassVar[bool] = True
    trains_supernet: ClassVar[bool] = True
    Config = DartsConfig

    def __init__(self, config: DartsConfig | None = None) -> None:
        self.config = config or DartsConfig()
        self.alpha: torch.Tensor | None = None  # the last search's architecture parameters

    @staticmethod
    def decode(alpha: torch.Tensor, space: Space) -> Architecture:
        """DARTS's parse of softmax(alpha), keeping a fixed prefix of the space as it is."""
        arch = Architecture.from_alpha(torch.softmax(alpha.detach(), -1).cpu().numpy(), space.ops)
        if space.fixed is not None:
            arch = Architecture(space.fixed.nodes + arch.nodes[space.n_fixed :])
        return arch

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
    ) -> SearchResult:
        """Search; with a checkpoint, saved after every epoch and at the end (`SearchProgress`):
        alpha and its Adam state."""
        check_search_args(env, budget, rng, MIXTURE_MEMBERS)
        c = self.config
        space = env.space
        steps = budget.steps(env)
        device = env_device(env)
        dtype = next(iter(env.parameters()), torch.empty(0)).dtype
        rows = space.n_nodes * (space.n_nodes + 1) // 2
        progress = SearchProgress(self, env, budget, rng, callback, checkpoint)
        # Drawn on the CPU, so a seed gives the same alpha on every device.
        generator = torch.Generator().manual_seed(draw_seed(rng))
        noise = torch.randn(rows, len(space.ops), generator=generator, dtype=dtype)
        alpha = (c.init_scale * noise).to(device).requires_grad_(True)
        self.alpha = alpha
        optimizer = torch.optim.Adam(
            [alpha], lr=c.arch_lr, betas=c.arch_betas, weight_decay=c.arch_weight_decay
        )
        saved = progress.resume()
        if saved is not None:
            with torch.no_grad():
                alpha.copy_(saved["alpha"])
            optimizer.load_state_dict(saved["optimizer"])
        if progress.result is not None:
            return progress.result
        state = partial(_darts_state, alpha, optimizer)
        for epoch in range(progress.epoch + 1, budget.epochs + 1):
            train_losses, valid_losses = [], []
            for _ in range(steps):
                grad, valid_loss = _hypergradient(
                    env, alpha, c.second_order, c.xi, c.weight_decay, c.clip, c.hvp_r
                )
                valid_losses.append(valid_loss)
                optimizer.zero_grad()
                alpha.grad = grad
                optimizer.step()
                weights = mixture_weights(alpha.detach(), space)
                train_losses.append(env.train_shared(None, weights=weights, steps=1))
            # after the epoch's last step: at the end of the search these are the final ones
            weights = mixture_weights(alpha.detach(), space)
            arch = self.decode(alpha, space)
            entry = {
                "epoch": epoch,
                "train_loss": float(np.mean(train_losses)),
                # what the alpha steps differentiated: L_valid at w (first order) or w'
                "valid_loss": float(np.mean(valid_losses)),
                "alpha": alpha.detach().cpu().double().tolist(),
                "weights": weights.cpu().double().tolist(),
                "arch": str(arch),
            }
            progress.record(entry, state)

        # Recomputed from alpha (unchanged since the last epoch's): a search resumed after its
        # last epoch runs no epoch here.
        weights = mixture_weights(alpha.detach(), space)
        arch = self.decode(alpha, space)
        strength = _chosen_weight(weights.cpu().numpy(), arch, space)
        result = SearchResult(
            policy=self.name,
            arch=arch,
            ranking=[(arch, strength)],
            score=(
                "DARTS decodes one cell; its score is the product over nodes of the chosen "
                "edge-op weight in softmax(alpha), higher is more confident"
            ),
            history=progress.history,
        )
        return progress.finish(result, state)


def _darts_state(alpha: torch.Tensor, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {"alpha": alpha.detach(), "optimizer": optimizer.state_dict()}


def _chosen_weight(weights: np.ndarray, arch: Architecture, space: Space) -> float:
    value = 1.0
    for j, node in enumerate(arch.nodes, start=1):
        value *= float(weights[j * (j - 1) // 2 + node.pred, space.ops.index(node.op)])
    return value
