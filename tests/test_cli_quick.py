"""A quick command line: the heavy modules are imported only by the commands that need them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("SpiffWorkflow", "lxml", "jsonschema", "RestrictedPython", "sqlalchemy")


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_import_cli__loads_none_of_the_heavy_modules() -> None:
    assert not loaded_after("import cli") & set(HEAVY)


def test_help__runs_without_the_engine() -> None:
    code = ("import cli\ntry:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass")
    assert not loaded_after(code) & set(HEAVY)


def test_task_list__reads_projections_without_spiffworkflow(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    subprocess.run([sys.executable, "-m", "cli", "--db", db, "init"], cwd=ROOT, check=True, capture_output=True)
    code = (f"import cli\ntry:\n    cli.main(['--db', {db!r}, 'tasks', '--all'], standalone_mode=False)\n"
            "except SystemExit:\n    pass")
    loaded = loaded_after(code)
    assert "sqlalchemy" in loaded  # it did read the database
    assert not loaded & {"SpiffWorkflow", "lxml", "jsonschema", "RestrictedPython"}
