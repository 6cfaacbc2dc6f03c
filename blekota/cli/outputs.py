"""The command line's output files: names that promise another format, outputs that would replace
a file, a folder or the terminal by surprise, and two outputs (or an output and an input) that are
one file. Each check refuses in one line (BlekotaError) before any work."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import modelfile
from ..errors import BlekotaError
from ..fileutil import STDOUT, check_links, existing_file, is_stream, refused_suffix, same_file, stream_target
from ..onnx import OTHER_SUFFIXES as NOT_ONNX_SUFFIXES
from ..plot import NOT_PNG_SUFFIXES


OTHER_SUFFIXES = {  # by the format written: the names that promise another format of its kind
    "PNG": NOT_PNG_SUFFIXES,
    "ONNX": NOT_ONNX_SUFFIXES,  # model files and sounds
    "npz": modelfile.OTHER_SUFFIXES,  # a model file under another kind's name
}


def check_format_name(output: str | os.PathLike, option: str, written: str) -> None:
    """Refuse a file name that promises another format than the one written there ("PNG", "ONNX" or
    "npz", a model file)."""
    refused = None if is_stream(output) else refused_suffix(output, OTHER_SUFFIXES[written])
    if refused:
        suffix, named = refused
        article = "an" if written[0] in "AEIOU" else "a"
        raise BlekotaError(f"{named}: {option} writes {article} {written} file, not {suffix[1:]}; "
                           f"give it a name ending in .{written.lower()}")


def stdout_is_terminal() -> bool:
    """Whether standard output is a terminal (not when it is closed, or None)."""
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (OSError, ValueError):
        return False


def check_output(output: str | os.PathLike, force: bool) -> None:
    """Refuse before any work: a directory, an existing file without force, a missing folder.
    A device, a FIFO or "-" (standard output) is written as a stream and needs no force, but for
    "-" where standard output is a terminal (the bytes would show as garbage there)."""
    if str(output) == STDOUT and not force and stdout_is_terminal():
        raise BlekotaError("-: standard output is a terminal, where the file's bytes would show as garbage; send it to "
                           "a program (... -o - | aplay) or a file (> take.wav), or use --force")
    if is_stream(output):
        return
    check_links(output)
    target = Path(os.path.realpath(output))
    if target.is_dir():
        raise BlekotaError(f"{output}: is a directory (give a file name to write)")
    if str(output).endswith(("/", os.sep)):  # a folder's name, which Path would take for a file's
        raise BlekotaError(f"{output}: {not_a_folder(str(output).rstrip('/' + os.sep))}")
    if existing_file(output) and not force:
        raise BlekotaError(f"{output}: already exists (use --force to overwrite)")
    if not target.parent.is_dir():
        folder = target.parent if Path(output).is_symlink() else Path(output).parent
        raise BlekotaError(f"{output}: {not_a_folder(folder)}")


def not_a_folder(folder: str | os.PathLike) -> str:
    """Why folder, which an output's name puts it in, is none: "the directory F does not exist", or
    "F is not a directory" (a file is there)."""
    return f"{folder} is not a directory" if os.path.lexists(folder) else f"the directory {folder} does not exist"


def check_distinct(outputs: dict[str, str | os.PathLike | None],
                   inputs: dict[str, str | os.PathLike | None] | None = None) -> None:
    """Refuse before any work two outputs of one command that are one file (the second would
    replace the first), and an output that is one of the files it reads. Keys name the
    arguments (say "-o", "--heatmap", "MODEL"); None values are left out, and streams are
    compared only with each other (by what they reach: "-" and /dev/stdout are one; the null
    device takes any number)."""
    streams = [(what, path) for what, path in outputs.items() if path is not None and is_stream(path)]
    for number, (what, path) in enumerate(streams):
        for other, other_path in streams[:number]:
            target = stream_target(path)
            if target not in (None, stream_target(os.devnull)) and target == stream_target(other_path):
                raise BlekotaError(f"{other_path} ({other}) and {path} ({what}) are one stream; each needs its own")
    written = [(what, path) for what, path in outputs.items() if path is not None and not is_stream(path)]
    for number, (what, path) in enumerate(written):
        for other, other_path in written[:number]:
            if same_file(path, other_path):
                if str(path) == str(other_path):
                    raise BlekotaError(f"{path}: given as both {other} and {what}; each needs its own file")
                raise BlekotaError(f"{other_path} ({other}) and {path} ({what}) are one file; each needs its own")
        for read, read_path in (inputs or {}).items():
            if read_path is not None and same_file(path, read_path):
                raise BlekotaError(f"{path}: is the {read} this reads; give {what} another file")


def output_png(name: str | None, force: bool, option: str) -> Path | None:
    """The PNG path asked for on the command line by option, refusing a name that promises another
    image format, or to replace a file unless force (a directory is where plot names its own file)."""
    if name is None:
        return None
    if not Path(name).is_dir():
        check_format_name(name, option, "PNG")
        check_output(name, force)
    return Path(name)
