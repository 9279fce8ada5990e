"""Does the amount of weight sharing bias the WS ranking? The paper's Figure 5 study.

In Space(3, fixed=Architecture.parse("tanh:0 relu:1")) only node 3 is searched. Its state
depends on W3 and on the matrices of its ancestors (`Architecture.ancestors(3)`): reading s0
uses none of the fixed nodes' matrices, s1 uses W1, s2 uses W1 and W2. The sharing count of an
architecture is how many fixed nodes' matrices its searched nodes depend on. If WS ranks
architectures by how much they share rather than by how good they are, the count and the WS
rank correlate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from naseval.analysis._serial import from_jsonable, to_jsonable
from naseval.analysis.errors import AnalysisError
from naseval.analysis.ranking import average_ranks, kendall_tau, spearman_rho
from naseval.analysis.stats import sample_std
from naseval.analysis.ws_ranking import WSScores, aligned_ws_scores
from naseval.space import Architecture, InvalidArchitecture


def sharing_count(architecture: Architecture | str, n_fixed: int) -> int:
    """How many of the fixed nodes 1..n_fixed have a matrix the searched nodes' states use.

    The searched nodes are n_fixed+1..n; node j uses W_i for every i in `ancestors(j)`.
    """
    arch = Architecture.parse(architecture) if isinstance(architecture, str) else architecture
    if not 0 <= n_fixed < arch.n_nodes:
        raise AnalysisError(
            f"n_fixed must leave at least one searched node: got {n_fixed} for {arch.n_nodes} nodes"
        )
    used: set[int] = set()
    for j in range(n_fixed + 1, arch.n_nodes + 1):
        used |= arch.ancestors(j)
    return len(used & set(range(1, n_fixed + 1)))


@dataclass(frozen=True)
class CountGroup:
    """The architectures sharing the same number of fixed matrices."""

    count: int  # fixed-node matrices shared (0, 1 or 2 in the paper's study)
    architectures: tuple[str, ...]  # members, best mean WS rank first
    mean_rank: float  # mean over members of their mean WS rank (1 = best)
    std_rank: float | None  # sample std (ddof=1) of the members' mean WS ranks


@dataclass(frozen=True)
class SharingStudy:
    """WS ranks of the architectures of a fixed-prefix space, against their sharing count."""

    fixed: str  # the fixed prefix, e.g. "tanh:0 relu:1"
    architectures: tuple[str, ...]  # ranked architectures, in input order
    shared_counts: tuple[int, ...]  # sharing count per architecture
    seeds: tuple[int, ...]  # WS seeds
    ws_scores: tuple[tuple[float, ...], ...]  # ws_scores[s][a]: WS validation ppl
    ws_ranks: tuple[
        tuple[float, ...], ...
    ]  # ws_ranks[s][a]: rank in seed s (1 = best, ties averaged)
    mean_rank: tuple[float, ...]  # per architecture, mean WS rank over seeds
    std_rank: tuple[float | None, ...]  # per architecture, sample std of the WS rank over seeds
    groups: tuple[CountGroup, ...]  # one per sharing count present, ascending
    spearman_rho: float  # rho between sharing count and mean WS rank (> 0: sharing ranks worse)
    spearman_p: float  # two-sided p-value of rho (scipy)
    kendall_tau: float  # tau-b between sharing count and mean WS rank
    kendall_p: float  # two-sided p-value of tau (scipy)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SharingStudy:
        return from_jsonable(cls, data)


def _fixed_prefix(fixed: Architecture | str) -> Architecture:
    try:
        return Architecture.parse(fixed) if isinstance(fixed, str) else fixed
    except InvalidArchitecture as exc:
        raise AnalysisError(f"fixed prefix: {exc}") from None


def _check_prefix(architectures: tuple[str, ...], fixed: Architecture) -> None:
    for text in architectures:
        arch = Architecture.parse(text)
        if arch.n_nodes <= fixed.n_nodes or arch.nodes[: fixed.n_nodes] != fixed.nodes:
            raise AnalysisError(
                f"{text} does not extend the fixed prefix {fixed} with at least one searched node"
            )


def _groups(
    architectures: tuple[str, ...], counts: np.ndarray, mean_rank: np.ndarray
) -> tuple[CountGroup, ...]:
    groups = []
    for count in sorted(set(counts.tolist())):
        members = np.flatnonzero(counts == count)
        members = members[np.argsort(mean_rank[members], kind="stable")]
        ranks = mean_rank[members]
        groups.append(
            CountGroup(
                count=int(count),
                architectures=tuple(architectures[i] for i in members),
                mean_rank=float(ranks.mean()),
                std_rank=sample_std(ranks),
            )
        )
    return tuple(groups)


def sharing_study(
    ws_scores_by_seed: WSScores,
    fixed: Architecture | str,
    *,
    architectures: Sequence[str] | None = None,
) -> SharingStudy:
    """Sharing count, WS rank per seed, mean rank per count, and count-rank correlation.

    `ws_scores_by_seed`: {seed: {architecture text: WS validation ppl}}, every architecture
    extending `fixed`; e.g. the 12 of Space(3, fixed=Architecture.parse("tanh:0 relu:1")). Or
    {seed: [WS ppl, ...]} aligned with `architectures`.
    """
    prefix = _fixed_prefix(fixed)
    ranked, aligned = aligned_ws_scores(ws_scores_by_seed, architectures)
    if len(ranked) < 2:
        raise AnalysisError("the sharing study needs at least 2 architectures")
    _check_prefix(ranked, prefix)
    counts = np.array([sharing_count(a, prefix.n_nodes) for a in ranked])
    scores = np.array(list(aligned.values()))
    ranks = np.array([average_ranks(row) for row in scores])
    mean_rank = ranks.mean(axis=0)
    if np.ptp(counts) == 0:
        raise AnalysisError(
            f"every architecture shares {counts[0]} fixed matrices: no variation to correlate"
        )
    if np.ptp(mean_rank) == 0:
        raise AnalysisError("WS scores every architecture the same: no ranking to correlate")
    return SharingStudy(
        fixed=str(prefix),
        architectures=ranked,
        shared_counts=tuple(int(c) for c in counts),
        seeds=tuple(aligned),
        ws_scores=tuple(tuple(float(v) for v in row) for row in scores),
        ws_ranks=tuple(tuple(float(v) for v in row) for row in ranks),
        mean_rank=tuple(float(v) for v in mean_rank),
        std_rank=tuple(sample_std(ranks[:, a]) for a in range(len(ranked))),
        groups=_groups(ranked, counts, mean_rank),
        spearman_rho=spearman_rho(counts, mean_rank),
        spearman_p=float(scipy_stats.spearmanr(counts, mean_rank).pvalue),
        kendall_tau=kendall_tau(counts, mean_rank),
        kendall_p=float(scipy_stats.kendalltau(counts, mean_rank).pvalue),
    )
