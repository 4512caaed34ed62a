"""The Core read-path tables (mspflow.db.tables) stay true to the ORM models and the migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mspflow.db import models, tables


def test_core_tables_match_the_orm_models() -> None:
    for light in tables.ALL:
        full = models.Base.metadata.tables[light.name]
        for col in light.c:
            assert col.name in full.c, f"{light.name}.{col.name} is not a column of the model"
            assert type(col.type) is type(full.c[col.name].type), f"{light.name}.{col.name}"
            assert repr(col.type) == repr(full.c[col.name].type), f"{light.name}.{col.name}"


def test_catalog_json_imports_neither_the_orm_nor_httpx(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPFLOW_")}
    env["MSPFLOW_HOME"] = str(tmp_path)
    mspflow = str(Path(sys.executable).with_name("mspflow"))
    subprocess.run([mspflow, "db", "upgrade"], env=env, capture_output=True, check=True)
    code = ("import sys; from mspflow.cli import main; sys.argv = ['mspflow', 'catalog', '--tenant', 'x', '--json']\n"
            "try:\n    main()\nfinally:\n    sys.stderr.write('heavy=%s' % sorted(m for m in ('mspflow.db.models', "
            "'sqlalchemy.orm', 'httpx', 'httpcore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["tenant"] == "x"
    assert "heavy=[]" in out.stderr, out.stderr
