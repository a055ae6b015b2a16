"""The one place state touches the disk: atomic JSON writes and locked JSONL appends.

A write goes to a temp file in the same directory, is fsynced, renamed over the target with
`os.replace`, and the directory is fsynced, all under a `filelock.FileLock` beside the target.
A crash at any instant leaves either the old or the new file, never a torn one. These functions
block: call them from a worker thread (`anyio.to_thread.run_sync`) when on the event loop.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

_DUMP_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class CorruptFileError(ValueError):
    """A state file exists but cannot be parsed; it is never silently overwritten."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def lock_for(target: Path) -> FileLock:
    return FileLock(str(target) + ".lock", timeout=30)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(target: Path, data: bytes, *, locked: bool = True) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    if locked:
        with lock_for(target):
            write()
    else:
        write()


def dumps(value: Any, *, pretty: bool = True) -> bytes:
    return orjson.dumps(value, option=_DUMP_OPTS if pretty else orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def write_json_atomic(target: Path, value: Any, *, pretty: bool = True, locked: bool = True) -> None:
    write_bytes_atomic(target, dumps(value, pretty=pretty) + (b"\n" if pretty else b""), locked=locked)


def read_json(target: Path, default: Any = None) -> Any:
    """Parse a JSON file; a missing file gives `default`, an unparseable one raises CorruptFileError."""
    try:
        raw = Path(target).read_bytes()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise CorruptFileError(Path(target), f"unreadable: {exc.strerror or exc}") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CorruptFileError(Path(target), f"invalid JSON: {exc}") from exc


def append_jsonl(target: Path, records: list[dict] | dict, *, fsync: bool = True) -> None:
    """Durably append one or more JSON lines under the file's lock.

    A failed write (a full disk) truncates the file back to where it was, so no torn line is left
    for the next append to glue onto. A torn last line already there (a crash mid-append, or a
    truncate that failed too) is ended first: the new records always start on a line of their own.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(records, dict):
        records = [records]
    payload = b"".join(orjson.dumps(r, option=orjson.OPT_NON_STR_KEYS) + b"\n" for r in records)
    with lock_for(target):
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            if start and os.pread(fd, 1, start - 1) != b"\n":
                payload = b"\n" + payload
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                if fsync:
                    os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass  # the next append starts on a new line anyway
                raise
        finally:
            os.close(fd)
