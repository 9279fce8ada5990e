"""Every policy resumes from its checkpoint bit for bit.

A "kill" is a callback that raises once it has been handed entry `k`: by then the checkpoint
of that epoch is saved (`SearchProgress` saves before it calls back), so the rerun — fresh
policy, fresh env, fresh rng of the same seed, the same file — must continue after epoch `k`,
send only the entries after it, and end exactly where an uninterrupted search ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from naseval.policies import (
    Budget,
    FileCheckpoint,
    SearchResult,
    TabularEnv,
    ToyMixtureEnv,
    make_policy,
)
from naseval.space import Architecture, Space

SEED = 3
SPACE3 = Space(3)
TABLE3 = {arch: 60.0 + 0.5 * SPACE3.index(arch) for arch in SPACE3}


def tabular() -> TabularEnv:
    return TabularEnv(SPACE3, TABLE3, noise=0.1, seed=1)


def toy() -> ToyMixtureEnv:
    return ToyMixtureEnv(SPACE3, seed=1, lr=0.2)


@dataclass(frozen=True)
class Case:
    """A policy's published loop, shrunk."""

    policy: str
    settings: dict[str, Any]
    env: Callable[[], Any]
    budget: Budget
    small_space: bool = False  # start from Config.small_space() (NAO: a pool of 6)


CASES = {
    "random": Case("random", {}, tabular, Budget(epochs=1)),
    "random-ws": Case("random-ws", {"final_samples": 10}, tabular, Budget(3, steps_per_epoch=3)),
    "enas": Case(
        "enas",
        {"controller_steps": 5, "final_samples": 8, "lstm_size": 16},
        tabular,
        Budget(epochs=3, steps_per_epoch=3),
    ),
    "darts": Case("darts", {"arch_lr": 0.03}, toy, Budget(epochs=3, steps_per_epoch=4)),
    "darts-2nd": Case(
        "darts",
        {"arch_lr": 0.03, "second_order": True, "xi": 0.2},
        toy,
        Budget(epochs=3, steps_per_epoch=4),
    ),
    "nao": Case(
        "nao",
        {"hidden_size": 16, "emb_size": 8, "mlp_layers": 1},
        tabular,
        Budget(epochs=4, steps_per_epoch=2, eval_every=2, controller_steps=3),  # 3 EPD epochs
        small_space=True,
    ),
}
# Entries each case sends: its epochs, plus the final stage of random-WS and ENAS.
ENTRIES = {"random": 1, "random-ws": 4, "enas": 4, "darts": 3, "darts-2nd": 3, "nao": 4}
KILLS = [(name, k) for name, n in ENTRIES.items() for k in range(n)]


class Killed(Exception):
    """Stands for the process dying."""


def kill_at(k: int, seen: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    def callback(entry: dict[str, Any]) -> None:
        seen.append(entry)
        if len(seen) == k + 1:
            raise Killed

    return callback


def search(
    case: str,
    checkpoint: FileCheckpoint | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    *,
    budget: Budget | None = None,
    seed: int = SEED,
) -> tuple[SearchResult, Any]:
    spec = CASES[case]
    env = spec.env()
    policy = make_policy(spec.policy, spec.settings, small_space=spec.small_space)
    result = policy.search(
        env, budget or spec.budget, np.random.default_rng(seed), callback, checkpoint
    )
    return result, env


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Equal to the bit: tensors by torch.equal (and dtype), containers item by item."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Per case: the result, the env's final state and the last checkpoint of a run with a
    checkpoint that nobody stops."""
    runs = {}
    for case in CASES:
        path = tmp_path_factory.mktemp(case) / "search.pt"
        seen: list[dict[str, Any]] = []
        result, env = search(case, FileCheckpoint(path), seen.append)
        assert seen == result.history  # everything sent once, in order
        runs[case] = (result, env.state_dict(), FileCheckpoint(path).load())
    return runs


@pytest.mark.parametrize("case", list(CASES))
def test_a_checkpoint_changes_nothing_in_the_result(
    case: str, uninterrupted: dict[str, Any]
) -> None:
    result, env = search(case)
    assert result.to_dict() == uninterrupted[case][0].to_dict()
    assert_same(env.state_dict(), uninterrupted[case][1])


@pytest.mark.parametrize(("case", "k"), KILLS)
def test_a_killed_search_resumes_bit_for_bit(
    case: str, k: int, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    expected, env_state, last_checkpoint = uninterrupted[case]
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    before: list[dict[str, Any]] = []
    with pytest.raises(Killed):
        search(case, checkpoint, kill_at(k, before))
    assert before == expected.history[: k + 1]

    after: list[dict[str, Any]] = []
    resumed, env = search(case, checkpoint, after.append)
    assert resumed.to_dict() == expected.to_dict()
    assert after == expected.history[k + 1 :]  # restored entries are not sent again
    assert_same(env.state_dict(), env_state, "env")
    assert_same(checkpoint.load(), last_checkpoint, "checkpoint")


@pytest.mark.parametrize("case", ["random", "enas", "nao"])
def test_a_finished_search_returns_its_result_at_once(
    case: str, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    first, _ = search(case, checkpoint)
    sent: list[dict[str, Any]] = []
    again, env = search(case, checkpoint, sent.append)
    assert again.to_dict() == first.to_dict() == uninterrupted[case][0].to_dict()
    assert sent == []
    # The trainers' env is restored to its end (not asked again); Random's was never touched.
    assert_same(env.state_dict(), uninterrupted[case][1], "env")


def one_line_error(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budget": Budget(epochs=4, steps_per_epoch=3)}, "budget.epochs"),
        ({"budget": Budget(epochs=3, steps_per_epoch=3, final_samples=9)}, "budget.final_samples"),
        ({"seed": SEED + 1}, "rng"),
    ],
)
def test_a_checkpoint_of_another_search_is_a_one_line_error(
    change: dict[str, Any], field: str, tmp_path: Path
) -> None:
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    with pytest.raises(Killed):
        search("enas", checkpoint, kill_at(0, []))
    with pytest.raises(ValueError, match=field) as error:
        search("enas", checkpoint, **change)
    message = one_line_error(error)
    assert str(checkpoint.path) in message and "delete it" in message


def test_a_checkpoint_of_another_policy_or_config_names_the_field(tmp_path: Path) -> None:
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    search("darts", checkpoint)
    with pytest.raises(ValueError, match=r"policy = 'darts' \(this search: 'random-ws'\)") as error:
        make_policy("random-ws").search(
            tabular(), CASES["darts"].budget, np.random.default_rng(SEED), checkpoint=checkpoint
        )
    one_line_error(error)
    with pytest.raises(ValueError, match=r"config\.second_order = False") as error:
        search("darts-2nd", checkpoint, budget=CASES["darts"].budget)
    one_line_error(error)


def test_a_checkpoint_of_another_format_is_refused(tmp_path: Path) -> None:
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    checkpoint.save({"format": "naseval.search/0", "epoch": 1})
    with pytest.raises(ValueError, match="format = 'naseval.search/0'") as error:
        search("random", checkpoint)
    one_line_error(error)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_a_corrupt_checkpoint_is_a_one_line_error_naming_the_file(
    content: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "search.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="unreadable") as error:
        search("enas", FileCheckpoint(path))
    message = one_line_error(error)
    assert str(path) in message and "delete it to restart" in message


def test_a_checkpoint_that_is_not_a_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "search.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="holds a list") as error:
        FileCheckpoint(path).load()
    assert str(path) in one_line_error(error)


def test_file_checkpoint_saves_atomically_and_loads_weights_only(tmp_path: Path) -> None:
    checkpoint = FileCheckpoint(tmp_path / "deeper" / "search.pt")
    assert checkpoint.load() is None
    state = {"rng": np.random.default_rng(0).bit_generator.state, "t": torch.arange(3)}
    checkpoint.save(state)
    checkpoint.save({**state, "epoch": 2})
    assert sorted(p.name for p in (tmp_path / "deeper").iterdir()) == ["search.pt"]
    loaded = checkpoint.load()
    assert loaded is not None and loaded["epoch"] == 2
    assert_same(loaded, {**state, "epoch": 2})


class StatelessEnv:
    """The SearchEnv members of a table, without state_dict / load_state_dict."""

    def __init__(self) -> None:
        self._table = tabular()
        self.space = self._table.space
        self.steps_per_epoch = 2
        self.train_shared = self._table.train_shared
        self.evaluate = self._table.evaluate
        self.parameters = self._table.parameters


def test_a_checkpoint_needs_an_env_with_state_unless_nothing_is_trained(tmp_path: Path) -> None:
    checkpoint = FileCheckpoint(tmp_path / "search.pt")
    budget = Budget(epochs=1, steps_per_epoch=1)
    with pytest.raises(TypeError, match="StatelessEnv lacks state_dict, load_state_dict"):
        make_policy("random-ws").search(
            StatelessEnv(), budget, np.random.default_rng(0), checkpoint=checkpoint
        )
    assert checkpoint.load() is None
    first = make_policy("random").search(
        StatelessEnv(), budget, np.random.default_rng(0), checkpoint=checkpoint
    )
    again = make_policy("random").search(
        StatelessEnv(), budget, np.random.default_rng(0), checkpoint=checkpoint
    )
    saved = checkpoint.load()
    assert saved is not None and saved["env"] is None and saved["result"]["arch"] == str(first.arch)
    assert again.to_dict() == first.to_dict()


def test_env_states_round_trip_and_refuse_another_problem() -> None:
    env = tabular()
    env.train_shared(steps=3)
    env.evaluate(SPACE3.at(5))
    other = tabular()
    other.load_state_dict(env.state_dict())
    assert (other.train_steps, other.evaluations) == (3, 1)
    with pytest.raises(ValueError, match="noise"):
        TabularEnv(SPACE3, TABLE3, noise=0.2, seed=1).load_state_dict(env.state_dict())

    moved = toy()
    moved.train_shared(steps=2)  # uniform cells: draws from the toy's own rng
    copy = toy()
    copy.load_state_dict(moved.state_dict())
    assert_same(copy.state_dict(), moved.state_dict())
    assert copy.train_shared() == moved.train_shared()
    planted = Architecture.parse("tanh:0 relu:1 sigmoid:1")
    with pytest.raises(ValueError, match="optimum"):
        ToyMixtureEnv(SPACE3, planted, seed=1, lr=0.2).load_state_dict(moved.state_dict())
    with pytest.raises(ValueError, match="not a ToyMixtureEnv state"):
        copy.load_state_dict(env.state_dict())
