"""NAO (Luo et al. 2018, "Neural Architecture Optimization"), weight-sharing version NAO-WS.

An encoder maps an architecture's token sequence to a continuous embedding, a predictor maps
the embedding to its min-max normalised validation loss (log perplexity), and a decoder maps
embeddings back to architectures. New architectures come from gradient steps on the embeddings
of the best ones, down the predicted loss, decoded back; the pool of architectures trained in the
supernet is refreshed with them every round (renqianluo/NAO NAO-WS/rnn).
"""

from __future__ import annotations

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
    is_real,
    json_number,
    rank_on_validation,
    torch_seeded,
)
from naseval.policies.env import SearchEnv
from naseval.space import Architecture, Node, Space

SOS = 0  # start-of-sequence token of the decoder (NAO: SOS_ID = 0)


@dataclass(frozen=True)
class NaoConfig:
    """NAO settings; defaults from renqianluo/NAO NAO-WS/rnn train_search.sh / train_search.py."""

    seed_pool: int = 1000  # random architectures in the first pool (controller_num_seed_arch)
    eval_every: int = 200  # supernet epochs between pool evaluations (child_eval_every_epochs)
    epd_epochs: int = 1000  # passes over the pool per EPD training (controller_train_epochs)
    batch_size: int = 100  # EPD minibatch (controller_batch_size)
    lr: float = 1e-3  # EPD Adam learning rate (controller_lr)
    weight_decay: float = 1e-4  # EPD Adam weight decay (controller_weight_decay)
    grad_clip: float = 5.0  # EPD gradient norm clip (controller_max_gradient_norm)
    trade_off: float = 0.8  # loss = trade_off * MSE + (1 - trade_off) * NLL (controller_trade_off)
    emb_size: int = 48  # token embedding; a node's two are concatenated (encoder_emb_size)
    hidden_size: int = 96  # encoder and decoder LSTM units (encoder/decoder_hidden_size)
    layers: int = 1  # encoder and decoder LSTM layers (encoder/decoder_num_layers)
    mlp_layers: int = 4  # predictor hidden layers (controller_mlp_num_layers)
    mlp_hidden: int = 200  # predictor hidden units (controller_mlp_hidden_size)
    encoder_dropout: float = 0.1  # dropout on the encoder's embeddings (controller_encoder_dropout)
    top_k: int = 100  # best pool architectures that seed new ones (train_search.py: top100)
    new_archs: int = 300  # new architectures per round (controller_max_new_archs)
    max_step_size: int = 30  # step sizes 1, 2, ... up to this (controller_max_step_size)
    random_archs: int = 50  # fresh random architectures per round (train_search.py: 50)
    eval_batches: int = 1  # validation minibatches per pool architecture score
    init_range: float = 0.04  # predictor MLP weights ~ U(-r, r) (NAO-WS encoder INITRANGE)

    def __post_init__(self) -> None:
        for name in (
            "seed_pool",
            "eval_every",
            "epd_epochs",
            "batch_size",
            "emb_size",
            "hidden_size",
            "layers",
            "mlp_hidden",
            "top_k",
            "new_archs",
            "max_step_size",
        ):
            check_count("NaoConfig", name, getattr(self, name))
        for name in ("mlp_layers", "random_archs", "eval_batches"):
            check_count("NaoConfig", name, getattr(self, name), minimum=0)
        for name in ("lr", "grad_clip", "init_range"):
            check_positive("NaoConfig", name, getattr(self, name))
        check_positive("NaoConfig", "weight_decay", self.weight_decay, allow_zero=True)
        if not (is_real(self.trade_off) and 0.0 <= self.trade_off <= 1.0):
            raise ValueError(f"NaoConfig.trade_off must be in [0, 1], got {self.trade_off!r}")
        if not (is_real(self.encoder_dropout) and 0.0 <= self.encoder_dropout < 1.0):
            raise ValueError(
                f"NaoConfig.encoder_dropout must be in [0, 1), got {self.encoder_dropout!r}"
            )
        if self.new_archs + self.random_archs > self.seed_pool:
            raise ValueError(
                f"NaoConfig.new_archs + random_archs ({self.new_archs} + {self.random_archs}) "
                f"must not exceed seed_pool ({self.seed_pool}): they replace the worst of the pool"
            )

    @classmethod
    def small_space(cls) -> NaoConfig:
        # Sciuto et al. 2020, sec. 4.2, 2-node space (32 cells): 20% of the space as the first
        # pool, the EPD trained for 250 iterations every 50 epochs, new cells grown from the
        # top 4, at most 3 new per round; one fresh random cell keeps the pool's size.
        return cls(seed_pool=6, eval_every=50, epd_epochs=250, top_k=4, new_archs=3, random_archs=1)


# -- the encoder-predictor-decoder ------------------------------------------------------------


class ArchCodec:
    """Token sequences of a space's free nodes: pred p -> 1 + p, op k -> 1 + n + k; 0 is SOS."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.free_nodes = list(range(space.n_fixed + 1, space.n_nodes + 1))
        self.vocab_size = 1 + space.n_nodes + len(space.ops)
        self.length = 2 * len(self.free_nodes)

    def encode(self, archs: list[Architecture]) -> torch.Tensor:
        """archs -> (B, length) long tensor."""
        n = self.space.n_nodes
        rows = []
        for arch in archs:
            row = []
            for j in self.free_nodes:
                node = arch.nodes[j - 1]
                row += [1 + node.pred, 1 + n + self.space.ops.index(node.op)]
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long)

    def allowed(self, step: int) -> tuple[int, int]:
        """The token range [lo, hi) valid at decoding step `step`."""
        n = self.space.n_nodes
        j = self.free_nodes[step // 2]
        return (1, 1 + j) if step % 2 == 0 else (1 + n, 1 + n + len(self.space.ops))

    def decode(self, tokens: list[int]) -> Architecture:
        n = self.space.n_nodes
        nodes = list(self.space.fixed.nodes) if self.space.fixed is not None else []
        for t in range(0, len(tokens), 2):
            nodes.append(Node(tokens[t] - 1, self.space.ops[tokens[t + 1] - 1 - n]))
        return Architecture(tuple(nodes))


class Encoder(nn.Module):
    """Tokens -> per-node outputs (L2-normalised) -> mean -> L2-normalised embedding -> score."""

    def __init__(self, codec: ArchCodec, config: NaoConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(codec.vocab_size, config.emb_size)
        self.dropout = nn.Dropout(config.encoder_dropout)
        # NAO-WS rnn feeds one node (its two token embeddings side by side) per LSTM step.
        self.rnn = nn.LSTM(2 * config.emb_size, config.hidden_size, config.layers, batch_first=True)
        mlp: list[nn.Module] = []
        width = config.hidden_size
        for _ in range(config.mlp_layers):
            mlp += [nn.Linear(width, config.mlp_hidden), nn.ReLU()]
            width = config.mlp_hidden
        mlp.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*mlp)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 2m) tokens -> (B, m, H) per-node outputs, each of unit norm."""
        x = self.dropout(self.embedding(tokens))  # (B, 2m, E)
        x = x.reshape(x.shape[0], x.shape[1] // 2, -1)  # (B, m, 2E)
        out, _ = self.rnn(x)  # (B, m, H)
        return F.normalize(out, p=2, dim=-1)

    @staticmethod
    def pool(outputs: torch.Tensor) -> torch.Tensor:
        """(B, m, H) -> (B, H) architecture embedding of unit norm."""
        return F.normalize(outputs.mean(dim=1), p=2, dim=-1)

    def predict(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, H) -> (B,) predicted normalised validation loss in (0, 1)."""
        return torch.sigmoid(self.mlp(embedding)).squeeze(-1)


class Decoder(nn.Module):
    """LSTM with attention over the encoder's per-node outputs; starts from the embedding."""

    def __init__(self, codec: ArchCodec, config: NaoConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.codec = codec
        self.layers = config.layers
        self.embedding = nn.Embedding(codec.vocab_size, hidden)
        self.rnn = nn.LSTM(hidden, hidden, config.layers, batch_first=True)
        self.attention_out = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, codec.vocab_size)

    def _step(
        self,
        inputs: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        context: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """inputs (B, T) tokens, context (B, m, H) -> log-probs (B, T, V) and the new state."""
        output, state = self.rnn(self.embedding(inputs), state)  # (B, T, H)
        scores = torch.bmm(output, context.transpose(1, 2))  # (B, T, m)
        mix = torch.bmm(F.softmax(scores, dim=-1), context)  # (B, T, H)
        output = torch.tanh(self.attention_out(torch.cat([mix, output], dim=-1)))
        return F.log_softmax(self.out(output), dim=-1), state

    def _initial_state(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = embedding.unsqueeze(0).repeat(self.layers, 1, 1).contiguous()  # (layers, B, H)
        return h, h.clone()

    def forward(
        self, targets: torch.Tensor, embedding: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced log-probs (B, T, V) of `targets` (B, T)."""
        sos = torch.full_like(targets[:, :1], SOS)
        inputs = torch.cat([sos, targets[:, :-1]], dim=1)
        log_probs, _ = self._step(inputs, self._initial_state(embedding), context)
        return log_probs

    def greedy(self, embedding: torch.Tensor, context: torch.Tensor) -> list[list[int]]:
        """Decode (B, H) embeddings into token lists, each step restricted to valid tokens."""
        state = self._initial_state(embedding)
        token = torch.full((embedding.shape[0], 1), SOS, dtype=torch.long, device=embedding.device)
        tokens = []
        for step in range(self.codec.length):
            log_probs, state = self._step(token, state, context)  # (B, 1, V)
            lo, hi = self.codec.allowed(step)
            token = log_probs[:, :, lo:hi].argmax(dim=-1) + lo  # (B, 1)
            tokens.append(token)
        return torch.cat(tokens, dim=1).tolist()


class EncoderPredictorDecoder(nn.Module):
    """NAO's controller: fit it on (architecture, normalised score) pairs, then propose."""

    def __init__(self, space: Space, config: NaoConfig) -> None:
        super().__init__()
        self.codec = ArchCodec(space)
        self.config = config
        self.encoder = Encoder(self.codec, config)
        self.decoder = Decoder(self.codec, config)
        # NAO-WS rnn encoder.py: the predictor MLP's weights ~ U(-INITRANGE, INITRANGE), its
        # biases 0; the embeddings, LSTMs, attention and output layer keep PyTorch's defaults.
        for layer in self.encoder.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.uniform_(layer.weight, -config.init_range, config.init_range)
                nn.init.zeros_(layer.bias)

    @property
    def device(self) -> torch.device:
        return self.encoder.embedding.weight.device

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(trade-off loss, MSE, NLL) on tokens (B, T) with normalised targets (B,)."""
        outputs = self.encoder.embed(tokens)
        embedding = self.encoder.pool(outputs)
        mse = F.mse_loss(self.encoder.predict(embedding), targets)
        log_probs = self.decoder(tokens, embedding, outputs)  # (B, T, V)
        nll = F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), tokens.reshape(-1))
        trade_off = self.config.trade_off
        return trade_off * mse + (1 - trade_off) * nll, mse, nll

    def fit(
        self,
        archs: list[Architecture],
        targets: np.ndarray,
        epochs: int,
        rng: np.random.Generator,
        optimizer: torch.optim.Optimizer,
    ) -> dict[str, float]:
        """Train for `epochs` shuffled passes; returns the last pass's mean losses."""
        c = self.config
        tokens = self.codec.encode(archs).to(self.device)
        values = torch.as_tensor(np.asarray(targets), dtype=torch.float32, device=self.device)
        self.train()
        mse_sum = nll_sum = 0.0
        batches = 0
        for _ in range(epochs):
            order = torch.as_tensor(rng.permutation(len(archs)), device=self.device)
            mse_sum = nll_sum = 0.0
            batches = 0
            for start in range(0, len(archs), c.batch_size):
                index = order[start : start + c.batch_size]
                loss, mse, nll = self.loss(tokens[index], values[index])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), c.grad_clip)
                optimizer.step()
                mse_sum += float(mse.detach())
                nll_sum += float(nll.detach())
                batches += 1
        self.eval()
        return {"mse": mse_sum / max(batches, 1), "nll": nll_sum / max(batches, 1)}

    @torch.no_grad()
    def predict(self, archs: list[Architecture]) -> np.ndarray:
        """Predicted normalised validation loss (lower is better) of each architecture."""
        self.eval()
        outputs = self.encoder.embed(self.codec.encode(archs).to(self.device))
        return self.encoder.predict(self.encoder.pool(outputs)).double().cpu().numpy()

    @torch.no_grad()
    def reconstruct(self, archs: list[Architecture]) -> list[Architecture]:
        """Encode then decode: what the decoder makes of each architecture's own embedding."""
        self.eval()
        outputs = self.encoder.embed(self.codec.encode(archs).to(self.device))
        return [
            self.codec.decode(t) for t in self.decoder.greedy(self.encoder.pool(outputs), outputs)
        ]

    def propose(self, archs: list[Architecture], step_size: float) -> list[Architecture]:
        """One gradient step of size `step_size` on each architecture's per-node outputs,
        down the predicted perplexity, re-normalised and pooled, then decoded (NAO infer)."""
        self.eval()
        outputs = self.encoder.embed(self.codec.encode(archs).to(self.device)).detach()
        outputs.requires_grad_(True)
        predicted = self.encoder.predict(self.encoder.pool(outputs))
        (grad,) = torch.autograd.grad(predicted.sum(), [outputs])
        with torch.no_grad():
            moved = F.normalize(outputs - step_size * grad, p=2, dim=-1)
            tokens = self.decoder.greedy(self.encoder.pool(moved), moved)
        return [self.codec.decode(t) for t in tokens]


def log_perplexities(perplexities: list[float] | np.ndarray) -> np.ndarray:
    """Validation losses from perplexities; non-finite or non-positive ones become inf."""
    values = np.asarray(perplexities, dtype=float)
    ok = np.isfinite(values) & (values > 0)
    return np.where(ok, np.log(np.where(ok, values, 1.0)), np.inf)


def normalise_scores(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (NAO utils normalize_target); all equal -> all 0.5.

    Non-finite values (diverged evaluations) count as the worst finite one.
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        return np.full_like(values, 0.5)
    values = np.where(finite, values, values[finite].max())
    span = values.max() - values.min()
    return np.full_like(values, 0.5) if span == 0 else (values - values.min()) / span


# -- the policy ---------------------------------------------------------------------------------


class NaoPolicy:
    """NAO-WS: pool training in the supernet, EPD fitting, gradient-based proposals, repeat."""

    name: ClassVar[str] = "nao"
    needs_mixture: ClassVar[bool] = False
    trains_supernet: ClassVar[bool] = True
    Config = NaoConfig

    def __init__(self, config: NaoConfig | None = None) -> None:
        self.config = config or NaoConfig()
        self.epd: EncoderPredictorDecoder | None = None  # the last search's EPD

    def build_epd(
        self, space: Space, rng: np.random.Generator, device: torch.device
    ) -> tuple[EncoderPredictorDecoder, torch.optim.Optimizer]:
        with torch_seeded(draw_seed(rng), device):
            epd = EncoderPredictorDecoder(space, self.config).to(device)
        optimizer = torch.optim.Adam(
            epd.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        return epd, optimizer

    def generate(
        self,
        epd: EncoderPredictorDecoder,
        ranked_pool: list[Architecture],
        known: set[Architecture],
    ) -> tuple[list[Architecture], int]:
        """New unique architectures grown from the top of the pool, with step sizes 1, 2, ...

        Returns them (at most `new_archs`) and the last step size tried.
        """
        c = self.config
        top = ranked_pool[: c.top_k]
        new: dict[Architecture, None] = {}
        step_size = 0
        while len(new) < c.new_archs and step_size < c.max_step_size:
            step_size += 1
            for arch in epd.propose(top, float(step_size)):
                if arch not in known and arch not in new:
                    new[arch] = None
                if len(new) >= c.new_archs:
                    break
        return list(new), step_size

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
    ) -> SearchResult:
        """Search; with a checkpoint, saved after every epoch and at the end (`SearchProgress`):
        the EPD and its Adam state, the pool and its last scores."""
        check_search_args(env, budget, rng, SINGLE_PATH_MEMBERS)
        c = self.config
        space = env.space
        if c.seed_pool > space.size:
            raise ValueError(
                f"NaoConfig.seed_pool ({c.seed_pool}) is larger than the space ({space.size} cells)"
            )
        steps = budget.steps(env)
        eval_every = budget.eval_every or c.eval_every
        epd_epochs = budget.controller_steps or c.epd_epochs
        if budget.epochs <= eval_every:
            source = "Budget.eval_every" if budget.eval_every else "NaoConfig.eval_every"
            raise ValueError(
                f"NAO: Budget.epochs ({budget.epochs}) must exceed {source} ({eval_every}): "
                "with no pool evaluation before the last epoch the encoder-predictor-decoder "
                "never runs and the result would be the best of a random pool; lower "
                f"{source} or raise Budget.epochs"
            )
        device = env_device(env)
        progress = SearchProgress(self, env, budget, rng, callback, checkpoint)
        epd, optimizer = self.build_epd(space, rng, device)
        self.epd = epd
        pool = _fresh_archs(space, rng, c.seed_pool, set())
        ranked: list[tuple[Architecture, float]] = []  # the last pool evaluation, best first
        saved = progress.resume()
        if saved is not None:
            epd.load_state_dict(saved["epd"])
            optimizer.load_state_dict(saved["optimizer"])
            pool = [Architecture.parse(a) for a in saved["pool"]]
            ranked = [(Architecture.parse(a), float(s)) for a, s in saved["ranked"]]
        if progress.result is not None:
            return progress.result
        for epoch in range(progress.epoch + 1, budget.epochs + 1):
            # Train the supernet with one pool architecture per minibatch; the epochs that end
            # a round (every eval_every, and the last) also score the pool and, but for the last,
            # fit the EPD and refresh the pool, all in that epoch's record.
            losses = [
                env.train_shared(pool[int(rng.integers(len(pool)))], steps=1) for _ in range(steps)
            ]
            entry: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
            if epoch % eval_every == 0 or epoch == budget.epochs:
                ranked = rank_on_validation(env, pool, c.eval_batches)
                pool = [a for a, _ in ranked]
                entry["pool"] = [[str(a), json_number(s)] for a, s in ranked]
                if epoch < budget.epochs:
                    pool = self._round(epd, optimizer, ranked, epd_epochs, rng, device, entry)
            progress.record(entry, partial(self._state, epd, optimizer, pool, ranked))

        result = SearchResult(
            policy=self.name,
            arch=ranked[0][0],
            ranking=ranked,  # the last evaluation's, best first
            score=(
                f"validation perplexity under the shared weights on {c.eval_batches} "
                "minibatch(es) of NAO's final pool, lower is better"
            ),
            history=progress.history,
        )
        return progress.finish(result, partial(self._state, epd, optimizer, pool, ranked))

    def _round(
        self,
        epd: EncoderPredictorDecoder,
        optimizer: torch.optim.Optimizer,
        ranked: list[tuple[Architecture, float]],
        epd_epochs: int,
        rng: np.random.Generator,
        device: torch.device,
        entry: dict[str, Any],
    ) -> list[Architecture]:
        """Fit the EPD on the scored pool, grow new cells from its best; the next pool (what
        the round did goes into `entry`)."""
        c = self.config
        space = epd.codec.space
        pool, scores = [a for a, _ in ranked], [s for _, s in ranked]
        # NAO-WS scores a cell by its validation loss (log perplexity) and min-max
        # normalises those losses (rnn model_search.evaluate, utils.normalize_target).
        targets = normalise_scores(log_perplexities(scores))
        with torch_seeded(draw_seed(rng), device):  # the encoder's dropout
            losses_epd = epd.fit(pool, targets, epd_epochs, rng, optimizer)
        new, step_size = self.generate(epd, pool, set(pool))
        n_random = min(c.random_archs, space.size - len(new))
        keep = pool[: max(len(pool) - len(new) - n_random, 0)]
        fresh = _fresh_archs(space, rng, n_random, set(keep) | set(new))
        entry.update(
            {
                "epd_mse": losses_epd["mse"],
                "epd_nll": losses_epd["nll"],
                "new_archs": [str(a) for a in new],
                "random_archs": [str(a) for a in fresh],
                "step_size": step_size,
            }
        )
        return keep + new + fresh

    @staticmethod
    def _state(
        epd: EncoderPredictorDecoder,
        optimizer: torch.optim.Optimizer,
        pool: list[Architecture],
        ranked: list[tuple[Architecture, float]],
    ) -> dict[str, Any]:
        return {
            "epd": epd.state_dict(),
            "optimizer": optimizer.state_dict(),
            "pool": [str(a) for a in pool],
            "ranked": [[str(a), s] for a, s in ranked],
        }


def _fresh_archs(
    space: Space, rng: np.random.Generator, n: int, exclude: set[Architecture]
) -> list[Architecture]:
    """Up to n uniform architectures, distinct and not in `exclude` (fewer if the space is full)."""
    available = space.size - len(exclude)
    n = min(n, max(available, 0))
    if space.size <= 4 * (n + len(exclude)):  # small space: draw from what is left
        left = [
            a for a in (space.at(int(i)) for i in rng.permutation(space.size)) if a not in exclude
        ]
        return left[:n]
    found: dict[Architecture, None] = {}
    while len(found) < n:
        arch = space.sample(rng)
        if arch not in exclude:
            found.setdefault(arch, None)
    return list(found)
