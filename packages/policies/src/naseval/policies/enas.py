"""ENAS (Pham et al. 2018, "Efficient Neural Architecture Search via Parameter Sharing").

An LSTM controller emits, for each node of the cell, the predecessor and then the op; it is
trained by REINFORCE with reward c / (validation perplexity on one minibatch) under the shared
weights, which are trained in turn with one controller-sampled architecture per minibatch.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from naseval.policies.base import (
    SINGLE_PATH_MEMBERS,
    Budget,
    SearchCallback,
    SearchCheckpoint,
    SearchProgress,
    SearchResult,
    check_count,
    check_positive,
    check_search_args,
    draw_seed,
    env_device,
    finish_with_ranking,
    is_real,
    sample_index,
    torch_seeded,
)
from naseval.policies.env import SearchEnv
from naseval.space import Architecture, Node, Space


@dataclass(frozen=True)
class EnasConfig:
    """ENAS settings; defaults are the authors' PTB values."""

    lstm_size: int = 100  # controller LSTM units (ENAS paper sec. 2.1; carpedm20 controller_hid)
    lstm_layers: int = 2  # stacked LSTM cells (ENAS paper: two layers; melodyguan lstm_num_layers)
    temperature: float = 5.0  # logits / temperature (carpedm20 softmax_temperature, melodyguan 5.0)
    tanh_constant: float = 2.5  # then tanh_constant * tanh(.) (carpedm20 tanh_c, melodyguan 2.5)
    lr: float = 3.5e-4  # controller Adam learning rate (carpedm20 controller_lr)
    baseline_decay: float = 0.95  # EMA reward baseline decay (ENAS paper, as Sciuto et al. 2020)
    entropy_weight: float = 1e-4  # entropy bonus added to the reward (carpedm20 entropy_coeff)
    reward_c: float = 80.0  # reward = reward_c / valid ppl (carpedm20 reward_c; melodyguan 80)
    max_valid_loss: float = 10.0  # valid loss capped before the reward (melodyguan: minimum(., 10))
    controller_steps: int = 2000  # controller updates per epoch (ENAS paper sec. 3.2; carpedm20)
    reward_batches: int = 1  # validation minibatches per reward (ENAS paper: one minibatch)
    final_samples: int = 100  # architectures sampled at the end (carpedm20 derive_num_sample)
    final_batches: int = 1  # validation minibatches to rank them on (carpedm20 derive: one)
    init_range: float = 0.1  # controller weights ~ U(-r, r) (carpedm20 reset_parameters)

    def __post_init__(self) -> None:
        for name in (
            "lstm_size",
            "lstm_layers",
            "controller_steps",
            "reward_batches",
            "final_samples",
        ):
            check_count("EnasConfig", name, getattr(self, name))
        check_count("EnasConfig", "final_batches", self.final_batches, minimum=0)
        for name in (
            "temperature",
            "tanh_constant",
            "lr",
            "reward_c",
            "max_valid_loss",
            "init_range",
        ):
            check_positive("EnasConfig", name, getattr(self, name))
        check_positive("EnasConfig", "entropy_weight", self.entropy_weight, allow_zero=True)
        if not (is_real(self.baseline_decay) and 0.0 <= self.baseline_decay < 1.0):
            raise ValueError(
                f"EnasConfig.baseline_decay must be in [0, 1), got {self.baseline_decay!r}"
            )

    @classmethod
    def small_space(cls) -> EnasConfig:
        # Sciuto et al. 2020, sec. 4.2: in the 2-node space, 20 sampled architectures per epoch
        # instead of 200, each rewarded on 10 validation batches.
        return cls(controller_steps=20, reward_batches=10)


class EnasController(nn.Module):
    """The ENAS RNN-cell controller over the free nodes of a space.

    Decisions, node by node: the predecessor (j choices for node j), then the op (|ops|). Each
    decision runs the stacked LSTM one step on the embedding of the previous decision, then a
    decision-specific linear head; logits become tanh_constant * tanh(logits / temperature).
    """

    def __init__(self, space: Space, config: EnasConfig) -> None:
        super().__init__()
        self.space = space
        self.config = config
        hidden = config.lstm_size
        n_ops = len(space.ops)
        self.free_nodes = list(range(space.n_fixed + 1, space.n_nodes + 1))
        self.start = nn.Parameter(torch.zeros(1, hidden))  # input of the first decision
        self.pred_embedding = nn.Embedding(space.n_nodes, hidden)
        self.op_embedding = nn.Embedding(n_ops, hidden)
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(config.lstm_layers))
        self.pred_heads = nn.ModuleList(nn.Linear(hidden, j) for j in self.free_nodes)
        self.op_heads = nn.ModuleList(nn.Linear(hidden, n_ops) for _ in self.free_nodes)
        for param in self.parameters():
            nn.init.uniform_(param, -config.init_range, config.init_range)
        for head in [*self.pred_heads, *self.op_heads]:
            nn.init.zeros_(head.bias)

    def _logits(self, head: nn.Module, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        return c.tanh_constant * torch.tanh(head(x).squeeze(0) / c.temperature)

    def run(
        self,
        rng: np.random.Generator | None = None,
        arch: Architecture | None = None,
        greedy: bool = False,
    ) -> tuple[Architecture, torch.Tensor, torch.Tensor]:
        """Sample a cell (with `rng`), score the given `arch`, or decode `greedy`-ly.

        Returns (architecture, log-probability, entropy summed over the decisions).
        """
        if sum([rng is not None, arch is not None, greedy]) != 1:
            raise ValueError("run needs exactly one of rng (sample), arch (score) or greedy")
        device = self.start.device
        hidden = self.config.lstm_size
        h = [torch.zeros(1, hidden, device=device) for _ in self.cells]
        c = [torch.zeros(1, hidden, device=device) for _ in self.cells]
        x: torch.Tensor = self.start
        log_prob = torch.zeros((), device=device)
        entropy = torch.zeros((), device=device)
        nodes = list(self.space.fixed.nodes) if self.space.fixed is not None else []
        for k, j in enumerate(self.free_nodes):
            choice = {}
            for kind, head, embedding in (
                ("pred", self.pred_heads[k], self.pred_embedding),
                ("op", self.op_heads[k], self.op_embedding),
            ):
                for layer, cell in enumerate(self.cells):
                    h[layer], c[layer] = cell(x, (h[layer], c[layer]))
                    x = h[layer]
                logp = F.log_softmax(self._logits(head, x), dim=-1)  # (choices,)
                if arch is not None:
                    node = arch.nodes[j - 1]
                    index = node.pred if kind == "pred" else self.space.ops.index(node.op)
                elif rng is not None:
                    index = sample_index(logp.exp(), rng)
                else:
                    index = int(torch.argmax(logp))
                log_prob = log_prob + logp[index]
                entropy = entropy - (logp.exp() * logp).sum()
                choice[kind] = index
                x = embedding(torch.tensor([index], device=device))
            nodes.append(Node(choice["pred"], self.space.ops[choice["op"]]))
        return Architecture(tuple(nodes)), log_prob, entropy

    def sample(self, rng: np.random.Generator) -> tuple[Architecture, torch.Tensor, torch.Tensor]:
        return self.run(rng=rng)

    def log_prob(self, arch: Architecture) -> torch.Tensor:
        return self.run(arch=arch)[1]

    @torch.no_grad()
    def most_likely(self) -> Architecture:
        """Greedy decoding: the most probable choice at every decision."""
        return self.run(greedy=True)[0]


class EnasPolicy:
    """ENAS: alternate shared-weight training and REINFORCE on the controller, then derive."""

    name: ClassVar[str] = "enas"
    needs_mixture: ClassVar[bool] = False
    trains_supernet: ClassVar[bool] = True
    Config = EnasConfig

    def __init__(self, config: EnasConfig | None = None) -> None:
        self.config = config or EnasConfig()
        self.controller: EnasController | None = None  # the last search's controller
        self._baseline: float | None = None

    def build_controller(
        self, space: Space, rng: np.random.Generator, device: torch.device
    ) -> EnasController:
        with torch_seeded(draw_seed(rng), device):
            return EnasController(space, self.config).to(device)

    def controller_step(
        self,
        env: SearchEnv,
        controller: EnasController,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        offset: int,
    ) -> dict[str, Any]:
        """One REINFORCE update on one sampled architecture; returns what it saw."""
        c = self.config
        arch, log_prob, entropy = controller.sample(rng)
        ppl = float(env.evaluate(arch, batches=c.reward_batches, offset=offset))
        ppl = (
            min(ppl, math.exp(c.max_valid_loss))
            if math.isfinite(ppl)
            else math.exp(c.max_valid_loss)
        )
        reward = c.reward_c / ppl + c.entropy_weight * float(entropy.detach())
        if self._baseline is None:  # carpedm20: the first reward initialises the baseline
            self._baseline = reward
        else:
            self._baseline = c.baseline_decay * self._baseline + (1 - c.baseline_decay) * reward
        loss = -log_prob * (reward - self._baseline)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {
            "arch": arch,
            "ppl": ppl,
            "reward": reward,
            "loss": float(loss.detach()),
            "entropy": float(entropy.detach()),
        }

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
    ) -> SearchResult:
        """Search; with a checkpoint, saved after every epoch and at the end (`SearchProgress`):
        the controller and its Adam state, the baseline and the reward cursor."""
        check_search_args(env, budget, rng, SINGLE_PATH_MEMBERS)
        c = self.config
        space = env.space
        steps = budget.steps(env)
        controller_steps = budget.controller_steps or c.controller_steps
        device = env_device(env)
        progress = SearchProgress(self, env, budget, rng, callback, checkpoint)
        controller = self.build_controller(space, rng, device)
        self.controller = controller
        self._baseline = None
        optimizer = torch.optim.Adam(controller.parameters(), lr=c.lr)
        offset = 0  # validation cursor for rewards: each reward sees the next minibatches
        saved = progress.resume()
        if saved is not None:
            controller.load_state_dict(saved["controller"])
            optimizer.load_state_dict(saved["optimizer"])
            self._baseline, offset = saved["baseline"], saved["offset"]
        if progress.result is not None:
            return progress.result
        for epoch in range(progress.epoch + 1, budget.epochs + 1):
            train_losses = []
            for _ in range(steps):
                with torch.no_grad():
                    arch, _, _ = controller.sample(rng)
                train_losses.append(env.train_shared(arch, steps=1))
            seen = []
            for _ in range(controller_steps):
                seen.append(self.controller_step(env, controller, optimizer, rng, offset))
                offset += c.reward_batches
            counts = Counter(str(s["arch"]) for s in seen)
            entry = {
                "epoch": epoch,
                "train_loss": float(np.mean(train_losses)),
                "controller_loss": float(np.mean([s["loss"] for s in seen])),
                "reward": float(np.mean([s["reward"] for s in seen])),
                "valid_ppl": float(np.mean([s["ppl"] for s in seen])),
                "entropy": float(np.mean([s["entropy"] for s in seen])),
                "baseline": float(self._baseline or 0.0),
                "most_likely": str(controller.most_likely()),
                "n_sampled": len(seen),
                "sampled_top": [[a, n] for a, n in counts.most_common(10)],
            }
            progress.record(entry, partial(self._state, controller, optimizer, offset))

        n_final = budget.final_samples or c.final_samples
        with torch.no_grad():
            candidates = list(dict.fromkeys(controller.sample(rng)[0] for _ in range(n_final)))
        # carpedm20 derive: every candidate is rewarded on the same validation minibatch.
        return finish_with_ranking(
            progress, self.name, env, candidates, c.final_batches,
            f"validation perplexity under the shared weights on {c.final_batches} "
            "minibatch(es) of the controller's final samples, lower is better",
            budget.epochs, partial(self._state, controller, optimizer, offset), n_sampled=n_final,
        )

    def _state(
        self, controller: EnasController, optimizer: torch.optim.Optimizer, offset: int
    ) -> dict[str, Any]:
        return {
            "controller": controller.state_dict(),
            "optimizer": optimizer.state_dict(),
            "baseline": self._baseline,
            "offset": offset,
        }
