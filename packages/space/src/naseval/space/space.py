"""The set of all cells of n nodes over an op set, optionally with a fixed prefix of nodes.

Node j has j * |ops| choices (pred in 0..j-1, op), so the space has n! * |ops|^n cells, fewer
when the first nodes are fixed. Each cell is one number in a mixed radix: node j's digit is
pred * |ops| + op id, the first free node the most significant. `index` and `at` use that radix
directly, so even the 8-node space (2.6e9 cells) is never enumerated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from naseval.space.architecture import OPS, Architecture, InvalidArchitecture, Node, _check_ops


class Space:
    """All architectures of `n_nodes` nodes over `ops`, the first nodes optionally `fixed`."""

    def __init__(
        self, n_nodes: int, ops: Sequence[str] = OPS, fixed: Architecture | None = None
    ) -> None:
        if isinstance(n_nodes, bool) or not isinstance(n_nodes, int | np.integer) or n_nodes < 1:
            raise InvalidArchitecture(f"a space needs n_nodes >= 1, got {n_nodes!r}")
        self.n_nodes = int(n_nodes)
        self.ops = _check_ops(ops)
        if fixed is not None:
            if not isinstance(fixed, Architecture):
                raise InvalidArchitecture(f"fixed must be an Architecture, got {fixed!r}")
            if fixed.n_nodes > self.n_nodes:
                raise InvalidArchitecture(
                    f"fixed prefix has {fixed.n_nodes} nodes, more than the space's {self.n_nodes}"
                )
            for j, node in enumerate(fixed.nodes, start=1):
                if node.op not in self.ops:
                    raise InvalidArchitecture(
                        f"fixed node {j} uses op {node.op!r}, not in the space's ops {self.ops}"
                    )
        self.fixed = fixed
        self.n_fixed = 0 if fixed is None else fixed.n_nodes
        # Radix of each free node j = n_fixed+1..n, and the place value of its digit.
        self._radices = [j * len(self.ops) for j in range(self.n_fixed + 1, self.n_nodes + 1)]
        self._places = [math.prod(self._radices[k + 1 :]) for k in range(len(self._radices))]

    @property
    def size(self) -> int:
        return math.prod(self._radices)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        parts = [str(self.n_nodes)]
        if self.ops != OPS:
            parts.append(f"ops={self.ops!r}")
        if self.fixed is not None:
            parts.append(f"fixed=Architecture.parse({str(self.fixed)!r})")
        return f"Space({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return (self.n_nodes, self.ops, self.fixed) == (other.n_nodes, other.ops, other.fixed)

    def __hash__(self) -> int:
        return hash((self.n_nodes, self.ops, self.fixed))

    def _reason_outside(self, arch: Architecture) -> str | None:
        if arch.n_nodes != self.n_nodes:
            return f"it has {arch.n_nodes} nodes, the space {self.n_nodes}"
        for j, node in enumerate(arch.nodes, start=1):
            if node.op not in self.ops:
                return f"node {j} uses op {node.op!r}, not in the space's ops {self.ops}"
        if self.fixed is not None and arch.nodes[: self.n_fixed] != self.fixed.nodes:
            return f"its first {self.n_fixed} nodes differ from the fixed prefix {self.fixed}"
        return None

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Architecture) and self._reason_outside(arch) is None

    def index(self, arch: Architecture) -> int:
        """Position of `arch` in the space, in range(size)."""
        if not isinstance(arch, Architecture):
            raise InvalidArchitecture(f"expected an Architecture, got {type(arch).__name__}")
        reason = self._reason_outside(arch)
        if reason is not None:
            raise InvalidArchitecture(f"{arch} is not in {self!r}: {reason}")
        k = len(self.ops)
        return sum(
            (node.pred * k + self.ops.index(node.op)) * place
            for node, place in zip(arch.nodes[self.n_fixed :], self._places)
        )

    def at(self, index: int) -> Architecture:
        """The architecture at position `index` (inverse of `index`)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise InvalidArchitecture(f"space index must be an integer, got {index!r}")
        if not 0 <= index < self.size:
            raise InvalidArchitecture(
                f"index {index} is out of range for {self!r} (size {self.size})"
            )
        return self._from_digits(
            [(int(index) // place) % radix for radix, place in zip(self._radices, self._places)]
        )

    def _from_digits(self, digits: Sequence[int]) -> Architecture:
        k = len(self.ops)
        prefix = () if self.fixed is None else self.fixed.nodes
        return Architecture(prefix + tuple(Node(d // k, self.ops[d % k]) for d in digits))

    def sample(self, rng: np.random.Generator) -> Architecture:
        """One architecture drawn uniformly (each node's choice independently uniform)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator (np.random.default_rng), got {rng!r}")
        return self._from_digits([int(rng.integers(radix)) for radix in self._radices])

    def __iter__(self) -> Iterator[Architecture]:
        for i in range(self.size):
            yield self.at(i)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_nodes": self.n_nodes,
            "ops": list(self.ops),
            "fixed": None if self.fixed is None else str(self.fixed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Space:
        fixed = data.get("fixed")
        return cls(
            data["n_nodes"],
            ops=tuple(data.get("ops", OPS)),
            fixed=None if fixed is None else Architecture.parse(fixed),
        )
