"""naseval.trainer: PTB corpus, the DARTS recurrent-cell language model and its training loop."""

from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import (
    PTB_SHA256,
    PTB_URL,
    Corpus,
    DataError,
    download_ptb,
    find_ptb,
    ptb_path,
    verify_ptb,
)
from naseval.trainer.data import batchify, get_batch, sample_seq_len

__version__ = "0.1.0"

__all__ = [
    "PTB_SHA256",
    "PTB_URL",
    "Corpus",
    "DataError",
    "TrainConfig",
    "__version__",
    "batchify",
    "download_ptb",
    "find_ptb",
    "get_batch",
    "ptb_path",
    "sample_seq_len",
    "verify_ptb",
]
