from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from naseval.trainer import PTB_SHA256, Corpus, DataError, download_ptb, find_ptb, verify_ptb
from naseval.trainer.corpus import ptb_path


def write_splits(folder: Path, texts: dict[str, str], prefix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in texts.items():
        (folder / f"{prefix}{split}.txt").write_text(text)


def test_tokens_and_vocab_order(tmp_path: Path) -> None:
    write_splits(tmp_path, {"train": "a b\nc a\n", "valid": "d a\n", "test": "e\n"})
    corpus = Corpus.from_folder(tmp_path)
    assert corpus.vocab == ["a", "b", "<eos>", "c", "d", "e"]
    assert corpus.train.tolist() == [0, 1, 2, 3, 0, 2]
    assert corpus.valid.tolist() == [4, 0, 2]
    assert corpus.test.tolist() == [5, 2]
    assert corpus.train.dtype == torch.int64


def test_ptb_style_names_and_prefix(tmp_path: Path) -> None:
    write_splits(tmp_path, {"train": "a b c d\n", "valid": "x\n", "test": "y\n"}, prefix="ptb.")
    corpus = Corpus.from_folder(tmp_path, train_prefix=3)
    assert corpus.train.tolist() == [0, 1, 2]
    assert corpus.vocab_size == 7  # the vocabulary still covers the whole train split


def test_missing_split_names_it(tmp_path: Path) -> None:
    write_splits(tmp_path, {"train": "a\n", "valid": "b\n"})
    with pytest.raises(DataError, match=r"test\.txt"):
        Corpus.from_folder(tmp_path)


def test_synthetic_is_seeded_and_learnable() -> None:
    a = Corpus.synthetic(vocab_size=30, train_tokens=4000, valid_tokens=500, test_tokens=500)
    b = Corpus.synthetic(vocab_size=30, train_tokens=4000, valid_tokens=500, test_tokens=500)
    c = Corpus.synthetic(vocab_size=30, train_tokens=4000, valid_tokens=500, test_tokens=500,
                         seed=1)
    assert torch.equal(a.train, b.train) and not torch.equal(a.train, c.train)
    assert (a.train.numel(), a.valid.numel(), a.test.numel(), a.vocab_size) == (4000, 500, 500, 30)
    # Each word has at most 3 successors: the bigram entropy is <= log 3, far below unigram.
    stream = a.train.numpy()
    successors = {w: set(stream[1:][stream[:-1] == w]) for w in np.unique(stream[:-1])}
    assert max(len(s) for s in successors.values()) <= 3
    unigram = np.bincount(stream, minlength=30) / stream.size
    unigram_entropy = -(unigram[unigram > 0] * np.log(unigram[unigram > 0])).sum()
    assert unigram_entropy > np.log(3) + 1.0


def test_bad_synthetic_arguments() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        Corpus.synthetic(vocab_size=1)


@pytest.mark.ptb
def test_real_ptb_counts(ptb_dir: Path) -> None:
    corpus = Corpus.ptb(ptb_dir, download=False)
    assert (corpus.train.numel(), corpus.valid.numel(), corpus.test.numel()) == (
        929_589, 73_760, 82_430)
    assert corpus.vocab_size == 10_000


@pytest.mark.ptb
def test_ptb_checksums_match_shared_sums(ptb_dir: Path) -> None:
    sums = dict(reversed(line.split()) for line in (ptb_dir / "SHA256SUMS").read_text().splitlines())
    assert sums == PTB_SHA256
    assert verify_ptb(ptb_dir) == ptb_dir


def test_find_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("NASEVAL_DATA_DIR", raising=False)
    assert find_ptb() is None
    with pytest.raises(DataError, match="PTB not found"):
        ptb_path(download=False)
    cached = cache / "naseval" / "ptb"
    for folder in (cached, tmp_path / "env", tmp_path / "explicit"):
        write_splits(folder, {s: "a\n" for s in ("train", "valid", "test")}, prefix="ptb.")
    assert find_ptb() == cached
    monkeypatch.setenv("NASEVAL_DATA_DIR", str(tmp_path / "env"))
    assert find_ptb() == tmp_path / "env"
    assert find_ptb(tmp_path / "explicit") == tmp_path / "explicit"
    with pytest.raises(DataError, match=r"lacks ptb\.train\.txt"):
        find_ptb(tmp_path / "nowhere")


def test_verify_reports_file_and_both_checksums(tmp_path: Path) -> None:
    write_splits(tmp_path, {s: "a\n" for s in ("train", "valid", "test")}, prefix="ptb.")
    actual = hashlib.sha256(b"a\n").hexdigest()
    with pytest.raises(DataError) as info:
        verify_ptb(tmp_path)
    message = str(info.value)
    assert "ptb.train.txt" in message and actual in message
    assert PTB_SHA256["ptb.train.txt"] in message and "nas data download" in message
    assert "\n" not in message
    (tmp_path / "ptb.valid.txt").unlink()
    with pytest.raises(DataError, match="ptb.valid.txt is missing"):
        verify_ptb(tmp_path)


@pytest.fixture
def served(tmp_path: Path, ptb_dir: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 over a copy of the real PTB files."""
    root = tmp_path / "served"
    root.mkdir()
    for name in PTB_SHA256:
        shutil.copy(ptb_dir / name, root / name)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.ptb
def test_download_from_local_server(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dest = tmp_path / "dest"
    assert download_ptb(dest, base_url=url) == dest
    assert verify_ptb(dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(PTB_SHA256)  # no temp files left
    assert Corpus.from_folder(dest).vocab_size == 10_000


@pytest.mark.ptb
def test_download_rejects_corrupt_file(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    with open(root / "ptb.valid.txt", "ab") as f:
        f.write(b"tampered\n")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=r"ptb\.valid\.txt is corrupt: sha256 [0-9a-f]{64}"):
        download_ptb(dest, base_url=url)
    assert not (dest / "ptb.valid.txt").exists()
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []


def test_download_unreachable_names_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"downloading http://127\.0\.0\.1:9/ptb\.train\.txt"):
        download_ptb(tmp_path, base_url="http://127.0.0.1:9/", timeout=2)
