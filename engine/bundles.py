"""Definition files: read safely from disk, parsed safely as XML.

A bundle is a set of BPMN, DMN and form (JSON Schema or Camunda Forms) files by name. Hostile
files are refused before they are parsed: a file over the size limit, one that is not a regular
file (a FIFO or device is never waited on), a link out of the folder given, any DOCTYPE or entity
declaration (XXE, "billion laughs"). `engine.definitions` validates a bundle and builds its specs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .errors import DefinitionError, InputError, Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
MAX_FILE_BYTES = int(os.environ.get("TIGAO_MAX_FILE_BYTES", str(5 * 1024 * 1024)))

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          remove_blank_text=False, dtd_validation=False)


@dataclass
class Bundle:
    """Files by name: `x.bpmn`, `x.dmn`, `forms/k.json`."""

    files: dict[str, str]

    def bpmn_names(self) -> list[str]:
        return sorted(n for n in self.files if n.lower().endswith(".bpmn") or n.lower().endswith(".bpmn20.xml"))

    def dmn_names(self) -> list[str]:
        return sorted(n for n in self.files if n.lower().endswith(".dmn"))


def read_bundle(paths: list[str | Path]) -> Bundle:
    """Read files and folders. A folder gives its *.bpmn and *.dmn files and the *.json files
    beside them or in its forms/ folder; a BPMN file brings the form schemas beside it or in a
    forms/ folder beside it. Only regular files are read (a FIFO or device named *.bpmn is
    refused, never waited on), a file found in a folder may not be a link to outside that folder,
    and over-size files are refused before they are read."""
    files: dict[str, str] = {}
    problems: list[Problem] = []

    def add(path: Path, name: str, folder: Path | None = None) -> None:
        blob = _read_regular(path, name, folder, problems)
        if blob is None:
            return
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(name, "file is not UTF-8 text"))
            return
        if name in files and files[name] != text:
            problems.append(Problem(name, f"two different files are named '{name}' in this bundle"))
        files[name] = text

    def add_forms_near(folder: Path) -> None:
        for sub in (folder, folder / "forms"):
            if sub.is_dir():
                for f in sorted(sub.glob("*.json")) + sorted(sub.glob("*.form")):  # .form: Camunda Forms
                    add(f, f"forms/{f.name}", folder)

    if not paths:
        raise InputError("give at least one BPMN file or folder")
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"no such file or folder: '{p}'")
        if p.is_dir():
            found = sorted(list(p.glob("*.bpmn")) + list(p.glob("*.dmn")))
            schemas = sorted(p.glob("*.json")) + sorted(p.glob("forms/*.json")) + sorted(p.glob("*.form"))
            if not found and not schemas:
                raise InputError(f"folder '{p}' has no .bpmn, .dmn or form (.json) files")
            for f in found:
                add(f, f.name, p)
            add_forms_near(p)
        else:
            if p.suffix.lower() in (".json", ".form"):
                add(p, f"forms/{p.name}")
            else:
                add(p, p.name)
                add_forms_near(p.parent)
    if problems:
        raise DefinitionError(problems)
    return Bundle(files)


def with_deployed_forms(bundle: Bundle, deployed: list[dict[str, str]]) -> Bundle:
    """The bundle plus the forms it lacks that a deployed version of one of its diagrams holds.

    Redeploying a changed diagram alone keeps its unchanged forms (as a called process not in the
    bundle comes from its deployed version); a form given in the bundle always wins. `deployed`
    holds the files of each process's newest version.
    """
    files = dict(bundle.files)
    names = set(bundle.bpmn_names())
    for version in deployed:
        if names & set(version):
            for name, text in version.items():
                if name.startswith("forms/") and name not in files:
                    files[name] = text
    return Bundle(files)


def _read_regular(path: Path, name: str, folder: Path | None, problems: list[Problem]) -> bytes | None:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or None with the problem recorded."""
    if folder is not None:
        real, inside = path.resolve(), folder.resolve()
        if real != inside and inside not in real.parents:
            problems.append(Problem(name, f"is a link to '{real}', outside the folder '{folder}'; deploy "
                                    "reads only the folder's own files: copy the file in instead"))
            return None
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        problems.append(Problem(name, f"cannot be read: {exc.strerror}"))
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            why = "is not a regular file (a folder, device or pipe); give BPMN, DMN or JSON files"
        else:
            why = f"file is {st.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} (TIGAO_MAX_FILE_BYTES)"
        problems.append(Problem(name, why))
        return None
    with os.fdopen(fd, "rb") as f:
        blob = f.read(MAX_FILE_BYTES + 1)  # a file growing meanwhile is still cut at the limit
    if len(blob) > MAX_FILE_BYTES:
        problems.append(Problem(name, f"file is larger than {MAX_FILE_BYTES:,} bytes (TIGAO_MAX_FILE_BYTES)"))
        return None
    return blob


def parse_xml(name: str, text: str) -> etree._Element:
    """Parse one XML file safely; raise DefinitionError on DOCTYPE/entities or malformed XML."""
    head = text[:65536].upper()
    if "<!DOCTYPE" in head or "<!ENTITY" in text.upper():
        line = text[: text.upper().find("<!")].count("\n") + 1
        raise DefinitionError([Problem(name, "DOCTYPE and entity declarations are not allowed in BPMN/DMN "
                                             "files (they can read local files or expand without limit); "
                                             "remove them", line=line)])
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise DefinitionError([Problem(name, f"file is larger than {MAX_FILE_BYTES:,} bytes")])
    try:
        root = etree.fromstring(text.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DefinitionError([Problem(name, f"malformed XML: {exc.msg}", line=exc.lineno)]) from exc
    return root


def content_hash(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode("utf-8") + b"\0" + files[name].encode("utf-8") + b"\0")
    return h.hexdigest()
