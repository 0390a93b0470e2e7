"""`make demo`'s portal accounts: made by the domain's call into the portal's own process, one per
role, each password printed once and stored only as an Argon2 hash."""

from __future__ import annotations

import re
import sqlite3
import stat

import pytest

pytestmark = pytest.mark.dbt_free


def test_the_demo_creates_one_account_per_role_and_shows_each_password_once(tmp_path, capsys):
    from orchestration.partnership.cli.portal import create_demo_accounts
    from orchestration.partnership.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    assert create_demo_accounts(settings) == 0
    first = capsys.readouterr().out
    shown = dict(re.findall(r"^\s+(\S+)\s+(\S{16})\s+(?:Data owner|Analyst|Board member|IG lead|Operator)", first, re.M))
    database = settings.data_dir / "portal" / "portal.sqlite3"
    con = sqlite3.connect(database)
    try:
        stored = dict(con.execute("select username, password from auth_user").fetchall())
        roles = {r for (r,) in con.execute("select distinct role from portal_membership")}
    finally:
        con.close()
    assert set(shown) == set(stored) and len(stored) == 8
    assert roles == {"data_owner", "analyst", "board_member", "ig_lead", "operator"}
    for username, password in shown.items():
        assert stored[username].startswith("argon2$argon2id$") and password not in stored[username]
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert create_demo_accounts(settings) == 0
    again = capsys.readouterr().out
    assert not any(password in again for password in shown.values()) and "password not shown again" in again
