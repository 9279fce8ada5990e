"""CLI presets: typed trees of the libraries' own configs, one per scale of experiment.

`quick` (the default) checks the whole pipeline on this machine in minutes: real PTB (a prefix of
the training split), tiny models, tiny budgets, 2 seeds, and every policy running its real
algorithm. `paper` is the protocol of Sciuto et al. (ICLR 2020): each policy's published search
configuration, evaluation at hidden size 850 for 1000 epochs with SGD then ASGD, 10 seeds, and
the 2-node variants of section 4.2. Every leaf can be changed with `--set key=value` or a TOML
`--config` file; `nas config --preset P` lists the keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from naseval.policies import POLICIES, Budget
from naseval.trainer import TrainConfig

SMALL_SPACE_MAX_SIZE = 1000  # spaces up to this size use each policy's small-space variant


@dataclass(frozen=True)
class DataSettings:
    """Which corpus, and how much of it."""

    corpus: Literal["ptb", "synthetic"] = "ptb"  # real Penn Treebank, or a synthetic Markov stream
    path: str | None = None  # PTB folder; None: NASEVAL_DATA_DIR, then the cache, then download
    download: bool = True  # fetch (and verify) PTB into the cache when it is nowhere else
    train_tokens: int | None = None  # use only this prefix of the training split; None: all
    valid_tokens: int | None = None  # prefix of the validation split; None: all
    test_tokens: int | None = None  # prefix of the test split; None: all
    synthetic_vocab: int = 50  # synthetic corpus: vocabulary size
    synthetic_tokens: int = 4000  # synthetic corpus: training tokens (valid and test: a quarter)


@dataclass(frozen=True)
class SearchEpochs:
    """Search epochs of the policies whose authors used their own; None: `budget.epochs`."""

    darts: int | None = None  # DARTS rnn/train_search.py: 50
    enas: int | None = None  # ENAS-pytorch config.py max_epoch: 150
    nao: int | None = None  # NAO-WS rnn/train_search.sh: 1000, the EPD every 200 of them
    random_ws: int | None = None  # random-WS (Li & Talwalkar) trains the DARTS search supernet


@dataclass(frozen=True)
class SearchSettings:
    """The search phase: the weight-sharing supernet and the budget every policy gets."""

    supernet: TrainConfig  # training of the shared weights
    budget: Budget  # epochs (and per-policy step counts) of every search
    sharing: Literal["node", "edge", "edge-op"] = "node"  # weight-sharing scheme of the supernet
    epochs: SearchEpochs = field(default_factory=SearchEpochs)  # per-policy epochs over `budget`

    def budget_for(self, policy: str) -> Budget:
        epochs = getattr(self.epochs, _field_name(policy), None)
        return self.budget if epochs is None else dataclasses.replace(self.budget, epochs=epochs)


@dataclass(frozen=True)
class EvaluationSettings:
    """Training each found architecture from scratch."""

    train: TrainConfig  # the from-scratch training
    seed: int = 0  # the ONE evaluation seed every found architecture is trained with


@dataclass(frozen=True)
class GroundTruthSettings:
    """The exhaustive ground truth of a small space."""

    train: TrainConfig  # training of every architecture of the space
    seeds: int = 2  # training seeds per architecture (0 .. seeds-1)


@dataclass(frozen=True)
class RankingSettings:
    """The weight-sharing ranking study (Figure 4) and the sharing study (Figure 5)."""

    supernet: TrainConfig  # training of the shared weights (uniformly sampled paths)
    seeds: int = 2  # supernet seeds, one ranking each
    eval_batches: int = 0  # validation minibatches per architecture; 0: the whole split
    sharing_fixed: str = "tanh:0 relu:1"  # the sharing study's fixed first nodes
    sharing_nodes: int = 3  # the sharing study's space: nodes in all, the fixed ones included


@dataclass(frozen=True)
class Resources:
    """What one job asks of a Ray cluster."""

    num_cpus: float = 1.0  # CPUs per job
    num_gpus: float = 0.0  # GPUs per job (the paper preset asks for one)


@dataclass(frozen=True)
class Preset:
    """Everything an experiment needs, from data to resources."""

    name: str  # "quick" or "paper"
    scale: str  # one line said first: what scale runs, and what its results can be trusted for
    seeds: int  # search seeds per policy (0 .. seeds-1) unless --seeds says otherwise
    policies: tuple[str, ...]  # policies of `nas run compare`, the random baseline among them
    data: DataSettings
    search: SearchSettings
    policy: Any  # per-policy configs for large spaces (a field per registered policy)
    policy_small: Any  # the same, in their small-space variants (paper sec. 4.2)
    evaluation: EvaluationSettings
    ground_truth: GroundTruthSettings
    ranking: RankingSettings
    resources: Resources = field(default_factory=Resources)

    def policy_config(self, name: str, space_size: int) -> Any:
        group = self.policy_small if space_size <= SMALL_SPACE_MAX_SIZE else self.policy
        return getattr(group, _field_name(name))


def _field_name(policy: str) -> str:
    return policy.replace("-", "_")


def _policy_group(small: bool, overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """A dataclass with one field per registered policy, holding that policy's Config."""
    names = sorted(POLICIES)
    fields_spec = []
    values = {}
    for name in names:
        config_type = POLICIES[name].Config
        config = config_type.small_space() if small else config_type()
        changes = (overrides or {}).get(name)
        if changes:
            config = dataclasses.replace(config, **changes)
        fields_spec.append((_field_name(name), config_type))
        values[_field_name(name)] = config
    group = dataclasses.make_dataclass(
        "PolicySmallSpaceConfigs" if small else "PolicyConfigs", fields_spec, frozen=True
    )
    return group(**values)


DEFAULT_POLICIES = ("darts", "nao", "enas", "random")


QUICK_HIDDEN = 32  # hidden (= embedding) size of every quick model


def quick() -> Preset:
    """Minutes on a laptop CPU: the pipeline end to end, not the science."""
    size = {"emsize": QUICK_HIDDEN, "nhid": QUICK_HIDDEN, "nhidlast": QUICK_HIDDEN}
    batches = {"batch_size": 16, "eval_batch_size": 16, "test_batch_size": 16}
    evaluation = TrainConfig.tiny(**size, **batches, epochs=2, max_steps_per_epoch=50)
    supernet = TrainConfig.tiny(**size, **batches, epochs=3, max_steps_per_epoch=25, asgd=False)
    shrink = _quick_policy_overrides(supernet.lr)
    return Preset(
        name="quick",
        scale=(
            f"quick preset: real PTB (first 50k training tokens), hidden {QUICK_HIDDEN}, 3 search "
            "epochs of 25 steps, 2 training epochs of 50 steps, 2 seeds; quick results check the "
            "pipeline, not the science"
        ),
        seeds=2,
        policies=tuple(p for p in DEFAULT_POLICIES if p in POLICIES),
        data=DataSettings(corpus="ptb", train_tokens=50_000, valid_tokens=3_000, test_tokens=3_000),
        search=SearchSettings(
            supernet=supernet,
            budget=Budget(epochs=3, steps_per_epoch=25, controller_steps=5, final_samples=8,
                          eval_every=1),
        ),
        policy=_policy_group(small=False, overrides=shrink),
        policy_small=_policy_group(small=True, overrides=shrink),
        evaluation=EvaluationSettings(train=evaluation, seed=0),
        ground_truth=GroundTruthSettings(train=evaluation, seeds=2),
        ranking=RankingSettings(supernet=supernet, seeds=2, eval_batches=4),
    )


def _quick_policy_overrides(weight_lr: float) -> dict[str, dict[str, Any]]:
    """Shrink what the quick budget does not already bound (controller sizes, pools)."""
    known: dict[str, dict[str, Any]] = {
        "darts": {"xi": weight_lr},  # the unrolled step uses the supernet's weight lr
        "enas": {"lstm_size": 16, "controller_steps": 5, "final_samples": 8, "reward_batches": 1},
        "nao": {"seed_pool": 8, "new_archs": 3, "random_archs": 2, "top_k": 4, "epd_epochs": 3,
                "eval_every": 1, "mlp_layers": 1, "mlp_hidden": 16, "hidden_size": 16,
                "emb_size": 8, "batch_size": 8},
        "random-ws": {"final_samples": 8},
    }
    out = {}
    for name, changes in known.items():
        if name in POLICIES:
            names = {f.name for f in dataclasses.fields(POLICIES[name].Config)}
            out[name] = {k: v for k, v in changes.items() if k in names}
    return out


def paper() -> Preset:
    """Sciuto et al. (ICLR 2020): published search configs, 1000-epoch evaluation, 10 seeds."""
    evaluation = TrainConfig.darts_eval(epochs=1000)
    search_train = TrainConfig.darts_search()
    return Preset(
        name="paper",
        scale=(
            "paper preset: full PTB, published search configurations, evaluation at hidden 850 "
            "for 1000 epochs (SGD then ASGD), 10 seeds; GPU-weeks of compute"
        ),
        seeds=10,
        policies=tuple(p for p in DEFAULT_POLICIES if p in POLICIES),
        data=DataSettings(corpus="ptb"),
        search=SearchSettings(
            supernet=search_train,
            budget=Budget(epochs=search_train.epochs),
            epochs=SearchEpochs(darts=50, enas=150, nao=1000, random_ws=50),
        ),
        policy=_policy_group(small=False),
        policy_small=_policy_group(small=True),
        evaluation=EvaluationSettings(train=evaluation, seed=0),
        ground_truth=GroundTruthSettings(train=evaluation, seeds=10),
        ranking=RankingSettings(supernet=search_train, seeds=10, eval_batches=0),
        resources=Resources(num_cpus=4.0, num_gpus=1.0),
    )


PRESETS: dict[str, Callable[[], Preset]] = {"quick": quick, "paper": paper}
