"""ws_ranking: every architecture of a small space, in index order, under the shared weights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from naseval.space import Architecture, Space
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.ranking import ws_ranking
from naseval.trainer.supernet import Supernet

CORPUS = Corpus.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=400, test_tokens=100)
CONFIG = TrainConfig.tiny(nhid=8, emsize=8, nhidlast=8, batch_size=4, eval_batch_size=4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ranks_all_32_architectures_of_space_2_in_index_order() -> None:
    net = Supernet(Space(2), CORPUS, CONFIG, seed=1, device="cpu")
    net.train_shared(steps=30)
    calls: list[tuple[int, int]] = []
    ranking = ws_ranking(net, batches=2, offset=1, progress=lambda i, n: calls.append((i, n)))
    assert len(ranking) == 32
    assert [arch for arch, _ in ranking] == list(Space(2))
    assert [score for _, score in ranking] == \
        [net.evaluate(arch, batches=2, offset=1) for arch in Space(2)]
    assert len({score for _, score in ranking}) > 16  # the paths really differ
    assert calls[0] == (1, 32) and calls[-1] == (32, 32)
    whole = ws_ranking(net)  # batches=0: the whole validation split
    assert [s for _, s in whole] == [net.evaluate(a, batches=0) for a in Space(2)]


def test_a_fixed_prefix_subspace_is_ranked_with_the_parent_supernet() -> None:
    net = Supernet(Space(3), CORPUS, CONFIG, device="cpu")
    sub = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
    ranking = ws_ranking(net, sub, batches=1)
    assert [a for a, _ in ranking] == list(sub) and len(ranking) == 12
    with pytest.raises(ValueError, match="does not fit the supernet's space"):
        ws_ranking(net, Space(2))
