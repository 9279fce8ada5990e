"""Space: sizes, the index/at bijection, iteration order, uniform sampling, fixed prefixes."""

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from naseval.space import OPS, Architecture, InvalidArchitecture, Node, Space

KNOWN_SIZES = {
    1: 4,
    2: 32,
    3: 384,
    4: 6144,
    5: 122880,
    6: 2949120,
    7: 82575360,
    8: 2642411520,
}


@pytest.mark.parametrize("n, size", KNOWN_SIZES.items())
def test_size_is_n_factorial_times_four_to_the_n(n: int, size: int) -> None:
    assert Space(n).size == size
    assert size == math.factorial(n) * 4**n


def test_sharing_study_space_has_twelve() -> None:
    space = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
    assert space.size == 12
    archs = list(space)
    assert len(set(archs)) == 12
    assert all(str(a).startswith("tanh:0 relu:1 ") for a in archs)
    assert {a.nodes[2].pred for a in archs} == {0, 1, 2}


def test_space_two_lists_all_32_in_index_order() -> None:
    space = Space(2)
    archs = list(space)
    assert len(archs) == 32 and len(set(archs)) == 32
    assert [space.index(a) for a in archs] == list(range(32))
    # The first free node is the most significant digit.
    assert str(archs[0]) == "identity:0 identity:0"
    assert str(archs[1]) == "identity:0 sigmoid:0"
    assert str(archs[4]) == "identity:0 identity:1"
    assert str(archs[8]) == "sigmoid:0 identity:0"
    assert str(archs[31]) == "relu:0 relu:1"


def test_index_of_known_architecture() -> None:
    # node 1: pred 0, tanh (2) -> digit 2 of radix 4; node 2: pred 1, relu (3) -> digit 7 of 8.
    assert Space(2).index(Architecture.parse("tanh:0 relu:1")) == 2 * 8 + 7


def test_custom_op_set() -> None:
    space = Space(4, ops=("tanh", "relu"))
    assert space.size == math.factorial(4) * 2**4
    assert all(node.op in ("tanh", "relu") for a in space for node in a.nodes)
    assert Architecture.parse("sigmoid:0 tanh:0 tanh:0 tanh:0") not in space
    arch = space.at(77)
    assert Architecture.from_tokens(arch.to_tokens(space.ops), space.ops) == arch


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_at_and_index_are_inverse_on_the_8_node_space(data: st.DataObject) -> None:
    space = Space(8)
    i = data.draw(st.integers(0, space.size - 1))
    arch = space.at(i)
    assert arch in space
    assert space.index(arch) == i


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_index_round_trip_from_samples(n: int, seed: int) -> None:
    space = Space(n)
    arch = space.sample(np.random.default_rng(seed))
    assert arch.n_nodes == n
    assert space.at(space.index(arch)) == arch


def test_sampling_is_uniform_over_space_two() -> None:
    space = Space(2)
    rng = np.random.default_rng(1234)
    counts = np.bincount([space.index(space.sample(rng)) for _ in range(32_000)], minlength=32)
    result = stats.chisquare(counts)
    assert counts.sum() == 32_000
    assert result.pvalue > 0.01, counts


def test_sampling_is_reproducible() -> None:
    a = [Space(8).sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]


def test_fixed_prefix_rejects_other_architectures() -> None:
    space = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
    other = Architecture.parse("tanh:0 tanh:1 relu:2")
    assert other not in space
    with pytest.raises(InvalidArchitecture, match="fixed prefix"):
        space.index(other)


def test_equality_hash_and_dict_round_trip() -> None:
    space = Space(3, ops=("tanh", "relu"), fixed=Architecture.parse("tanh:0"))
    assert Space.from_dict(space.to_dict()) == space
    assert len({space, Space.from_dict(space.to_dict())}) == 1
    assert repr(space) == "Space(3, ops=('tanh', 'relu'), fixed=Architecture.parse('tanh:0'))"


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Space(0), "n_nodes >= 1"),
        (lambda: Space(2, ops=("tanh", "gelu")), "gelu"),
        (lambda: Space(2, ops=()), "empty"),
        (lambda: Space(2, ops=("tanh", "tanh")), "twice"),
        (lambda: Space(1, fixed=Architecture.parse("tanh:0 relu:1")), "more than"),
        (lambda: Space(2).at(32), "index 32 is out of range"),
        (lambda: Space(2).at(-1), "index -1 is out of range"),
        (lambda: Space(3).index(Architecture.parse("tanh:0 relu:1")), "2 nodes"),
        (lambda: Space(2, ops=("tanh",)).index(Architecture.parse("relu:0 tanh:0")), "node 1"),
    ],
)
def test_bad_space_input_names_the_problem(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(InvalidArchitecture, match=fragment):
        make()


def test_ops_constant() -> None:
    assert OPS == ("identity", "sigmoid", "tanh", "relu")
    assert Node(0, "tanh") == Node(pred=0, op="tanh")
