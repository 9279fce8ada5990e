"""Subprocess for test_sigkill_resume: a tiny training run that can freeze mid-epoch.

    python resume_worker.py MODE CHECKPOINT_DIR RESULT_JSON MARKER

MODE "run" trains to the end; "freeze" writes MARKER after step FREEZE_STEP (two steps after the
step-28 checkpoint, in the second epoch) and sleeps until it is killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from naseval.space import Architecture
from naseval.trainer import Corpus, TrainConfig, train_architecture

FREEZE_STEP = 30
CONFIG = TrainConfig.tiny(epochs=2, checkpoint_every=4, log_every=1, nonmono=1)


def main() -> None:
    torch.set_num_threads(1)
    mode, checkpoint_dir, result_path, marker = sys.argv[1:]
    corpus = Corpus.synthetic(vocab_size=40, train_tokens=1600, valid_tokens=300, test_tokens=200)

    def callback(event: dict[str, Any]) -> None:
        if mode == "freeze" and event["kind"] == "step" and event["step"] == FREEZE_STEP:
            Path(marker).write_text(str(event["epoch"]))
            time.sleep(600)

    result = train_architecture(Architecture.parse("tanh:0 relu:1 sigmoid:1"), corpus, CONFIG,
                                seed=7, device="cpu", checkpoint_dir=checkpoint_dir,
                                callback=callback)
    record = result.to_dict()
    record.pop("seconds")
    Path(result_path).write_text(json.dumps(record))


if __name__ == "__main__":
    main()
