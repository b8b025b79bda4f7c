"""Uploaded definition files and zips, checked before anything is written or deployed.

A deployment arrives as multipart parts: BPMN, DMN and JSON form files, or one zip of them. The
files are laid out in a fresh temporary folder the way `tigao deploy FOLDER` reads one (diagrams at
the top, forms in `forms/`), so the upload goes through exactly the validation a deploy from disk
does. A zip is refused whole when any entry is unsafe: a path that climbs out (`../`), an absolute
path, a link, too many entries, or more bytes than the limits once inflated (zip bombs are caught
by the declared sizes, the compression ratio, and by counting the bytes actually inflated).
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from engine.errors import InputError

MAX_FILES = 200
MAX_FILE_BYTES = int(os.environ.get("TIGAO_MAX_FILE_BYTES", str(5 * 1024 * 1024)))
MAX_TOTAL_BYTES = 50 * 1024 * 1024
MAX_RATIO = 100  # inflated / compressed, per entry
KINDS = (".bpmn", ".dmn", ".json")


def _place(name: str) -> str:
    """Where a file of the bundle goes: `x.bpmn`, `x.dmn` or `forms/x.json`."""
    base = PurePosixPath(name).name
    if not base or base.startswith(".") or not base.lower().endswith(KINDS):
        raise InputError(f"'{name}' is not a .bpmn, .dmn or .json (form) file")
    return f"forms/{base}" if base.lower().endswith(".json") else base


def _check_name(name: str) -> None:
    if "\x00" in name or "\\" in name or name.startswith("/") or ".." in PurePosixPath(name).parts \
            or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"refused '{name}': a file name may not climb out of the bundle (../, /, \\, C:)")


def unzip(data: bytes) -> dict[str, bytes]:
    """The bundle files of a zip, by their place in the bundle; InputError when the zip is unsafe."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InputError(f"the zip cannot be read: {exc}") from exc
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_FILES:
        raise InputError(f"the zip has {len(infos)} files; at most {MAX_FILES}")
    total = 0
    out: dict[str, bytes] = {}
    for info in infos:
        _check_name(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(f"refused '{info.filename}': links are not allowed in a zip")
        if info.file_size > MAX_FILE_BYTES or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO
                                               and info.file_size > 1024 * 1024):
            raise InputError(f"refused '{info.filename}': it inflates to {info.file_size:,} bytes "
                             f"(limit {MAX_FILE_BYTES:,}, ratio at most {MAX_RATIO}); is this a zip bomb?")
        name = PurePosixPath(info.filename).name
        if name.startswith(".") or name.startswith("__MACOSX") or not name.lower().endswith(KINDS):
            continue  # READMEs, images and editor files travel with diagrams; they are not deployed
        with zf.open(info) as f:
            content = f.read(MAX_FILE_BYTES + 1)  # never trust the declared size alone
        if len(content) > MAX_FILE_BYTES:
            raise InputError(f"refused '{info.filename}': larger than {MAX_FILE_BYTES:,} bytes once inflated")
        total += len(content)
        if total > MAX_TOTAL_BYTES:
            raise InputError(f"the zip inflates to more than {MAX_TOTAL_BYTES:,} bytes; is this a zip bomb?")
        _add(out, _place(info.filename), content, info.filename)
    if not out:
        raise InputError("the zip has no .bpmn, .dmn or .json files")
    return out


def _add(out: dict[str, bytes], place: str, content: bytes, given: str) -> None:
    if place in out and out[place] != content:
        raise InputError(f"two different files would be '{place}' (from '{given}'); rename one")
    out[place] = content


def collect(parts: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The bundle of uploaded parts (filename, content): plain files and at most one zip."""
    if not parts:
        raise InputError("upload at least one file (multipart field 'files'): BPMN, DMN, JSON forms or a zip")
    if len(parts) > MAX_FILES:
        raise InputError(f"{len(parts)} files uploaded; at most {MAX_FILES}")
    out: dict[str, bytes] = {}
    for filename, content in parts:
        _check_name(filename)
        if filename.lower().endswith(".zip"):
            for place, data in unzip(content).items():
                _add(out, place, data, f"{filename}:{place}")
            continue
        if len(content) > MAX_FILE_BYTES:
            raise InputError(f"'{filename}' is {len(content):,} bytes; the limit is {MAX_FILE_BYTES:,}")
        _add(out, _place(filename), content, filename)
    return out


def write_bundle(files: dict[str, bytes]) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder holding the bundle; the caller deploys it and removes it."""
    tmp = tempfile.TemporaryDirectory(prefix="tigao-upload-")
    root = Path(tmp.name)
    (root / "forms").mkdir()
    for place, content in files.items():
        (root / place).write_bytes(content)
    return tmp
