"""The data folder is the warehouse account's alone: every file 0600, every folder 0700, whatever
umask the caller had; another account reads nothing; a night refuses a folder others can read;
a release is opened to its recipient's group only when the operator names one."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.night import register_deliveries
from orchestration.partnership.settings import PROJECT_ROOT, Settings
from orchestration.partnership.warehouse.permissions import (
    GROUP_ENV,
    DataFolderOpen,
    open_to_others,
    share_release,
)
from tests.conftest import TEST_KEY
from tests.oracles.other_account import exposed, open_modes, reads, traversable_dir

pytestmark = pytest.mark.dbt_free

INCIDENTS = "county_ambulance/incidents"


@pytest.fixture
def open_dir():
    path = traversable_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_everything_a_night_wrote_under_the_data_folder_is_the_owners_alone(demo_night):
    settings, _ = demo_night
    assert (settings.data_dir / "warehouse.duckdb").exists() and any(settings.releases_dir.rglob("*.parquet"))
    # landing/ is the agencies' drop area: what they deliver, not what the warehouse writes
    assert open_modes(settings.data_dir, skip=("landing",)) == []


def test_another_account_reads_none_of_a_nights_files_even_with_every_folder_open_to_it(demo_night, open_dir):
    settings, _ = demo_night
    data = settings.data_dir
    targets = [data / "warehouse.duckdb", next((data / "archive").rglob("*.csv")),
               next(settings.releases_dir.glob("supporting-families/*/parquet/*.parquet")),
               next((settings.reports_dir / "contracts").rglob("*.html")),
               next((settings.reports_dir / "gx" / "data_docs").rglob("*.html")),
               next((data / "dagster_home").rglob("*.db")), next((data / "logs").glob("*.log"))]
    for target in targets:
        assert not reads(exposed(target, open_dir)), target
    control = open_dir / "control.txt"
    control.write_text("readable")
    os.chmod(control, 0o644)
    assert reads(control), "the other account can read what is open to it: the refusals above are the modes'"


def _ingest_one(data_dir: Path, umask: int) -> subprocess.CompletedProcess:
    """Register and load one delivery in a fresh process started with `umask`."""
    script = textwrap.dedent(f"""
        from orchestration.partnership.contracts.model import load_contracts
        from orchestration.partnership.ingest.night import process_extract, register_deliveries
        from orchestration.partnership.settings import get_settings
        s = get_settings()
        contracts = load_contracts(s.contracts_dir)
        register_deliveries(s, contracts)
        out = process_extract(s, contracts["county_ambulance__incidents"])
        assert out.accepted == 1, out
    """)
    env = {**os.environ, "PARTNERSHIP_DATA_DIR": str(data_dir), "PARTNERSHIP_PSEUDONYM_KEY": TEST_KEY,
           "GX_ANALYTICS_ENABLED": "false"}
    env.pop("PARTNERSHIP_PSEUDONYM_KEY_FILE", None)
    return subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, umask=umask,
                          capture_output=True, text=True, timeout=300)


def test_a_delivery_loaded_by_a_process_with_an_open_umask_leaves_only_owner_only_files(demo_night, tmp_path):
    settings, _ = demo_night
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    src = sorted((settings.landing_dir / INCIDENTS).glob("incidents_2026112*.csv"))[-1]
    dest = data / "landing" / INCIDENTS / src.name
    dest.parent.mkdir(parents=True)
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o644)  # as the agency's transfer left it
    proc = _ingest_one(data, umask=0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = {p.relative_to(data).parts[0] for p in data.rglob("*")}
    assert {"warehouse.duckdb", "archive", "reports"} <= written
    assert any((data / "reports" / "gx" / "data_docs").rglob("*.html"))
    assert open_modes(data, skip=("landing",)) == []


def test_a_night_refuses_a_data_folder_other_users_can_read_and_writes_nothing(tmp_path):
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    os.chmod(data, 0o755)
    settings = Settings(data_dir=data)
    with pytest.raises(DataFolderOpen, match=r"open to other users: .*data \(0755\)") as exc:
        register_deliveries(settings, load_contracts(settings.contracts_dir))
    assert "Nothing identifiable was written" in str(exc.value)
    assert sorted(p.name for p in data.iterdir()) == ["landing"]

    os.chmod(data, 0o700)
    reports = data / "reports"
    reports.mkdir(mode=0o700)
    os.chmod(reports, 0o750)
    assert open_to_others(data) == [f"{reports} (0750)"]
    os.chmod(reports, 0o700)
    os.chmod(data, 0o711)  # others may enter, to reach a release shared with their group: not open
    assert open_to_others(data) == []


def _release_folder(data: Path) -> Path:
    folder = data / "releases" / "falls-analysts" / "2026-11-28"
    (folder / "parquet").mkdir(parents=True)
    (folder / "parquet" / "falls.parquet").write_bytes(b"PAR1 rows PAR1")
    (folder / "manifest.json").write_text("{}\n")
    return folder


def test_a_release_is_readable_by_its_recipients_group_only_when_the_operator_names_one(open_dir, monkeypatch):
    data = open_dir / "data"
    data.mkdir()
    os.chmod(data, 0o711)
    folder = _release_folder(data)
    os.chmod(data / "releases", 0o711)  # the operator's step: the group may pass through, not list
    monkeypatch.delenv(GROUP_ENV, raising=False)
    assert share_release(folder, "falls-analysts") is None
    assert not reads(folder / "parquet" / "falls.parquet")
    assert open_modes(folder) == []

    monkeypatch.setenv(GROUP_ENV, "falls-analysts=nogroup")
    assert share_release(folder, "falls-analysts") == "nogroup"
    parquet = folder / "parquet" / "falls.parquet"
    assert stat.S_IMODE(parquet.stat().st_mode) == 0o640 and parquet.stat().st_gid == 65534
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert reads(parquet, group="nogroup")
    assert not reads(parquet, group="root")  # the same account outside the group: nothing
    assert open_to_others(data) == []  # a configured group's folder is not "open"

    monkeypatch.setenv(GROUP_ENV, "supporting-families=nogroup")  # the group moved to another protocol
    share_release(folder, "falls-analysts")
    assert not reads(parquet, group="nogroup")
    assert open_to_others(data) == [] and open_modes(folder) == []


def test_the_demo_makes_a_checkouts_data_folder_private_and_files_of_the_checkout_are_not_judged(tmp_path, capsys):
    from orchestration.partnership.cli.night import _demo_folder

    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text("what the data folder holds\n")
    os.chmod(data, 0o755)  # as git leaves data/ in a checkout
    os.chmod(data / "README.md", 0o644)
    assert open_to_others(data) == [f"{data} (0755)"]
    _demo_folder(Settings(data_dir=data))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700 and open_to_others(data) == []
    assert "made readable by you alone" in " ".join(capsys.readouterr().out.split())
