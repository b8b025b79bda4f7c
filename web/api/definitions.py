"""Process definitions and deployments (multipart: BPMN, DMN, JSON forms, or one zip); the directory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse

from engine.errors import InputError, NotFound

from ..auth import Admin, Reader
from ..deps import EngineDep
from ..problems import responses
from ..uploads import MAX_FILE_BYTES, collect, write_bundle
from .common import MAX_ID, Cursor, Limit, check_text, decode_cursor, jsonable, page

router = APIRouter(tags=["definitions"], responses=responses(400, 401, 403))
Key = Annotated[str, PathParam(min_length=1, max_length=200, description="A process id (the BPMN process key).")]
Version = Annotated[int, PathParam(ge=1, le=MAX_ID)]
MEDIA = {".bpmn": "application/xml", ".dmn": "application/xml", ".json": "application/json"}


def _versions(engine: Any, key: str) -> list[dict[str, Any]]:
    check_text(key, "key")
    rows = [d for d in engine.definitions() if d["key"] == key]
    if not rows:
        raise NotFound(f"no process '{key}' is deployed; GET /api/v1/definitions lists what is")
    return rows


@router.get("/definitions")
def list_definitions(engine: EngineDep, who: Reader, limit: Limit = 50, cursor: Cursor = None) -> dict[str, Any]:
    """Deployed processes: the latest version of each key, with how many versions there are."""
    offset = decode_cursor(cursor)
    latest: dict[str, dict[str, Any]] = {}
    for d in engine.definitions():  # ordered by key, version
        latest[d["key"]] = {**d, "versions": d["version"]}
    return page(list(latest.values()), offset, limit)


@router.get("/definitions/{key}", responses=responses(404))
def get_definition(key: Key, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """Every version of one process, oldest first."""
    return {"key": key, "versions": jsonable(_versions(engine, key))}


@router.get("/definitions/{key}/{version}/files/{name:path}", response_class=PlainTextResponse,
            responses=responses(404))
def get_definition_file(key: Key, version: Version, name: str, engine: EngineDep, who: Reader) -> PlainTextResponse:
    """One file of a deployed version, as deployed (BPMN/DMN XML, or a form's JSON Schema)."""
    check_text(key, "key")
    check_text(name, "name")
    files = engine.definition_files(key, version)
    if name not in files:
        raise NotFound(f"version {version} of '{key}' has no file '{name}'; it has: {', '.join(sorted(files))}")
    media = MEDIA.get(Path(name).suffix.lower(), "text/plain")
    return PlainTextResponse(files[name], media_type=f"{media}; charset=utf-8")


def _read(upload: UploadFile) -> tuple[str, bytes]:
    data = upload.file.read(MAX_FILE_BYTES * 10 + 1)
    return upload.filename or "", data


@router.post("/deployments", status_code=201, responses=responses(413, 415, 422))
def deploy(engine: EngineDep, who: Admin,
           files: Annotated[list[UploadFile], File(description="BPMN, DMN and JSON form files, or one zip.")]
           ) -> dict[str, Any]:
    """Validate and deploy; 422 with every problem (file, line, element) and nothing stored."""
    parts = [_read(f) for f in files]
    for name, _ in parts:
        if not name:
            raise InputError("every uploaded part needs a file name (e.g. complaint.bpmn)")
    bundle = collect(parts)
    tmp = write_bundle(bundle)
    try:
        results = engine.deploy([tmp.name], actor=who.user)
    finally:
        tmp.cleanup()
    return {"deployed": [{"key": r.key, "version": r.version, "definition_id": r.definition_id,
                          "created": r.created} for r in results],
            "changed": any(r.created for r in results), "files": sorted(bundle)}


@router.post("/directory", tags=["directory"], responses=responses(413, 415))
def load_directory(engine: EngineDep, who: Admin,
                   file: Annotated[UploadFile, File(description="The directory as TOML (users, departments, "
                                                                "roles).")]) -> dict[str, Any]:
    """Replace the directory (administrators only); the previous versions stay on record."""
    data = file.file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"the directory file is larger than {MAX_FILE_BYTES:,} bytes")
    with tempfile.TemporaryDirectory(prefix="tigao-dir-") as d:
        path = Path(d) / "directory.toml"
        path.write_bytes(data)
        try:
            return engine.load_directory(path)
        except InputError as exc:  # name the upload, not the temporary file
            raise InputError(exc.message.replace(str(path), file.filename or "directory.toml")) from exc


@router.get("/directory", tags=["directory"])
def show_directory(engine: EngineDep, who: Reader) -> dict[str, Any]:
    """The directory: users with their department and roles, departments, roles."""
    d = engine.directory()
    return {"users": [{"id": p.id, "name": p.name, "department": p.department, "roles": list(p.roles)}
                      for p in d.users.values()],
            "departments": [{"id": x.id, "name": x.name, "head": x.head, "parent": x.parent}
                            for x in d.departments.values()],
            "roles": [{"id": k, "name": v} for k, v in d.roles.items()]}
