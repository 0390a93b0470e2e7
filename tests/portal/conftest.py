"""The portal's fixtures: a copy of the session's demo night (`demo_night`) that the portal may
write into (uploads land in its own landing folder), accounts for each role, and signed-in
clients. The copy holds what the portal reads: releases, reports, the ops snapshot the night's
run executor wrote; never the warehouse."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest

from orchestration.partnership.settings import Settings

# (user name, role, scope), the matrix's principals: two of each scoped role, so that every role
# is also tried on its own kind of object that belongs to someone else.
ACCOUNTS = (
    ("owner_acute", "data_owner", "riverside_acute"),
    ("owner_police", "data_owner", "county_police"),
    ("analyst_falls", "analyst", "falls-analysts"),
    ("analyst_families", "analyst", "supporting-families"),
    ("board_falls", "board_member", "falls-board"),
    ("board_safeguarding", "board_member", "safeguarding-board"),
    ("ig", "ig_lead", ""),
    ("operator", "operator", ""),
)
PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class PortalData:
    settings: Settings
    night: Settings  # the demo night's own folder (read only here)


@pytest.fixture(scope="session")
def portal_data(demo_night, tmp_path_factory) -> PortalData:
    night = demo_night[0]
    snapshot = night.data_dir / "portal" / "ops_snapshot.duckdb"
    assert snapshot.is_file(), "the night's run executor writes the portal's ops snapshot"
    root = tmp_path_factory.mktemp("portal") / "data"
    shutil.copytree(night.releases_dir, root / "releases", symlinks=True)
    for part in ("contracts", "releases"):
        shutil.copytree(night.reports_dir / part, root / "reports" / part)
    (root / "reports" / "dbt_docs").mkdir()
    shutil.copy2(night.reports_dir / "dbt_docs" / "manifest.json", root / "reports" / "dbt_docs" / "manifest.json")
    (root / "portal").mkdir(mode=0o700)
    shutil.copy2(snapshot, root / "portal" / "ops_snapshot.duckdb")
    (root / "landing").mkdir()
    return PortalData(Settings(data_dir=root), night)


@pytest.fixture(autouse=True)
def portal_environment(portal_data, monkeypatch):
    """The portal reads the copy: its data folder, for this test only."""
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(portal_data.settings.data_dir))
    yield portal_data.settings


@pytest.fixture
def private_data(portal_data, tmp_path, monkeypatch) -> Settings:
    """A copy of the portal's data folder for one test that changes what the night recorded
    (a new file: the portal keeps the shared copy's snapshot open)."""
    root = tmp_path / "data"
    (root / "portal").mkdir(parents=True)
    shutil.copy2(portal_data.settings.data_dir / "portal" / "ops_snapshot.duckdb", root / "portal" / "ops_snapshot.duckdb")
    shutil.copytree(portal_data.settings.reports_dir, root / "reports")
    shutil.copytree(portal_data.settings.releases_dir, root / "releases", symlinks=True)
    (root / "landing").mkdir()
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(root))
    return Settings(data_dir=root)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD's Argon2 hash, made once: hashing is slow by design."""
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def accounts(db, password_hash):
    from django.contrib.auth import get_user_model

    from orchestration.portal.models import Membership

    users = {}
    for username, role, scope in ACCOUNTS:
        user = get_user_model().objects.create(username=username, password=password_hash)
        Membership.objects.create(user=user, role=role, scope=scope)
        users[username] = user
    return users


@pytest.fixture
def signed_in(accounts):
    """A function: user name -> a Django test client signed in as that user."""
    from django.test import Client

    def client(username: str, **kwargs) -> Client:
        c = Client(**kwargs)
        c.force_login(accounts[username], backend="django.contrib.auth.backends.ModelBackend")
        return c

    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def ops_rows(settings: Settings, sql: str, params=()) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(settings.data_dir / "portal" / "ops_snapshot.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def release_date(settings: Settings, protocol: str) -> str:
    return sorted(p.name for p in (settings.releases_dir / protocol).iterdir())[-1]

