"""Two epochs of DARTS_V2 at hidden 64 on the full PTB: a sanity run, not a test.

    NASEVAL_DATA_DIR=/path/to/ptb python benchmarks/ptb_two_epochs.py [out.json]

It must reach a validation perplexity far below the unigram model's (~685). The figure is
recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import torch

from naseval.trainer import DARTS_V2, Corpus, TrainConfig, train_architecture


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    corpus = Corpus.ptb(download=False)
    config = TrainConfig.darts_eval(
        emsize=64, nhid=64, nhidlast=64, epochs=2, batch_size=64, dropout=0.2, dropouth=0.1,
        dropoutx=0.1, dropouti=0.1, dropoute=0.0, log_every=100,
    )
    started = time.perf_counter()
    events = []

    def callback(event: dict[str, object]) -> None:
        events.append(event)
        logging.info("%s", event)

    result = train_architecture(DARTS_V2, corpus, config, seed=0, device="auto", callback=callback)
    out = {"config": config.to_dict(), "arch": str(DARTS_V2), "result": result.to_dict(),
           "wall_seconds": time.perf_counter() - started, "threads": torch.get_num_threads()}
    text = json.dumps(out, indent=2)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    logging.info("valid ppl %.2f test ppl %.2f in %.0f s", result.best_valid_ppl,
                 result.test_ppl, out["wall_seconds"])


if __name__ == "__main__":
    main()
