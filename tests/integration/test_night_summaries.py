"""What `partnership run` and `partnership releases` show after the demo night, read back as data
and compared with the landing folder and the published release files themselves."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.partnership.ingest.summary import delivery_totals
from orchestration.partnership.releases.listing import latest_log_entries, published_releases
from tests.conftest import UNKNOWN_FILE

pytestmark = pytest.mark.dbt_free


def test_every_landed_file_is_counted_once_under_its_extract_or_as_unknown(demo_night):
    settings, _ = demo_night
    totals = {t.extract: t for t in delivery_totals(settings)}
    landed: dict[str, int] = {}
    for path in settings.landing_dir.rglob("*"):
        if path.is_file():
            agency, extract = path.relative_to(settings.landing_dir).parts[:2]
            landed[f"{agency}__{extract}"] = landed.get(f"{agency}__{extract}", 0) + 1
    unknown = "__".join(UNKNOWN_FILE.split("/")[:2])
    assert totals.pop("(unknown)").rejected == landed.pop(unknown) == 1
    assert {e: t.accepted + t.rejected for e, t in totals.items()} == landed
    for t in totals.values():
        assert t.rows_read >= t.rows_valid + t.rows_quarantined >= 0


def test_the_release_listing_matches_the_files_published_and_the_log(demo_night):
    settings, _ = demo_night
    releases = published_releases(settings)
    assert releases
    for r in releases:
        assert r.folder.parent.name == r.protocol and r.folder.name == r.release_date
        with duckdb.connect(str(r.folder / f"{r.protocol}.duckdb"), read_only=True) as con:
            tables = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                                "where table_schema = 'main'").fetchall()]
            assert r.rows == sum(con.execute(f'select count(*) from "{t}"').fetchall()[0][0] for t in tables)
    latest = {e.protocol: e for e in latest_log_entries(settings)}
    published = {r.protocol for r in releases}
    assert published <= set(latest)
    for pid, entry in latest.items():
        if entry.status == "published":
            assert entry.path and pid in published
        else:
            assert entry.reason
