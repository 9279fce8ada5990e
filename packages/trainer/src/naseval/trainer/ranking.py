"""The weight-sharing ranking: every architecture of a small space scored under shared weights."""

from __future__ import annotations

from collections.abc import Callable

from naseval.space import Architecture, Space
from naseval.trainer.supernet import Supernet


def ws_ranking(
    supernet: Supernet, space: Space | None = None, batches: int = 0, offset: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[Architecture, float]]:
    """Validation perplexity of every architecture of `space` (default: the supernet's own).

    Entries are in the space's index order, so they line up with a ground-truth table over the
    same space. `batches` and `offset` select validation minibatches as in `Supernet.evaluate`
    (0: the whole validation split); every architecture sees the same data. `progress(done,
    total)` is called after each architecture.
    """
    space = supernet.space if space is None else space
    if space.n_nodes != supernet.space.n_nodes or any(op not in supernet.space.ops
                                                      for op in space.ops):
        raise ValueError(f"space {space!r} does not fit the supernet's space {supernet.space!r}")
    if space.size > 100_000:
        raise ValueError(f"space {space!r} has {space.size} architectures; ws_ranking "
                         "enumerates them all, pass a small space")
    ranking = []
    for i, arch in enumerate(space):
        ranking.append((arch, supernet.evaluate(arch, batches=batches, offset=offset)))
        if progress is not None:
            progress(i + 1, space.size)
    return ranking
