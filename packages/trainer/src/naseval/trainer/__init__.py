"""naseval.trainer: PTB corpus, the DARTS recurrent-cell language model and its training loop."""

from naseval.trainer.batched import BatchedLM, train_batched
from naseval.trainer.bench import bench_train_step, estimate_epoch_seconds
from naseval.trainer.bench_ws import bench_batched, bench_mixture
from naseval.trainer.checkpoint import load_checkpoint, save_checkpoint
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
from naseval.trainer.device import resolve_device
from naseval.trainer.model import DARTS_V2, DartsLM, Dropouts, LMOutput, Masks, build_model, lm_loss
from naseval.trainer.ranking import ws_ranking
from naseval.trainer.reference import ReferenceLM
from naseval.trainer.supernet import SHARING_SCHEMES, SharedLM, Supernet
from naseval.trainer.train import (
    TrainingDiverged,
    TrainResult,
    dropouts_of,
    evaluate,
    train_architecture,
)

__version__ = "0.1.0"

__all__ = [
    "DARTS_V2",
    "SHARING_SCHEMES",
    "BatchedLM",
    "SharedLM",
    "Supernet",
    "bench_batched",
    "bench_mixture",
    "train_batched",
    "ws_ranking",
    "PTB_SHA256",
    "PTB_URL",
    "Corpus",
    "DartsLM",
    "DataError",
    "Dropouts",
    "LMOutput",
    "Masks",
    "ReferenceLM",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "__version__",
    "batchify",
    "bench_train_step",
    "build_model",
    "download_ptb",
    "dropouts_of",
    "estimate_epoch_seconds",
    "evaluate",
    "find_ptb",
    "get_batch",
    "lm_loss",
    "load_checkpoint",
    "ptb_path",
    "resolve_device",
    "sample_seq_len",
    "save_checkpoint",
    "train_architecture",
    "verify_ptb",
]
