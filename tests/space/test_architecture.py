"""Architecture: the text, token, alpha, genotype and JSON encodings, ancestors, and bad input."""

import json
from collections import namedtuple
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naseval.space import OPS, Architecture, InvalidArchitecture, Node, Space

# The recurrent cells published in the DARTS paper (quark0/darts, rnn/genotypes.py).
DARTS_V1 = [("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1),
            ("relu", 5), ("relu", 1)]  # fmt: skip
DARTS_V2 = [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
            ("sigmoid", 5), ("tanh", 3), ("relu", 5)]  # fmt: skip
Genotype = namedtuple("Genotype", "recurrent concat")


@st.composite
def architectures(draw: st.DrawFn, max_nodes: int = 12) -> Architecture:
    n = draw(st.integers(1, max_nodes))
    return Architecture(
        tuple(
            Node(draw(st.integers(0, j - 1)), draw(st.sampled_from(OPS))) for j in range(1, n + 1)
        )
    )


def test_design_examples() -> None:
    arch = Architecture((Node(0, "tanh"), Node(1, "relu")))
    assert Architecture.parse("tanh:0 relu:1") == arch
    assert str(arch) == "tanh:0 relu:1"
    assert arch.n_nodes == 2
    assert arch.to_tokens() == [0, 2, 1, 3]
    assert Architecture.from_tokens([0, 2, 1, 3]) == arch
    assert arch.to_genotype() == {"recurrent": [["tanh", 0], ["relu", 1]], "concat": [1, 2]}
    alpha = arch.to_alpha()
    assert alpha.shape == (3, 4)
    # rows: (node 1, pred 0) = 0, (node 2, pred 0) = 1, (node 2, pred 1) = 2
    assert alpha.tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


@settings(max_examples=300, deadline=None)
@given(architectures())
def test_every_encoding_round_trips(arch: Architecture) -> None:
    assert Architecture.parse(str(arch)) == arch
    assert Architecture.from_tokens(arch.to_tokens()) == arch
    assert Architecture.from_alpha(arch.to_alpha()) == arch
    assert Architecture.from_alpha(arch.to_alpha() * 5.0, softmax=True) == arch
    assert Architecture.from_genotype(arch.to_genotype()) == arch
    assert Architecture.from_genotype(json.loads(json.dumps(arch.to_genotype()))) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    space = Space(arch.n_nodes)
    assert space.at(space.index(arch)) == arch
    assert eval(repr(arch), {"Architecture": Architecture}) == arch


@settings(max_examples=100, deadline=None)
@given(architectures(), architectures())
def test_equality_and_hashing_follow_the_value(a: Architecture, b: Architecture) -> None:
    copy = Architecture.parse(str(a))
    assert a == copy and hash(a) == hash(copy)
    assert len({a, copy}) == 1
    assert (a == b) == (str(a) == str(b))
    assert {a: 1}[copy] == 1


@pytest.mark.parametrize("pairs", [DARTS_V1, DARTS_V2], ids=["DARTS_V1", "DARTS_V2"])
def test_published_darts_genotypes_parse(pairs: list[tuple[str, int]]) -> None:
    expected = Architecture(tuple(Node(pred, op) for op, pred in pairs))
    assert expected.n_nodes == 8
    assert Architecture.from_genotype(Genotype(recurrent=pairs, concat=range(1, 9))) == expected
    assert Architecture.from_genotype({"recurrent": pairs, "concat": list(range(1, 9))}) == expected
    text = f"Genotype(recurrent={pairs!r}, concat=range(1, 9))"
    assert Architecture.from_genotype(text) == expected
    assert expected in Space(8)


def test_darts_v2_text_form() -> None:
    arch = Architecture.from_genotype(Genotype(DARTS_V2, range(1, 9)))
    assert str(arch) == "sigmoid:0 relu:1 relu:1 identity:1 tanh:2 sigmoid:5 tanh:3 relu:5"


def test_from_alpha_takes_pred_with_best_op_then_that_op() -> None:
    # 2 nodes: rows (1,0), (2,0), (2,1).
    alpha = np.array(
        [
            [0.1, 0.2, 0.6, 0.1],  # node 1 <- s0: tanh
            [0.0, 0.5, 0.0, 0.5],  # node 2 <- s0: best op weight 0.5
            [0.3, 0.3, 0.1, 0.3],  # node 2 <- s1: best op weight 0.3 (higher sum, lower max)
        ]
    )
    assert str(Architecture.from_alpha(alpha)) == "tanh:0 sigmoid:0"


def test_from_alpha_breaks_ties_to_lower_pred_and_earlier_op() -> None:
    alpha = np.array(
        [
            [0.25, 0.25, 0.25, 0.25],
            [0.1, 0.4, 0.4, 0.1],
            [0.4, 0.1, 0.1, 0.4],
        ]
    )
    assert str(Architecture.from_alpha(alpha)) == "identity:0 sigmoid:0"
    alpha[1, 1] = alpha[1, 2] = 0.39
    assert str(Architecture.from_alpha(alpha)) == "identity:0 identity:1"


def test_from_alpha_softmax_changes_the_cross_row_comparison() -> None:
    # Raw values: pred 0 has the larger maximum; after a row softmax pred 1 is more peaked.
    raw = np.array([[0.0, 0.0, 0.0, 1.0], [3.0, 2.9, 2.9, 2.9], [0.0, 0.0, 0.0, 2.5]])
    assert str(Architecture.from_alpha(raw)) == "relu:0 identity:0"
    assert str(Architecture.from_alpha(raw, softmax=True)) == "relu:0 relu:1"


def test_custom_ops_in_encodings() -> None:
    ops = ("tanh", "relu")
    arch = Architecture.parse("relu:0 tanh:1")
    assert arch.to_tokens(ops) == [0, 1, 1, 0]
    assert arch.to_alpha(ops).shape == (3, 2)
    assert Architecture.from_alpha(arch.to_alpha(ops), ops) == arch


def test_ancestors_follow_the_chain_to_s0() -> None:
    arch = Architecture.parse("tanh:0 relu:1 sigmoid:2 identity:0 tanh:4")
    assert arch.ancestors(1) == {0}
    assert arch.ancestors(3) == {0, 1, 2}
    assert arch.ancestors(5) == {0, 4}
    # Sharing study: how many of the fixed nodes' matrices W1, W2 node 3 depends on.
    fixed = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
    counts = sorted(len(a.ancestors(3) & {1, 2}) for a in fixed)
    assert counts == [0] * 4 + [1] * 4 + [2] * 4


def test_describe_shows_every_node() -> None:
    text = Architecture.parse("tanh:0 relu:1").describe()
    assert text.splitlines()[0] == "cell with 2 nodes: tanh:0 relu:1"
    assert "s1 = highway_tanh(s0)" in text and "s2 = highway_relu(s1)" in text
    assert "h_t = mean(s1..s2)" in text


MALFORMED: list[tuple[str, Callable[[], object], str]] = [
    ("pred out of range", lambda: Architecture.parse("tanh:0 relu:2"), "node 2 reads state 2"),
    ("negative pred", lambda: Node(-1, "tanh"), "pred must be >= 0"),
    ("unknown op", lambda: Architecture.parse("tanh:0 gelu:1"), "unknown op 'gelu'"),
    ("empty text", lambda: Architecture.parse("   "), "empty"),
    ("missing colon", lambda: Architecture.parse("tanh0"), "'tanh0' is not of the form op:pred"),
    ("non-numeric pred", lambda: Architecture.parse("tanh:x"), "node 1 'tanh:x'"),
    ("odd token count", lambda: Architecture.from_tokens([0, 2, 1]), "3 tokens"),
    ("empty tokens", lambda: Architecture.from_tokens([]), "0 tokens"),
    ("token op out of range", lambda: Architecture.from_tokens([0, 4]), "op token 4"),
    ("token pred out of range", lambda: Architecture.from_tokens([0, 1, 2, 1]), "pred token 2"),
    ("alpha wrong width", lambda: Architecture.from_alpha(np.zeros((3, 5))), "shape (3, 5)"),
    ("alpha wrong rows", lambda: Architecture.from_alpha(np.zeros((4, 4))), "4 rows"),
    ("alpha not 2-D", lambda: Architecture.from_alpha(np.zeros(4)), "shape (4,)"),
    ("NaN in alpha", lambda: Architecture.from_alpha(np.full((3, 4), np.nan)), "non-finite"),
    (
        "genotype bad concat",
        lambda: Architecture.from_genotype({"recurrent": [["tanh", 0]], "concat": [0, 1]}),
        "concat [0, 1]",
    ),
    (
        "genotype missing concat",
        lambda: Architecture.from_genotype({"recurrent": [["tanh", 0]]}),
        "missing 'concat'",
    ),
    (
        "genotype bad pred",
        lambda: Architecture.from_genotype({"recurrent": [["tanh", 1]], "concat": [1]}),
        "genotype node 1: pred 1",
    ),
    (
        "genotype bad op",
        lambda: Architecture.from_genotype({"recurrent": [["elu", 0]], "concat": [1]}),
        "unknown op 'elu'",
    ),
    ("genotype bad text", lambda: Architecture.from_genotype("Genotype(foo)"), "genotype text"),
    ("malformed JSON", lambda: Architecture.from_json("{not json"), "JSON is malformed"),
    ("no nodes", lambda: Architecture(()), "at least one node"),
    ("ancestors of a missing node", lambda: Architecture.parse("tanh:0").ancestors(2), "node 2"),
    ("index out of range", lambda: Space(2).at(10**6), "index 1000000 is out of range"),
]


@pytest.mark.parametrize(
    "make, fragment", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_input_raises_naming_the_part(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(InvalidArchitecture) as info:
        make()
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
