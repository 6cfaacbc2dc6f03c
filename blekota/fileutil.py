"""Files in and out: what an input path is before it is opened, and writing outputs so that
nothing a user has is lost.

A regular file (or a new one) is written to a temporary file beside it and renamed into place
only when it is complete; a symbolic link is followed, so its target is what gets replaced (links
in a loop are refused).
Anything else that already exists under the name (a device such as /dev/null, a FIFO, a
terminal) and standard output ("-") is written directly, as a stream: there is nothing there
to lose and no directory entry to replace.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from .errors import BlekotaError
from .memory import format_bytes

STDOUT = "-"  # the output name that means standard output
STALE_S = 3600  # a temporary file of an earlier write left this long is one a killed process left
NAME_MAX = 255  # the bytes of a file name most file systems take
DESCRIPTOR = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|\d+)/fd/\d+")  # open files by number
_created_folders: list[Path] = []  # what prepare_directory made, deepest first, for folders_undone_on_error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_stream(path: str | os.PathLike) -> bool:
    """Whether writing to path streams into something that is not a regular file: "-"
    (standard output), an open descriptor (/dev/stdout, /dev/fd/N: whatever the shell connected
    it to), or an existing device, FIFO or socket (after following links)."""
    if str(path) == STDOUT or DESCRIPTOR.fullmatch(os.path.abspath(path)):
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def stream_target(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of what writing to the stream path reaches ("-": standard output), so
    that two names of one stream are told to be one; None when it cannot be found out."""
    try:
        info = os.fstat(sys.stdout.fileno()) if str(path) == STDOUT else os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def check_links(path: str | os.PathLike) -> None:
    """Raise OSError (ELOOP, naming path) when the symbolic links path goes through lead in a
    loop: there is no file to write through to, and the real path Python finds for it is one of
    the links, which a write would replace."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None
    except ValueError:
        pass


def existing_file(path: str | os.PathLike) -> Path | None:
    """The regular file that writing to path would replace (a link's target), or None."""
    if is_stream(path):
        return None
    target = Path(os.path.realpath(path))
    return target if target.is_file() else None


def write_nowhere(descriptors: list[int]) -> None:
    """Point these file descriptors at the null device: what is still buffered for them, and all
    that follows, goes nowhere (a reader or a terminal that went away)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for descriptor in descriptors:
            os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


def refused_suffix(path: str | os.PathLike, refused: Collection[str]) -> tuple[str, str] | None:
    """The suffix (lower case) of path's name, or of the file a symbolic link there leads to (what
    writing replaces), that is in `refused`, and path as an error should name it ("b.onnx" or
    "b.onnx (a link to /x/a.npz)"); None where neither is."""
    names = [Path(path)]
    if os.path.islink(path):
        names.append(Path(os.path.realpath(path)))
    for name in names:
        if name.suffix.lower() in refused:
            return name.suffix.lower(), str(path) if name is names[0] else f"{path} (a link to {name})"
    return None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether the names a and b lead to one file: the same path once links are followed, or
    one existing file under two names (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def input_problem(path: str | os.PathLike, what: str) -> str | None:
    """Why path cannot be read as `what` (e.g. "a sound file"): "no such file", "is a
    directory, not a sound file", "is a FIFO (named pipe), not ...", "is empty (0 bytes)",
    "cannot read (permission denied)"; None for a readable non-empty regular file. Checked
    without opening it (opening a FIFO could wait forever)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    except ValueError:
        return "not a usable file name"
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    for test, kind in kinds:
        if test(info.st_mode):
            return f"is {kind}, not {what}"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size == 0:
        return "is empty (0 bytes)"
    if not os.access(path, os.R_OK):
        return "cannot read (permission denied)"
    return None


def starts_with(path: str | os.PathLike, *magic: bytes) -> bool:
    """Whether the file's first bytes are one of `magic` (False when it is not a regular file
    or cannot be read)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as file:
            head = file.read(max(len(m) for m in magic))
    except OSError:
        return False
    return head.startswith(magic)


@contextmanager
def open_output(path: str | os.PathLike) -> Iterator[BinaryIO | StreamWriter]:
    """A binary file to write `path` through (see the module docstring).

    For a regular file: when the block succeeds, the temporary file is flushed to disk, given
    the permissions of the file it replaces (new files: 0666 less the umask) and renamed onto
    path (a link's target); if the block fails or is interrupted, the temporary
    file is removed and any existing file is left untouched. Raises FileNotFoundError when
    the folder does not exist, IsADirectoryError when path is a directory and OSError (ELOOP)
    when its links lead in a loop; an OSError that
    names the temporary file (it cannot be created or renamed) or no file is given path as its
    file name.
    """
    try:
        with _opened(path) as out:
            yield out
    except OSError as error:
        if error.filename is None:
            error.filename = str(path)
        raise


class StreamWriter:
    """A write-only view of a stream, with no tell or seek, so that writers (zip, wav) never
    try to go back: a device such as /dev/null accepts seeks but stays at position 0."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write data to the stream; returns the number of bytes written."""
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def read(self, *args) -> bytes:  # present so that NumPy takes this for a file object
        raise OSError(errno.EBADF, "a stream being written cannot be read")

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError(errno.ESPIPE, "a stream has no position")


@contextmanager
def _opened(path: str | os.PathLike) -> Iterator[BinaryIO | StreamWriter]:
    if str(path) == STDOUT:
        if sys.stdout is None:  # started with >&-
            raise OSError(errno.EBADF, "standard output is closed", STDOUT)
        sys.stdout.flush()
        yield StreamWriter(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    if is_stream(path):
        with open(path, "wb") as out:
            yield StreamWriter(out)
        return
    check_links(path)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such directory", str(Path(path).parent))
    tmp = None
    try:
        while True:  # the name is known before the file exists, so a Ctrl+C at any point cleans up
            tmp = target.parent / f"{_temporary_prefix(target)}{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
                break
            except FileExistsError:
                continue
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            with suppress(OSError):  # a read-only file system refuses even to unlink a name never created
                tmp.unlink()
        if isinstance(error, OSError) and error.filename in (tmp, str(tmp)):  # the hidden name says nothing
            error.filename, error.filename2 = str(path), None
        raise
    _remove_stale_temporaries(target)


def _temporary_prefix(target: Path) -> str:
    """".NAME." of the temporary files (.NAME.XXXXXXXX.tmp) that writes of target use, NAME cut
    where a name as long as a file name can be would make theirs too long."""
    name = target.name
    while len(os.fsencode(f".{name}.12345678.tmp")) > NAME_MAX:
        name = name[:-1]
    return f".{name}."


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the temporary files (.NAME.XXXXXXXX.tmp) that writes of target killed before their
    rename left behind (SIGKILL, power loss): those older than STALE_S, so never one that another
    process is writing now."""
    pattern = re.compile(re.escape(_temporary_prefix(target)) + r"[A-Za-z0-9_]{8}\.tmp")
    now = time.time()
    for leftover in target.parent.iterdir():
        if not pattern.fullmatch(leftover.name):
            continue
        try:
            if leftover.is_file() and not leftover.is_symlink() and now - leftover.stat().st_mtime > STALE_S:
                leftover.unlink()
        except OSError:
            pass


def prepare_directory(directory: Path) -> None:
    """Create the folder files will be written in, and refuse before any work when it cannot be
    written (so that a long run never ends unable to save)."""
    missing = [folder for folder in (directory, *directory.parents) if not folder.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _created_folders[:0] = missing
    except FileExistsError:
        raise BlekotaError(f"{directory}: is not a directory (files cannot be written in it)") from None
    except OSError as error:
        raise BlekotaError(f"{directory}: cannot create the folder ({error.strerror or error})") from None
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise BlekotaError(f"{directory}: cannot write files in it ({error.strerror or error})") from None


def check_room(paths: list[str | os.PathLike], size: int) -> None:
    """Refuse before any work files of `size` bytes each that would not fit in the free space of
    their folders (each written whole beside the file it replaces); streams are left out.
    Raises BlekotaError naming the folder."""
    needed: dict[int, tuple[Path, int]] = {}
    for path in paths:
        if is_stream(path):
            continue
        folder = Path(os.path.realpath(path)).parent
        with suppress(OSError):
            device = os.stat(folder).st_dev
            needed[device] = (folder, needed.get(device, (folder, 0))[1] + size)
    for folder, total in needed.values():
        with suppress(OSError):
            free = shutil.disk_usage(folder).free
            if total > free:
                raise BlekotaError(f"{folder}: {format_bytes(total)} to write, {format_bytes(free)} free there")


@contextmanager
def folders_undone_on_error() -> Iterator[None]:
    """Within it, the folders prepare_directory creates are removed again, those still empty,
    when a BlekotaError or KeyboardInterrupt ends it: a refused command, or one stopped by Ctrl+C
    before it wrote there, leaves no empty folder behind."""
    _created_folders.clear()
    try:
        yield
    except (BlekotaError, KeyboardInterrupt):
        for folder in _created_folders:
            with suppress(OSError):
                folder.rmdir()
        raise
    finally:
        _created_folders.clear()
