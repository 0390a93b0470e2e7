"""The dbt project's lint: sqlfluff with its dbt templater and the committed .sqlfluff.

    .venv/bin/python tests/lint_dbt.py [more `sqlfluff lint` arguments]

`make test` runs it before pytest. The dbt templater compiles the project, so it needs what
profiles.yml reads (a warehouse path in a temporary folder: nothing connects to it) and the
place seeds staged in dbt_project/seeds/place. When they are not there (a fresh checkout), the
small demo's are generated and staged the way a night stages the partnership's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    from orchestration.partnership.dbt.runner import PLACE_FILES, stage_place_seeds
    from orchestration.partnership.settings import Settings

    with tempfile.TemporaryDirectory(prefix="dbt-lint-") as tmp:
        place = ROOT / "dbt_project" / "seeds" / "place"
        if not all((place / name).is_file() for name in PLACE_FILES):
            from orchestration.partnership.demo import generate

            generate(Path(tmp) / "demo", preset="small")
            stage_place_seeds(Settings(data_dir=Path(tmp) / "demo"))
        env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(Path(tmp) / "lint.duckdb")}
        sqlfluff = Path(sys.executable).with_name("sqlfluff")
        # One process per core: past dbt's start-up the files are linted independently.
        return subprocess.run([str(sqlfluff), "lint", "dbt_project", "--processes", "0", *argv],
                              cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
