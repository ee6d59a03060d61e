"""Character-level text data: the ``fortunes`` corpus and user ``.txt`` files.

A text example is a fixed-length sequence of ``seq_len`` token ids (one per character), so
``DataSpec((seq_len,), Kind.TEXT, levels=len(vocab), vocab=vocab)``; ``vocab[i]`` is the
character of id ``i``. Id 0 is reserved for characters outside the vocabulary (`UNKNOWN`).

``fortunes`` reads the Debian packages ``fortunes`` and ``fortunes-min``
(``/usr/share/games/fortunes/*``: entries separated by lines holding only ``%``; the ``.dat``
index files, symlinks and files with identical content are skipped, exact duplicate entries are
kept once). Each entry is followed by ``"%\n"`` and the entries are concatenated and cut into
non-overlapping chunks of ``seq_len`` characters (the remainder is dropped).

Held-out text is held out by *entry*, so no chunk of one split shares an entry with another:
`load_fortunes` returns an `EntryText`, which the generic `split` splits by entry with its seed
(what ``genlab train --data fortunes`` does); `fortunes_splits` puts each entry in train,
validation or test by a CRC-32 of its text, so the same entry always lands in the same split, on
any machine and for any ``seq_len`` (what bench/text.py does).
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .dataset import Dataset
from .spec import DataSpec, Kind
from .splits import Splits

FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNES_ENV = "GENLAB_FORTUNES"
UNKNOWN = "\ufffd"  # id 0: any character the vocabulary does not hold
ENTRY_END = "%\n"  # written after every entry, so models learn where a fortune ends
DEFAULT_SEQ_LEN = 64


@dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: ``chars[i]`` is the character of token id ``i``.

    ``chars[0]`` is `UNKNOWN`; the others are the corpus's characters sorted by code point, so
    the same text always gives the same vocabulary.
    """

    chars: str

    def __post_init__(self) -> None:
        if not self.chars or self.chars[0] != UNKNOWN or len(set(self.chars)) != len(self.chars):
            raise ValueError("CharVocab: chars must start with the UNKNOWN character and hold no "
                             "character twice; build it with CharVocab.from_text")

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        return cls(UNKNOWN + "".join(sorted(set(text) - {UNKNOWN})))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """str of length n -> (n,) int64 ids; characters outside the vocabulary map to 0."""
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.int64)

    def decode(self, ids: torch.Tensor | np.ndarray | list[int]) -> str:
        """(n,) ids (any integer or integral float dtype) -> str of length n."""
        ids = np.asarray(torch.as_tensor(ids).detach().cpu()).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self.chars) or np.any(ids != np.round(ids))):
            raise ValueError(f"decode: token ids must be integers 0..{len(self.chars) - 1}")
        return "".join(self.chars[int(i)] for i in ids)


# --------------------------------------------------------------------------- reading

def fortune_files(folder: str | None = None) -> list[str]:
    """The corpus files of ``folder`` (default: ``$GENLAB_FORTUNES`` or `FORTUNES_DIR`), sorted
    by name: regular files only, no ``.dat`` index, no symlink, no second copy of a file."""
    folder = folder or os.environ.get(FORTUNES_ENV) or FORTUNES_DIR
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"fortunes: {folder} not found. Fix: apt-get install fortunes "
                                f"fortunes-min (Debian packages), or set ${FORTUNES_ENV} to a folder "
                                f"of fortune files (entries separated by lines holding only %)")
    seen, files = set(), []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".dat") or name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            digest = zlib.crc32(f.read())
        if digest not in seen:
            seen.add(digest)
            files.append(path)
    if not files:
        raise FileNotFoundError(f"fortunes: no fortune files in {folder}. Fix: apt-get install "
                                f"fortunes fortunes-min")
    return files


def read_entries(folder: str | None = None) -> list[str]:
    """Every entry of the corpus, in file then file order, each once, ending with a newline.

    Files are decoded as UTF-8 (undecodable bytes become `UNKNOWN`).
    """
    entries, seen = [], set()
    for path in fortune_files(folder):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines(keepends=True)
        current: list[str] = []
        for line in lines + ["%\n"]:
            if line.rstrip("\r\n") == "%":
                entry = "".join(current).replace("\r\n", "\n")
                if entry.strip() and entry not in seen:
                    seen.add(entry)
                    entries.append(entry if entry.endswith("\n") else entry + "\n")
                current = []
            else:
                current.append(line)
    return entries


def entry_split(entry: str, val: float, test: float) -> str:
    """``"test"``, ``"val"`` or ``"train"`` for an entry, from a CRC-32 of its UTF-8 text."""
    u = zlib.crc32(entry.encode("utf-8")) / 2**32
    return "test" if u < test else "val" if u < test + val else "train"


def chunk(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(n,) ids -> (n // seq_len, seq_len) float32 non-overlapping chunks (remainder dropped)."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    m = len(ids) // seq_len
    if m == 0:
        raise ValueError(f"the text has {len(ids)} characters, fewer than seq_len={seq_len}; use "
                         f"a shorter seq_len or more text")
    return ids[: m * seq_len].reshape(m, seq_len).to(torch.float32)


def text_dataset(text: str, vocab: CharVocab, seq_len: int, name: str, n: int | None = None) -> Dataset:
    """Chunks of ``text`` as a TEXT `Dataset` (the first ``n`` chunks, or all)."""
    x = chunk(vocab.encode(text), seq_len)[:n]
    spec = DataSpec((seq_len,), Kind.TEXT, levels=len(vocab), vocab=vocab.chars)
    return Dataset(x, None, spec, name)


def corpus_text(entries: list[str]) -> str:
    """The entries joined as the models see them: each followed by `ENTRY_END`."""
    return "".join(e + ENTRY_END for e in entries)


# --------------------------------------------------------------------------- loaders

@dataclass
class TextSplits(Splits):
    """`Splits` of text, with the vocabulary and the raw held-out text (for compressors)."""

    vocab: CharVocab | None = None
    texts: dict[str, str] | None = None


@dataclass
class EntryText(Dataset):
    """Chunks of text made of whole entries (fortunes), which `split` holds out by entry.

    Attributes:
        entries: the entries whose text lies wholly inside the chunks, in corpus order.
        seq_len: characters per chunk.
    """

    entries: tuple[str, ...] = ()
    seq_len: int = DEFAULT_SEQ_LEN

    def split_units(self, *, seed: int = 0, val: float = 0.1, test: float = 0.1) -> TextSplits:
        """Train / validation / test chunks cut from disjoint sets of entries: a permutation of the
        entries seeded with ``seed`` gives ``round(test * E)`` entries to test and ``round(val * E)``
        to validation; each part's entries (in corpus order) are joined and cut into chunks.

        Raises:
            ValueError: a part that would hold no chunk (too few entries or too little text).
        """
        e = len(self.entries)
        n_test, n_val = round(test * e), round(val * e)
        perm = torch.randperm(e, generator=torch.Generator().manual_seed(seed)).tolist()
        owner = {i: "test" if k < n_test else "val" if k < n_test + n_val else "train" for k, i in enumerate(perm)}
        texts = {part: corpus_text([x for i, x in enumerate(self.entries) if owner[i] == part])
                 for part in ("train", "val", "test")}
        short = [k for k, t in texts.items() if len(t) < self.seq_len]
        if short:
            raise ValueError(f"split: {self.name!r} holds {e} whole entries, so val={val:g}, test={test:g} leave "
                             f"the {' and '.join(short)} split(s) without a chunk of {self.seq_len} characters; "
                             "use more data (a larger --n) or larger val/test fractions")
        vocab = CharVocab(self.spec.vocab)
        parts = {k: text_dataset(t, vocab, self.seq_len, self.name) for k, t in texts.items()}
        return TextSplits(parts["train"], parts["val"], parts["test"], vocab=vocab, texts=texts)


def load_fortunes(n: int | None = None, seq_len: int = DEFAULT_SEQ_LEN, folder: str | None = None) -> EntryText:
    """All of the corpus as chunks of ``seq_len`` characters, in corpus order (the first ``n``).

    The vocabulary is the whole corpus's. `split` holds out whole entries (`EntryText`); with
    ``n``, of the entries that lie wholly inside the first ``n`` chunks.
    """
    entries = read_entries(folder)
    text = corpus_text(entries)
    ds = text_dataset(text, CharVocab.from_text(text), seq_len, "fortunes", n)
    inside, used = [], 0
    for entry in entries:
        used += len(entry) + len(ENTRY_END)
        if used > ds.x.numel():
            break
        inside.append(entry)
    return EntryText(ds.x, None, ds.spec, ds.name, entries=tuple(inside), seq_len=seq_len)


def fortunes_splits(seq_len: int = DEFAULT_SEQ_LEN, *, val: float = 0.05, test: float = 0.05,
                    folder: str | None = None) -> TextSplits:
    """Train / validation / test chunks of the corpus, split by entry (see the module doc).

    The vocabulary is built from the whole corpus (so held-out characters have ids; none is
    learned from held-out text beyond its existence).

    Args:
        seq_len: characters per example.
        val, test: expected fractions of entries for validation and test.
    Returns:
        `TextSplits` whose ``texts[part]`` is the exact text that ``part``'s chunks cut up.
    """
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ValueError(f"fortunes_splits: val={val}, test={test} must be fractions in (0, 1) "
                         f"summing to less than 1")
    entries = read_entries(folder)
    vocab = CharVocab.from_text(corpus_text(entries))
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for e in entries:
        parts[entry_split(e, val, test)].append(e)
    texts = {k: corpus_text(v) for k, v in parts.items()}
    ds = {k: text_dataset(t, vocab, seq_len, "fortunes") for k, t in texts.items()}
    return TextSplits(ds["train"], ds["val"], ds["test"], vocab=vocab, texts=texts)


def load_text_file(path: str, n: int | None = None, seq_len: int = DEFAULT_SEQ_LEN) -> Dataset:
    """A user's UTF-8 ``.txt`` file as chunks of ``seq_len`` characters; the vocabulary is the
    file's own characters."""
    with open(os.path.expanduser(path), encoding="utf-8", errors="replace") as f:
        text = f.read().replace("\r\n", "\n")
    if not text.strip():
        raise ValueError(f"{path}: the text file holds no text; write some into it first")
    return text_dataset(text, CharVocab.from_text(text), seq_len, path, n)


def vocab_of(spec: DataSpec) -> CharVocab:
    """The `CharVocab` of a TEXT spec (to decode a model's samples)."""
    if spec.kind is not Kind.TEXT or spec.vocab is None:
        raise ValueError(f"vocab_of: a text spec with a vocabulary is needed, got kind={spec.kind.value}")
    return CharVocab(spec.vocab)
