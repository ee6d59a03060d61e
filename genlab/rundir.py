"""A run directory as a sequence of commits: whatever instant a process dies, the files of a run
belong to one generation, and readers never see half of one.

The files keep their names (``config.json``, ``model.safetensors``, ``checkpoint.safetensors``,
``trainer.json``), so people and tools read them as before. ``manifest.json`` records the
generation number, the SHA-256 of every committed file (JSON files by their canonical form, so
re-indenting is not an edit) and a copy of each committed JSON file (to say what a hand edit
changed). A commit of generation N

1. writes each new file as ``.NAME.gen<N>`` (flushed to disk),
2. replaces ``manifest.json`` (the commit point; the file and the directory are flushed),
3. renames each ``.NAME.gen<N>`` onto ``NAME``.

A process that dies before 2 leaves generation N-1 whole (its pending files are removed on the
next start, with every stale ``.tmp``); one that dies during 3 leaves generation N committed: the
next writer finishes the renames (`recover`), and a reader meanwhile takes a file from its pending
copy (`read`). Directories written before manifests existed are read as they are (their own
checksums, in config.json and trainer.json, still apply) and get a manifest at their next commit.

One process writes a run at a time: `lock` takes an advisory lock (``fcntl.flock``) that the
kernel releases when its holder dies, so a killed run never leaves the directory locked.

This module imports nothing from genlab (it sits at the bottom of the layer list).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"
LOCK = ".lock"
MANIFEST_FORMAT = "genlab-manifest/1"
_PENDING = re.compile(r"^\.(?P<name>.+)\.gen(?P<gen>\d+)$")
_TMP = re.compile(r"^\..+\.tmp$")


class CorruptFile(ValueError):
    """A run file that cannot be trusted: truncated, corrupted, edited or of the wrong format."""


class RunLocked(RuntimeError):
    """Another live process is writing this run directory."""


# -- crash points: where tests kill the process (GENLAB_CRASH_AT=N: SIGKILL at the Nth point) -----
_points_passed = 0


def crash_point(name: str) -> None:
    """A named instant inside a write. With ``GENLAB_CRASH_AT=N`` in the environment the process
    kills itself (SIGKILL, as ``kill -9`` does) at the N-th such instant; with ``GENLAB_CRASH_LOG``
    naming a file, every instant is appended to it. The crash-consistency tests use both; without
    them this costs one dictionary lookup."""
    global _points_passed
    at, log = os.environ.get("GENLAB_CRASH_AT"), os.environ.get("GENLAB_CRASH_LOG")
    if at is None and log is None:
        return
    _points_passed += 1
    if log:
        with open(log, "a") as f:
            f.write(f"{_points_passed} {name}\n")
    if at is not None and _points_passed == int(at):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable (not possible, nor needed, on Windows)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, data: bytes, point: str) -> None:
    """Write ``data`` to the new file ``path`` and flush it to disk."""
    with open(path, "xb") as f:
        crash_point(f"{point}:open")
        half = len(data) // 2
        f.write(data[:half])
        f.flush()
        crash_point(f"{point}:half")
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its files are mode 0600; a run is read like any other output (the umask decides)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        _write_durable(tmp, data, f"write {path.name}")
        os.replace(tmp, path)
        crash_point(f"replaced {path.name}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def canonical_json(obj: Any) -> bytes:
    """The bytes a JSON value is hashed by: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def json_bytes(obj: Any) -> bytes:
    """How genlab writes a JSON file: indented, sorted keys, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, json_bytes(obj))


def parse_json(data: bytes, where: str | Path) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFile(f"{where} is not valid JSON ({e}); the file is corrupted or was edited "
                          "by hand: restore it or train again") from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is this a genlab run directory "
                                "(made by `genlab train` or genlab.save)?")
    return parse_json(path.read_bytes(), path)


def _digest(name: str, data: bytes) -> str:
    """SHA-256 of a file's bytes; of its canonical form for a JSON file that parses."""
    if name.endswith(".json"):
        with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
            data = canonical_json(json.loads(data))
    return hashlib.sha256(data).hexdigest()


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """The committed manifest of ``run_dir``, or None for a directory written before manifests."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        return None
    m = parse_json(path.read_bytes(), path)
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or not isinstance(m.get("files"), dict):
        raise CorruptFile(f"{path} is not a genlab manifest; restore it or train again")
    return m


# -- writing ---------------------------------------------------------------------------------
def recover(run_dir: str | Path) -> list[str]:
    """Bring ``run_dir`` to its committed generation (a writer calls this before writing): finish
    the renames a killed commit left, remove uncommitted pending files and stale ``.tmp`` files.
    Returns what was done, in words (empty when the directory was clean)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    manifest = read_manifest(run_dir)
    gen = manifest["generation"] if manifest else None
    done = []
    for p in sorted(run_dir.iterdir()):
        m = _PENDING.match(p.name)
        if m and gen is not None and int(m["gen"]) == gen and m["name"] in manifest["files"] \
                and _digest(m["name"], p.read_bytes()) == manifest["files"][m["name"]]:
            os.replace(p, run_dir / m["name"])
            done.append(f"completed {m['name']} of generation {gen}")
        elif m:
            p.unlink()
            done.append(f"removed the unfinished {p.name}")
        elif _TMP.match(p.name):
            p.unlink()
            done.append(f"removed the stale {p.name}")
    if done:
        _fsync_dir(run_dir)
    return done


def commit(run_dir: str | Path, files: dict[str, bytes]) -> int:
    """Replace the files named in ``files`` (name -> bytes) as one new generation; the others
    stay as committed. Returns the new generation number. The caller holds `lock`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    old = read_manifest(run_dir)
    if old is None:  # first commit, or a directory from before manifests: adopt what is there
        entries = {p.name: _digest(p.name, p.read_bytes()) for p in run_dir.iterdir()
                   if p.name in ("config.json", "model.safetensors", "checkpoint.safetensors", "trainer.json")}
        snapshots: dict[str, Any] = {}
        gen = 1
    else:
        entries, snapshots, gen = dict(old["files"]), dict(old.get("json", {})), old["generation"] + 1
    for name, data in files.items():
        (run_dir / f".{name}.gen{gen}").unlink(missing_ok=True)  # left by a commit that died before its manifest
        _write_durable(run_dir / f".{name}.gen{gen}", data, f"pending {name}")
        entries[name] = _digest(name, data)
        if name.endswith(".json"):
            snapshots[name] = json.loads(data)
    manifest = {"format": MANIFEST_FORMAT, "generation": gen, "files": entries, "json": snapshots,
                "time": time.time()}
    _fsync_dir(run_dir)
    atomic_write(run_dir / MANIFEST, json_bytes(manifest))  # the commit point
    _fsync_dir(run_dir)
    crash_point("committed")
    for name in files:
        os.replace(run_dir / f".{name}.gen{gen}", run_dir / name)
        crash_point(f"renamed {name}")
    _fsync_dir(run_dir)
    return gen


_held: dict[Path, int] = {}  # run directories this process holds the lock of -> nesting depth


@contextlib.contextmanager
def lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run's writer lock inside the block; `RunLocked` if another live process holds
    it. Re-entrant within a process. (Advisory ``flock``: released by the kernel when the holder
    exits or is killed. Where ``fcntl`` does not exist, e.g. Windows, no lock is taken.)"""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is None or key in _held:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    f = open(run_dir / LOCK, "a+")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RunLocked(f"{run_dir} is being written by another process (pid {holder}); wait for "
                            "it to finish, or write to another directory (--out)") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        f.close()  # closing the descriptor releases the lock


# -- reading ---------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """Files of one committed generation (None: a directory from before manifests)."""

    generation: int | None
    files: dict[str, bytes]


def _edits(saved: Any, now: Any, where: str = "") -> list[str]:
    """The differences between two JSON values, as ``key: old -> new`` lines."""
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(saved) | set(now), key=str):
            key = f"{where}.{k}" if where else str(k)
            if k not in now:
                out.append(f"{key} removed (was {json.dumps(saved[k])[:60]})")
            elif k not in saved:
                out.append(f"{key} added ({json.dumps(now[k])[:60]})")
            else:
                out += _edits(saved[k], now[k], key)
        return out
    if canonical_json(saved) != canonical_json(now):
        return [f"{where or 'the whole file'}: {json.dumps(saved)[:60]} -> {json.dumps(now)[:60]}"]
    return []


def _mismatch(run_dir: Path, name: str, data: bytes, manifest: dict[str, Any]) -> CorruptFile:
    path = run_dir / name
    if name.endswith(".json") and name in manifest.get("json", {}):
        try:
            changes = _edits(manifest["json"][name], json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError):
            changes = []
        if changes:
            return CorruptFile(f"{path} was changed after it was saved ({'; '.join(changes[:8])}). "
                               "genlab refuses hand-edited runs: restore the saved values (a copy is in "
                               f"{run_dir / MANIFEST}), or train a new run with the settings you want")
    return CorruptFile(f"{path} does not match the checksum recorded when it was saved: it was "
                       "truncated, corrupted or modified. Restore it or train again")


def read(run_dir: str | Path, names: list[str], attempts: int = 20) -> Snapshot:
    """Read ``names`` from the last committed generation of ``run_dir``, verified against the
    manifest (a name the generation lacks raises FileNotFoundError). While a writer commits, a
    file may be read from its pending copy or read again; ``attempts`` bounds the retries."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    for _ in range(attempts):
        manifest = read_manifest(run_dir)
        if manifest is None:
            return Snapshot(None, {n: _read_plain(run_dir / n) for n in names})
        gen, files, error = manifest["generation"], {}, None
        for name in names:
            if name not in manifest["files"]:
                raise FileNotFoundError(f"{run_dir / name} is not part of this run's last saved state "
                                        f"(generation {gen}); was training interrupted before the first save?")
            want = manifest["files"][name]
            candidates = [run_dir / f".{name}.gen{gen}", run_dir / name]
            found = None
            for p in candidates:
                with contextlib.suppress(FileNotFoundError):
                    data = _read_bytes(p)
                    if _digest(name, data) == want:
                        found = data
                        break
            if found is None:
                error = name
                break
            files[name] = found
        if error is None:
            return Snapshot(gen, files)
        again = read_manifest(run_dir)
        if again is None or again["generation"] == gen:  # nobody is committing: the file is bad
            if not (run_dir / error).is_file():
                raise FileNotFoundError(f"{run_dir / error} does not exist, though the run's last saved "
                                        f"state (generation {gen}) has it: restore it or train again")
            data = (run_dir / error).read_bytes()
            if not data:
                raise CorruptFile(f"{run_dir / error} is empty; the run is damaged: "
                                  "train again or restore the file")
            raise _mismatch(run_dir, error, data, manifest)
        time.sleep(0.01)  # a writer committed meanwhile: read the new generation
    raise CorruptFile(f"{run_dir} kept changing while being read ({attempts} attempts); try again "
                      "when the writer pauses")


def _read_bytes(path: Path) -> bytes:
    """A file's bytes; a file too large for the memory available is refused with its size."""
    try:
        return path.read_bytes()
    except MemoryError:
        size = path.stat().st_size
        raise ValueError(f"{path} ({size / 2**30:.1f} GiB) does not fit in the memory available to this "
                         "process; load it on a machine with more memory (or raise the process's limit)") from None


def _read_plain(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the run is incomplete (was training "
                                "interrupted before the first save?)")
    data = _read_bytes(path)
    if not data:
        raise CorruptFile(f"{path} is empty; the run is damaged: train again or restore the file")
    return data
