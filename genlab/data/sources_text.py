"""Streaming readers of text files (`genlab.data.stream.Source`): a CSV table read by row through
an index of byte offsets, and a ``.txt`` corpus read by chunk of characters. See
`genlab.data.sources` for what every streaming reader guarantees."""
from __future__ import annotations

import codecs
import csv
import os
import tempfile
import weakref

import numpy as np

from .files import LABEL_COLUMNS, _csv_cell, _is_number
from .spec import DataSpec, Kind
from .stream import PASS_BYTES, Source
from .text import UNKNOWN, CharVocab, DEFAULT_SEQ_LEN

MAX_TEXT_LABELS = 65_536


class CsvFile(Source):
    """Numeric CSV rows read on demand through an index of the rows' byte offsets, built (with
    every check `genlab.data.files` makes, and the same messages) in one pass over the file."""

    def __init__(self, path: str, name: str | None = None, *, n: int | None = None):
        self.path, self.name = os.path.expanduser(path), name or path
        with open(self.path, "rb") as f:
            start = 3 if f.read(3) == codecs.BOM_UTF8 else 0
            f.seek(start)
            first = f.readline().decode("utf-8", errors="replace").split("\n", 1)[0]
            self.delimiter = max([",", ";", "\t"], key=first.count)
            f.seek(start)
            head, starts, ends, rows, pending_blank = None, [], [], [], None
            stats: list[dict] = []
            pos, row = start, 0
            for raw in f:
                row += 1
                line_start, pos = pos, pos + len(raw)
                r = self._cells(raw, row)
                if not any(c.strip() for c in r):
                    if head is not None and pending_blank is None:
                        pending_blank = row
                    continue
                if pending_blank is not None:
                    raise ValueError(f"{path}: row {pending_blank} is blank between data rows; delete it, or fill in "
                                     f"its value(s) (in a one-column file a blank line is an empty cell)")
                if head is None:
                    head = r
                    has_header = all(not _is_number(c) for c in head if c.strip())
                    names = [c.strip() for c in head] if has_header else [f"column {j + 1}" for j in range(len(head))]
                    stats = [{"bad": None, "words": 0, "word": None, "num": True, "int": True, "set": set(),
                              "empty": None} for _ in names]
                    if has_header:
                        continue
                if len(r) != len(names):
                    raise ValueError(f"{path}: line {row} has {len(r)} fields but the file has "
                                     f"{len(names)} columns; make every row the same length")
                starts.append(line_start), ends.append(pos), rows.append(row)
                for j, (c, st) in enumerate(zip(r, stats)):
                    self._track(st, c, row, j, names[j])
        if head is None:
            raise ValueError(f"{path}: the file is empty (no rows); write a header line and numeric rows")
        if not rows:
            raise ValueError(f"{path}: no data rows (only a header); add numeric rows below it")
        self._finish(names, stats, len(rows), has_header)
        self.starts, self.ends = np.array(starts[:n], dtype=np.int64), np.array(ends[:n], dtype=np.int64)
        self.n = len(self.starts)
        self._fd, self._pid = None, None

    def _cells(self, raw: bytes, row: int) -> list[str]:
        try:
            line = raw.decode("utf-8").rstrip("\n").removesuffix("\r")
        except UnicodeDecodeError as e:
            raise ValueError(f"{self.path}: row {row} is not UTF-8 text ({e}); save the file as UTF-8") from None
        return next(csv.reader([line], delimiter=self.delimiter), [])

    def _track(self, st: dict, c: str, row: int, j: int, name: str) -> None:
        s = c.strip()
        if st["bad"] is None:
            try:
                _csv_cell(self.path, c, row, j + 1, name)
            except ValueError as e:
                st["bad"] = str(e)
        if not s and st["empty"] is None:
            st["empty"] = row
        if s and not _is_number(s):
            st["words"] += 1
            st["word"] = st["word"] or s
        number = _is_number(s)
        st["num"] = st["num"] and number
        if number and st["int"]:
            v = float(s)
            st["int"] = bool(np.isfinite(v) and v == round(v))
            st["lo"], st["hi"] = min(st.get("lo", v), v), max(st.get("hi", v), v)
        if len(st["set"]) <= MAX_TEXT_LABELS:
            st["set"].add(s)

    def _finish(self, names: list[str], stats: list[dict], n_rows: int, has_header: bool) -> None:
        path = self.path
        label_j = next((j for j, c in enumerate(names) if c.lower() in LABEL_COLUMNS), None)
        self.label_map: dict[str, int] | None = None
        if label_j is not None:
            st = stats[label_j]
            if st["empty"] is not None:
                raise ValueError(f"{path}: row {st['empty']}, column {label_j + 1} ({names[label_j]!r}) is empty; "
                                 f"every example needs its class, or drop the column")
            if not st["num"]:
                if len(st["set"]) > MAX_TEXT_LABELS:
                    raise ValueError(f"{path}: column {names[label_j]!r} holds more than {MAX_TEXT_LABELS:,} "
                                     "distinct class names; encode the classes as integers 0..K-1")
                self.label_map = {s: k for k, s in enumerate(sorted(st["set"]))}
            elif not st["int"]:
                label_j = None  # a float column named y/target: a feature
            else:
                self.label_map = {}  # integer labels, read as numbers
        self.keep = [j for j in range(len(names)) if j != label_j]
        if not self.keep:
            raise ValueError(f"{path}: only a label column; add feature columns")
        bad = [f"{names[j]!r} (e.g. {stats[j]['word']!r})" for j in self.keep
               if stats[j]["words"] == n_rows and n_rows > 1]
        if bad:
            raise ValueError(f"{path}: non-numeric column(s) {', '.join(bad)}; encode them as numbers "
                             f"(e.g. one-hot or category codes) or drop them, or name a class column "
                             f"one of {'/'.join(LABEL_COLUMNS)}")
        first_bad = next((stats[j]["bad"] for j in self.keep if stats[j]["bad"]), None)
        if first_bad:
            raise ValueError(first_bad)
        self.label_j = label_j
        self.labelled = label_j is not None
        num_classes = None
        if self.labelled and self.label_map:
            num_classes = len(self.label_map)
        elif self.labelled:
            if stats[label_j]["lo"] < 0:
                raise ValueError(f"{self.name}: y must hold class labels 0..K-1 (integers >= 0); found "
                                 f"{int(stats[label_j]['lo'])!r}; map the labels to 0..K-1 first")
            num_classes = int(stats[label_j]["hi"]) + 1
        feature_names = tuple(names[j] for j in self.keep) if has_header else None
        self.spec = DataSpec((len(self.keep),), Kind.CONTINUOUS, num_classes=num_classes, feature_names=feature_names)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self._pid != os.getpid():  # pread at absolute offsets: safe to share with forked workers
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        x = np.empty((len(rows), len(self.keep)), dtype=np.float32)
        y = np.empty(len(rows), dtype=np.int64) if self.labelled else None
        for k, r in enumerate(rows):
            cells = self._cells(os.pread(self._fd, int(self.ends[r] - self.starts[r]), int(self.starts[r])), 0)
            x[k] = [float(cells[j]) for j in self.keep]
            if y is not None:
                c = cells[self.label_j].strip()
                y[k] = self.label_map[c] if self.label_map else int(float(c))
        return x, y


class TextFile(Source):
    """A UTF-8 ``.txt`` corpus as chunks of ``seq_len`` characters (as `genlab.data.text.load_text_file`):
    one pass finds the vocabulary, a second writes the token ids to a temporary file (2 or 4 bytes
    a character, deleted with this object) that chunks are read from."""

    def __init__(self, path: str, name: str | None = None, *, n: int | None = None,
                 seq_len: int = DEFAULT_SEQ_LEN):
        self.path, self.name, self.seq_len = os.path.expanduser(path), name or path, seq_len
        chars: set[str] = set()
        count = 0
        for block in self._blocks():
            chars.update(block)
            count += len(block)
        if not any(not c.isspace() for c in chars):
            raise ValueError(f"{path}: the text file holds no text; write some into it first")
        if count < seq_len:
            raise ValueError(f"the text has {count} characters, fewer than seq_len={seq_len}; use "
                             f"a shorter seq_len or more text")
        vocab = CharVocab.from_text("".join(chars))
        codes = np.array([ord(c) for c in vocab.chars[1:]], dtype=np.uint32)
        self.dtype = np.uint16 if len(vocab) < 2**16 else np.uint32
        fd, self.ids_path = tempfile.mkstemp(prefix="genlab-text-", suffix=".ids")
        self._cleanup = weakref.finalize(self, _remove_if_owner, self.ids_path, os.getpid())
        with os.fdopen(fd, "wb") as out:
            for block in self._blocks():
                cp = np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32)
                ids = np.searchsorted(codes, cp) + 1
                ids[cp == ord(UNKNOWN)] = 0
                out.write(ids.astype(self.dtype).tobytes())
        self.n = count // seq_len if n is None else min(n, count // seq_len)
        self.spec = DataSpec((seq_len,), Kind.TEXT, levels=len(vocab), vocab=vocab.chars)

    def _blocks(self):
        """The text in blocks of characters, ``\\r\\n`` made ``\\n`` (also across block edges)."""
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        carry = ""
        with open(self.path, "rb") as f:
            while True:
                raw = f.read(PASS_BYTES)
                text = carry + dec.decode(raw, final=not raw)
                carry = text[-1:] if raw and text.endswith("\r") else ""
                text = (text[:-1] if carry else text).replace("\r\n", "\n")
                if text:
                    yield text
                if not raw:
                    return

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, None]:
        mm = np.memmap(self.ids_path, dtype=self.dtype, mode="r")
        try:
            out = np.stack([mm[r * self.seq_len:(r + 1) * self.seq_len] for r in rows]).astype(np.float32)
        finally:
            del mm
        return out, None


def _remove_if_owner(path: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked DataLoader worker's copy must not delete the parent's file
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
