"""One recurrent cell: a DAG of nodes, each reading ONE earlier state through one op.

Node j (1-based) reads state s_pred (0 <= pred < j; s0 is the cell's input state) and applies
op f in `[c, h'] = s_pred W_j; s_j = s_pred + sigmoid(c) * (f(h') - s_pred)`. The cell's output is
mean(s_1..s_n), so every architecture is fully described by its (pred, op) pairs.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OPS: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu")
"""The op set of the DARTS recurrent space; the position of an op is its id in tokens and alpha."""


class InvalidArchitecture(ValueError):
    """An architecture, or one of its encodings, is malformed; the message names the bad part."""


def _check_ops(ops: Sequence[str]) -> tuple[str, ...]:
    ops = tuple(ops)
    if not ops:
        raise InvalidArchitecture("op set is empty")
    for op in ops:
        if op not in OPS:
            raise InvalidArchitecture(f"unknown op {op!r} in op set (known: {', '.join(OPS)})")
    if len(set(ops)) != len(ops):
        raise InvalidArchitecture(f"op set {ops} lists an op twice")
    return ops


def _alpha_row(j: int, i: int) -> int:
    """Row of edge (node j, predecessor i) in the DARTS alpha layout, j = 1..n, i < j."""
    return j * (j - 1) // 2 + i


@dataclass(frozen=True)
class Node:
    """Node of a cell: reads state `pred` (0 = the cell input s0) and applies `op`."""

    pred: int
    op: str

    def __post_init__(self) -> None:
        if isinstance(self.pred, bool) or not isinstance(self.pred, int | np.integer):
            raise InvalidArchitecture(f"node pred must be an integer, got {self.pred!r}")
        if self.pred < 0:
            raise InvalidArchitecture(f"node pred must be >= 0, got {self.pred}")
        if self.op not in OPS:
            raise InvalidArchitecture(f"unknown op {self.op!r} (known: {', '.join(OPS)})")
        object.__setattr__(self, "pred", int(self.pred))


@dataclass(frozen=True)
class Architecture:
    """A recurrent cell of `n_nodes` nodes; immutable, hashable, equal by value."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        if not nodes:
            raise InvalidArchitecture("an architecture needs at least one node")
        for j, node in enumerate(nodes, start=1):
            if not isinstance(node, Node):
                raise InvalidArchitecture(f"node {j} is {node!r}, not a Node")
            if node.pred >= j:
                raise InvalidArchitecture(
                    f"node {j} reads state {node.pred}, but node {j} can only read states 0..{j - 1}"
                )
        object.__setattr__(self, "nodes", nodes)

    # -- basic views ---------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        return " ".join(f"{node.op}:{node.pred}" for node in self.nodes)

    def __repr__(self) -> str:
        return f"Architecture.parse({str(self)!r})"

    def describe(self) -> str:
        """A readable multi-line view of the cell's DAG."""
        n = self.n_nodes
        lines = [f"cell with {n} node{'s' if n > 1 else ''}: {self}"]
        lines.append("  s0 = highway(x_t, h_t-1)".ljust(36) + "input state, weights W0")
        for j, node in enumerate(self.nodes, start=1):
            lines.append(f"  s{j} = highway_{node.op}(s{node.pred})".ljust(36) + f"weights W{j}")
        readers = {node.pred for node in self.nodes}
        leaves = [j for j in range(1, n + 1) if j not in readers]
        lines.append(
            f"  h_t = mean(s1..s{n})" + (f"   leaves: {', '.join(f's{j}' for j in leaves)}")
        )
        return "\n".join(lines)

    def ancestors(self, j: int) -> frozenset[int]:
        """The states node j reads, directly or through other nodes: its proper ancestors.

        Node j's state depends on its own matrix W_j and on the matrices of exactly these nodes;
        0 (s0, with W0) is always among them. j ranges over 1..n_nodes.
        """
        if isinstance(j, bool) or not isinstance(j, int | np.integer) or not 1 <= j <= self.n_nodes:
            raise InvalidArchitecture(f"node {j!r} is not in 1..{self.n_nodes}")
        found: set[int] = set()
        state = int(j)
        while state != 0:
            state = self.nodes[state - 1].pred
            found.add(state)
        return frozenset(found)

    # -- text ----------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Parse the canonical text form, `op:pred` per node separated by spaces or commas."""
        if not isinstance(text, str):
            raise InvalidArchitecture(
                f"architecture text must be a string, got {type(text).__name__}"
            )
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        if not parts:
            raise InvalidArchitecture("architecture text is empty (expected e.g. 'tanh:0 relu:1')")
        nodes = []
        for j, part in enumerate(parts, start=1):
            op, sep, pred = part.partition(":")
            if not sep or not pred.isdigit():
                raise InvalidArchitecture(
                    f"node {j} {part!r} is not of the form op:pred (e.g. 'tanh:0')"
                )
            if op not in OPS:
                raise InvalidArchitecture(
                    f"node {j} {part!r}: unknown op {op!r} (known: {', '.join(OPS)})"
                )
            nodes.append(Node(int(pred), op))
        return cls(tuple(nodes))

    # -- ENAS / NAO token sequence -------------------------------------------------------------

    def to_tokens(self, ops: Sequence[str] = OPS) -> list[int]:
        """Sequence pred_1, op_1, pred_2, op_2, ... with op ids indexing `ops`."""
        ops = _check_ops(ops)
        tokens: list[int] = []
        for j, node in enumerate(self.nodes, start=1):
            if node.op not in ops:
                raise InvalidArchitecture(f"node {j} uses op {node.op!r}, not in op set {ops}")
            tokens += [node.pred, ops.index(node.op)]
        return tokens

    @classmethod
    def from_tokens(cls, tokens: Iterable[int], ops: Sequence[str] = OPS) -> Architecture:
        ops = _check_ops(ops)
        tokens = list(tokens)
        if not tokens or len(tokens) % 2:
            raise InvalidArchitecture(
                f"token sequence has {len(tokens)} tokens; it needs a positive even count "
                "(pred, op per node)"
            )
        nodes = []
        for j in range(1, len(tokens) // 2 + 1):
            pred, op_id = tokens[2 * j - 2], tokens[2 * j - 1]
            for name, value in (("pred", pred), ("op", op_id)):
                if isinstance(value, bool) or not isinstance(value, int | np.integer):
                    raise InvalidArchitecture(f"node {j} {name} token {value!r} is not an integer")
            if not 0 <= op_id < len(ops):
                raise InvalidArchitecture(f"node {j} op token {op_id} is not in 0..{len(ops) - 1}")
            if not 0 <= pred < j:
                raise InvalidArchitecture(f"node {j} pred token {pred} is not in 0..{j - 1}")
            nodes.append(Node(int(pred), ops[int(op_id)]))
        return cls(tuple(nodes))

    # -- DARTS alpha table ---------------------------------------------------------------------

    def to_alpha(self, ops: Sequence[str] = OPS) -> np.ndarray:
        """One-hot table of shape (n(n+1)/2, len(ops)); row j(j-1)/2 + i is edge (node j, pred i)."""
        ops = _check_ops(ops)
        n = self.n_nodes
        alpha = np.zeros((n * (n + 1) // 2, len(ops)))
        for j, node in enumerate(self.nodes, start=1):
            if node.op not in ops:
                raise InvalidArchitecture(f"node {j} uses op {node.op!r}, not in op set {ops}")
            alpha[_alpha_row(j, node.pred), ops.index(node.op)] = 1.0
        return alpha

    @classmethod
    def from_alpha(
        cls, alpha: Any, ops: Sequence[str] = OPS, *, softmax: bool = False
    ) -> Architecture:
        """Decode a DARTS weight table the way DARTS's `_parse` does.

        Per node: the predecessor whose best op has the highest weight, then that op; ties go to
        the lower predecessor and the earlier op. DARTS decodes the row-wise softmax of its
        architecture parameters: pass those, or raw parameters with `softmax=True`.
        """
        ops = _check_ops(ops)
        try:
            a = np.asarray(alpha, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidArchitecture(f"alpha is not a numeric table: {exc}") from None
        if a.ndim != 2 or a.shape[1] != len(ops):
            raise InvalidArchitecture(
                f"alpha has shape {a.shape}; expected (n(n+1)/2, {len(ops)}) for {len(ops)} ops"
            )
        rows = a.shape[0]
        n = int((math.isqrt(8 * rows + 1) - 1) // 2)
        if rows == 0 or n * (n + 1) // 2 != rows:
            raise InvalidArchitecture(
                f"alpha has {rows} rows; a cell of n nodes has n(n+1)/2 rows (1, 3, 6, 10, ...)"
            )
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise InvalidArchitecture(f"alpha has a non-finite value at row {bad[0]}, op {bad[1]}")
        if softmax:
            e = np.exp(a - a.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        nodes = []
        for j in range(1, n + 1):
            block = a[_alpha_row(j, 0) : _alpha_row(j, 0) + j]  # (j, ops): preds 0..j-1
            pred = int(np.argmax(block.max(axis=1)))  # argmax takes the first of equal maxima
            nodes.append(Node(pred, ops[int(np.argmax(block[pred]))]))
        return cls(tuple(nodes))

    # -- DARTS genotype and JSON ---------------------------------------------------------------

    def to_genotype(self) -> dict[str, list[Any]]:
        return {
            "recurrent": [[node.op, node.pred] for node in self.nodes],
            "concat": list(range(1, self.n_nodes + 1)),
        }

    @classmethod
    def from_genotype(cls, genotype: Any) -> Architecture:
        """Accept our dict form, a DARTS `Genotype(recurrent=..., concat=...)` or its repr text."""
        recurrent, concat = _genotype_parts(genotype)
        try:
            pairs = [(op, pred) for op, pred in recurrent]
        except (TypeError, ValueError):
            raise InvalidArchitecture(
                "genotype 'recurrent' must be a list of (op, pred) pairs"
            ) from None
        if not pairs:
            raise InvalidArchitecture("genotype 'recurrent' is empty")
        nodes = []
        for j, (op, pred) in enumerate(pairs, start=1):
            if op not in OPS:
                raise InvalidArchitecture(
                    f"genotype node {j}: unknown op {op!r} (known: {', '.join(OPS)})"
                )
            if (
                isinstance(pred, bool)
                or not isinstance(pred, int | np.integer)
                or not 0 <= pred < j
            ):
                raise InvalidArchitecture(f"genotype node {j}: pred {pred!r} is not in 0..{j - 1}")
            nodes.append(Node(int(pred), op))
        try:
            concat_list = [int(c) for c in concat]
        except (TypeError, ValueError):
            raise InvalidArchitecture(f"genotype concat {concat!r} is not a list of ints") from None
        if concat_list != list(range(1, len(nodes) + 1)):
            raise InvalidArchitecture(
                f"genotype concat {concat_list} must be range(1, {len(nodes) + 1}): the cell "
                "averages every node"
            )
        return cls(tuple(nodes))

    def to_json(self) -> str:
        return json.dumps(self.to_genotype())

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise InvalidArchitecture(f"architecture JSON is malformed: {exc}") from None
        return cls.from_genotype(data)


_GENOTYPE_TEXT = re.compile(
    r"^\s*Genotype\s*\(\s*recurrent\s*=\s*(\[.*\])\s*,\s*concat\s*=\s*(.+)\)\s*$", re.S
)
_RANGE_TEXT = re.compile(r"^\s*range\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*$")


def _genotype_parts(genotype: Any) -> tuple[Any, Any]:
    if isinstance(genotype, str):
        match = _GENOTYPE_TEXT.match(genotype)
        if not match:
            raise InvalidArchitecture(
                "genotype text must look like Genotype(recurrent=[...], concat=range(1, n+1))"
            )
        try:
            recurrent = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            raise InvalidArchitecture("genotype text: 'recurrent' is not a list literal") from None
        concat_text = match.group(2)
        range_match = _RANGE_TEXT.match(concat_text)
        if range_match:
            concat: Any = range(int(range_match.group(1)), int(range_match.group(2)))
        else:
            try:
                concat = ast.literal_eval(concat_text.strip())
            except (ValueError, SyntaxError):
                raise InvalidArchitecture(
                    f"genotype text: concat {concat_text.strip()!r} is not a range or list"
                ) from None
        return recurrent, concat
    if isinstance(genotype, Mapping):
        missing = [key for key in ("recurrent", "concat") if key not in genotype]
        if missing:
            raise InvalidArchitecture(f"genotype is missing {' and '.join(map(repr, missing))}")
        return genotype["recurrent"], genotype["concat"]
    if hasattr(genotype, "recurrent") and hasattr(genotype, "concat"):
        return genotype.recurrent, genotype.concat
    raise InvalidArchitecture(
        f"cannot read a genotype from {type(genotype).__name__}: expected a dict with 'recurrent' "
        "and 'concat', a DARTS Genotype, or its text"
    )
