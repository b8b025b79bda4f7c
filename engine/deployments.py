"""Deployments: validating and deploying BPMN files, and the deployed definitions (mixed into Engine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session, defer

from storage.models import Definition, Instance

from .errors import NotFound
from .retry import retrying

if TYPE_CHECKING:
    from .core import Engine
    from .definitions import Analysis, Built


@dataclass
class DeployResult:
    key: str
    version: int
    definition_id: int
    created: bool


class DeploymentApi:
    """validate, deploy, process_keys, definitions, definition_files."""

    def validate(self: Engine, paths: list[str | Path]) -> Analysis:
        from .bundles import read_bundle, with_deployed_forms
        from .definitions import analyse

        bundle = read_bundle(paths)
        with self._tx(read=True) as s:
            directory = self._dir(s)
            latest = self._latest_definitions(s)
            bundle = with_deployed_forms(bundle, [d.files for d in latest.values()])
        return analyse(bundle, directory, set(latest))

    @retrying
    def deploy(self: Engine, paths: list[str | Path], actor: str | None = None) -> list[DeployResult]:
        from .bundles import content_hash, read_bundle, with_deployed_forms
        from .definitions import analyse, files_for

        bundle = read_bundle(paths)
        with self._tx() as s:
            self._check_actor(s, actor)
            directory = self._dir(s)
            latest = self._latest_definitions(s)
            bundle = with_deployed_forms(bundle, [d.files for d in latest.values()])
            analysis = analyse(bundle, directory, set(latest))
            now = self.clock.now()
            results = []
            deployed_files = {k: d.files for k, d in latest.items()}
            for key in sorted(analysis.processes):
                info = analysis.processes[key]
                if not info.executable:
                    continue
                files = files_for(key, analysis, bundle, deployed_files)
                digest = content_hash(files)
                current = latest.get(key)
                if current is not None and current.content_hash == digest:
                    results.append(DeployResult(key, current.version, current.id, False))
                    continue
                d = Definition(key=key, version=(current.version + 1) if current else 1, name=info.name,
                               content_hash=digest, files=files, deployed_at=now, deployed_by=actor)
                s.add(d)
                s.flush()
                results.append(DeployResult(key, d.version, d.id, True))
                from .deadlines import schedule_start_timers

                schedule_start_timers(self, s, d, info, now)
            return results

    def _latest_definitions(self: Engine, s: Session) -> dict[str, Definition]:
        """The newest version of every process key. Their files are read only if a spec must be
        built (`_built`): the cache usually has it."""
        sub = select(Definition.key, func.max(Definition.version).label("v")).group_by(Definition.key).subquery()
        rows = s.scalars(select(Definition).join(sub, and_(Definition.key == sub.c.key,
                                                           Definition.version == sub.c.v))
                         .options(defer(Definition.files)))
        return {d.key: d for d in rows}

    def _latest_definition(self: Engine, s: Session, key: str) -> Definition | None:
        """The newest version of one process key (as `_latest_definitions(s).get(key)`), one row."""
        global _LATEST
        if _LATEST is None:
            _LATEST = (select(Definition).where(Definition.key == bindparam("key"))
                       .order_by(Definition.version.desc()).limit(1).options(defer(Definition.files)))
        return s.scalar(_LATEST, {"key": key})

    def process_keys(self: Engine) -> list[str]:
        """The keys of every deployed process (cheap: no files are read)."""
        with self._tx(read=True) as s:
            return sorted(s.scalars(select(Definition.key).distinct()))

    def definitions(self: Engine) -> list[dict[str, Any]]:
        with self._tx(read=True) as s:
            counts = dict(s.execute(select(Instance.definition_id, func.count()).group_by(Instance.definition_id))
                          .all())
            return [
                {"id": d.id, "key": d.key, "version": d.version, "name": d.name, "hash": d.content_hash[:12],
                 "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "instances": counts.get(d.id, 0),
                 "files": sorted(d.files)}
                for d in s.scalars(select(Definition).order_by(Definition.key, Definition.version))
            ]

    def definition_files(self: Engine, key: str, version: int) -> dict[str, str]:
        """The files (name -> text) deployed as `key` version `version`."""
        with self._tx() as s:
            d = s.scalar(select(Definition).where(Definition.key == key, Definition.version == version))
            if d is None:
                raise NotFound(f"no version {version} of process '{key}'; 'tigao definitions' lists them")
            return dict(d.files)

    def _built(self: Engine, d: Definition) -> Built:
        cached = self.built.peek(d.id)  # a definition row never changes: its files are not needed
        return cached if cached is not None else self.built.get(d.id, d.key, d.files)


_LATEST: Any = None  # the statement of `_latest_definition`, built once
