"""A results folder's safety: the project writes only where it may, one run at a time, never half a file.

* **Marker.** A folder the project creates gets a marker file (``MARKER``). A run writes only into a folder
  that is absent, empty, or holds the marker (or, made before markers existed, a run's ``config.json``,
  which a run resumes only when its settings are the same); any other folder is the user's and is
  refused, so no file of theirs is overwritten.
* **Lock.** A run holds an exclusive lock on its folder (``filelock``, an OS lock the kernel releases when the
  process dies) for its lifetime; a second run on the folder is refused, naming the holder (pid, host, start
  time). A holder file left by a killed process is stale: the next run takes the lock over and says so.
* **Atomic writes.** Every file that matters is written under a temporary name and renamed into place, so an
  interruption (Ctrl-C, a killed process) leaves the old file or the new one, never half of one.
* **Interruption.** Ctrl-C ends in ``RunInterrupted``: what is saved and how to resume, in one line.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import json
import os
import shutil
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

MARKER = ".tscnn-results"
LOCK = ".tscnn-lock"
HOLDER = ".tscnn-lock-holder.json"
OWN_FILES = {MARKER, LOCK, HOLDER}
LEGACY = "config.json"  # a results folder made before the marker existed (resumed only with equal settings)

F = TypeVar("F", bound=Callable)


class FolderInUseError(ValueError):
    """Another run holds the results folder's lock."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what is saved and how to resume."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends without error,
    removed otherwise. The temporary name is private to the process (a parallel writer never shares it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def is_results_folder(folder: Path) -> bool:
    """True when the project wrote ``folder``: it holds the marker, or (older folders) a run's settings."""
    return (folder / MARKER).is_file() or (folder / LEGACY).is_file()


def require_empty(folder: str | Path, what: str) -> None:
    """Refuse a ``folder`` that exists and holds anything (``what`` names the command's target)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        kind = "a folder that is not empty" if folder.is_dir() else "a file"
        raise ValueError(f"{folder}: {what} must be a new or empty folder; this is {kind} (nothing was written)")


def claim(folder: str | Path, what: str = "--out") -> bool:
    """Make ``folder`` a results folder, or check that it is one; True when this call created it. A folder
    that is neither absent, empty nor the project's is refused in one line: its files are not ours to touch."""
    folder = Path(folder)
    if folder.exists() and not is_results_folder(folder):
        require_empty(folder, f"{what} (a results folder)")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MARKER).is_file():
        from tscnn import __version__

        atomic_write_text(folder / MARKER, json.dumps({"written_by": f"tscnn {__version__}", "created": _now()}))
    return created


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


def _holder(folder: Path) -> dict:
    try:
        return json.loads((folder / HOLDER).read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def exclusive(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the block, or refuse at once naming who holds it. The OS releases the lock of
    a process that dies; the holder file it leaves is reported as taken over."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    lock = FileLock(folder / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        held = _holder(folder)
        who = (f"pid {held.get('pid')} on {held.get('host')}, started {held.get('started')}" if held
               else "another process")
        raise FolderInUseError(f"{folder}: another run is writing this results folder ({who}); wait for it to "
                               "end or use another --out") from None
    try:
        before = _holder(folder)
        if before and not (before.get("host") == socket.gethostname() and _pid_alive(int(before.get("pid", 0)))):
            warnings.warn(f"{folder}: took over the lock of a run that ended without releasing it (pid "
                          f"{before.get('pid')} on {before.get('host')}, started {before.get('started')})",
                          stacklevel=3)
        atomic_write_text(folder / HOLDER, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                       "started": _now()}))
        yield
    finally:
        (folder / HOLDER).unlink(missing_ok=True)
        lock.release()


def saved_folds(folder: Path) -> int:
    """How many fold records ``folder`` holds (every seed, every variant of a table)."""
    return sum(1 for _ in folder.glob("**/seed_*/folds/*.json"))


def writes_results_folder(argument: str = "out", what: str = "--out") -> Callable[[F], F]:
    """Decorate a function that writes the results folder given as its ``argument``: the folder is claimed
    (``claim``) and locked (``exclusive``) for the call. When the call fails before any fold is saved, a folder
    it created is removed again, so the corrected command starts clean; Ctrl-C becomes ``RunInterrupted``,
    saying what is saved and how to resume."""
    def decorate(function: F) -> F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):  # noqa: ANN202
            folder = Path(signature.bind(*args, **kwargs).arguments[argument])
            created = claim(folder, what)
            try:
                with exclusive(folder):
                    return function(*args, **kwargs)
            except RunInterrupted:
                raise
            except KeyboardInterrupt:
                folds = saved_folds(folder)
                raise RunInterrupted(f"{folder}: {folds} finished fold(s) saved; run the same command again to "
                                     "resume from them" if folds else f"{folder}: no fold finished yet") from None
            except BaseException:
                if created and not saved_folds(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        return wrapper  # type: ignore[return-value]
    return decorate
