"""Where an experiment lives (``Location``: storage and name, the folder this machine reaches)
and its driver lock (``driving``): one process drives one experiment at a time."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from baseres.cli import command_line
from baseres.config import one_line
from tune.errors import UsageError

STUDY_FILE = "study.yaml"  # the resolved study: what makes a folder an experiment
LOCK_FILE = "driver.lock"

MIN_FREE_BYTES = 200 * 2**20  # below this a search cannot write a few checkpoints


class HoldsFolder:
    """A part of a search (its searcher, scheduler, a callback) that works in the experiment
    folder its driver holds: the driver hands it over (``hold``) when it builds the part and
    again after Ray restored it. Never pickled into Ray's state: a moved experiment must not
    write into the original's journal or folder."""

    held: Path | None = None

    def hold(self, folder: Path) -> None:
        self.held = Path(folder)

    @property
    def folder(self) -> Path:
        if self.held is None:
            raise RuntimeError(f"{type(self).__name__}: no experiment folder handed to it; "
                               "its driver hands the one it holds (experiment.driving)")
        return self.held

    def __getstate__(self) -> dict:
        return {**self.__dict__, "held": None}


def is_uri(storage: str) -> bool:
    return "://" in storage


def local_path(location: str) -> Path | None:
    """A plain path, or the path of a file:// URI (e.g. an NFS mount every node shares) as
    Ray's filesystem (pyarrow) reads it, percent-escapes decoded, so that both write one
    folder; None for remote storage such as s3://. A URI pyarrow cannot parse is refused."""
    if not is_uri(location):
        return Path(location)
    if urlparse(location).scheme != "file":
        return None
    from pyarrow.fs import FileSystem

    try:
        return Path(FileSystem.from_uri(location)[1])
    except ValueError as err:  # pyarrow's ArrowInvalid, before Ray would fail on it
        raise UsageError(one_line(
            f"{location}: Ray's filesystem (pyarrow) cannot read this file:// URI ({err}); "
            "percent-encode its path (a space as %20) or give a plain path")) from None


@dataclass(frozen=True)
class Location:
    """Where an experiment lives: <storage>/<name>, under a local folder or a URI (s3://,
    file:// on a shared mount), and the local folder that holds its study.yaml and Optuna
    journal (a journal needs a local file)."""

    storage: str  # an absolute local path or a URI (Ray refuses relative paths)
    name: str

    @classmethod
    def of(cls, experiment: str) -> Location:
        """The location of an experiment given as one path or URI (--resume's)."""
        if not is_uri(experiment):
            experiment = str(Path(experiment).expanduser().resolve())
        storage, _, name = experiment.rstrip("/").rpartition("/")
        return cls(storage or "/", name)  # "/" itself: no name, and so no experiment

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def local(self) -> Path | None:
        """The folder itself where this machine reaches it; None on remote storage."""
        return local_path(self.uri)

    @property
    def state_folder(self) -> Path:
        """Where study.yaml and the journal live: the folder itself when this machine reaches
        it, else ./results/<name>."""
        local = self.local
        return (local if local is not None else Path("results", self.name)).resolve()

    def child(self, name: str) -> Location:
        """A run inside this experiment (the question's, the confirmation's)."""
        return Location(self.uri, name)

    def __str__(self) -> str:
        return self.uri


def resolve_storage(storage: str) -> str:
    """Absolute local path or URI (Ray refuses relative paths: trials run in their own dirs)."""
    if is_uri(storage):
        return storage
    return str(Path(storage).expanduser().resolve())


def free_name(storage: str, name: str) -> str:
    """`name`, or name-2, name-3 ... when a search already lives there (nothing is overwritten)."""
    local = local_path(storage)
    if local is None:
        return name
    candidate, number = name, 1
    while (local / candidate).exists():
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def check_writable(folder: Path) -> None:
    """Fail before any trial starts when results could not be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"x" * 4096)
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--storage {folder}: cannot write there: {err.strerror}") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise UsageError(f"--storage {folder}: at least {MIN_FREE_BYTES // 2**20} MiB free space "
                         f"is needed, but {free // 2**20} MiB is left")


def new_location(storage: str, name: str, chosen: bool) -> Location:
    """Create the experiment folder, exclusively: two searches started at once never share
    one. A name the user chose must be free; the study's name becomes name-2, -3 ..."""
    storage = resolve_storage(storage)
    local = local_path(storage)
    if local is None:
        return Location(storage, name)
    check_writable(local)
    candidate = name if chosen else free_name(storage, name)
    while True:
        try:
            (local / candidate).mkdir()
            return Location(storage, candidate)
        except FileExistsError:
            if chosen and not (local / name / STUDY_FILE).is_file():
                raise UsageError(f"--name {name}: {local / name} already exists and holds no "
                                 f"search to resume (no {STUDY_FILE}); choose another "
                                 "--name") from None
            if chosen:
                raise UsageError(f"--name {name}: {local / name} already exists; finish its "
                                 f"search with {command_line('--resume', local / name)}, or "
                                 "choose another --name") from None
            candidate = free_name(storage, name)


def placed_line(location: Location, name: str) -> str:
    """Where a new experiment goes, said first; when `name` (the study's, no --name given)
    was taken (by make run's link to its newest experiment, or an earlier search), by what."""
    line = f"experiment: {location}"
    taken = local_path(location.storage)
    if location.name == name or taken is None:
        return line
    taken /= name
    what = (f"a link to {os.readlink(taken)}" if taken.is_symlink()
            else "an earlier experiment")
    # two lines: the path alone may take most of a console's width
    return (f"{line}\n  (the study is named {name!r}; {taken} is taken: {what}; --name "
            "chooses another)")


@contextmanager
def driving(folder: Path, command: str = "tune.run") -> Iterator[Path]:
    """Hold an experiment folder's driver lock while the block runs: one driver per
    experiment (two would both ask the journal for trials and run num_samples twice). Yields
    the folder held, which the driver hands to the searcher, the scheduler and the callbacks
    that open its journal or watch its disk.

    The lock is the kernel's (flock), so a killed driver never leaves it behind.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "a+")
    except OSError as err:
        raise UsageError(f"{folder}: cannot write there: {err.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise UsageError(f"{folder}: another command is working on this experiment "
                         f"({owner}); one experiment has one driver: wait for it, or stop it "
                         "first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{command}, pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    try:
        yield folder
    finally:
        handle.close()
