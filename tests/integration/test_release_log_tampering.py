"""An attacker who can write the data folder but does not hold the secret: every rewrite of the
release log or of a published folder is named by `partnership audit verify`, and a recipient's
copy is checked with the warehouse's public key alone."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date

import duckdb
import polars as pl
import pytest

import orchestration.partnership.cli.console as cli_console
import orchestration.partnership.releases.log as release_log
import orchestration.partnership.releases.publish as rel
from orchestration.partnership.cli import main
from orchestration.partnership.releases.protocols import load_protocol
from tests.integration.test_release_engine import DAY, FALLS_BOARD, warehouse  # noqa: F401 - the fixture

pytestmark = pytest.mark.dbt_free


@pytest.fixture
def published(warehouse, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    """Two releases of falls-board (the second from a changed mart), the CLI pointed at their folder
    and printing one line per message."""
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path))
    for c in (cli_console.console, cli_console.err):
        monkeypatch.setattr(c, "width", 1000)
    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_indicator_values set numerator = 13 where geography_code = 'E05900002' and period_type = 'quarter'")
        con.execute("update marts.fct_indicator_values set numerator = 16 where geography_type = 'district' and period_type = 'quarter'")
        con.execute("""insert into marts.fct_indicator_values values ('FALLS-01', 'quarter', date '2026-04-01',
                       date '2026-06-30', 'district', 'E07900001', 'Riverside', 'persons', 40, 1852, 2100.0, 1500.0, 2800.0,
                       'per 100000')""")  # a new quarter: a figure the board does not hold yet
    second = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29))
    assert (first.status, second.status) == ("published", "published")
    return warehouse, first.path, second.path


def _verify(capsys) -> tuple[int, str]:
    code = main(["audit", "verify"])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def _rows(con) -> list[dict]:
    return release_log.entries(con)


def test_an_untouched_log_and_folders_verify_and_each_manifest_is_anchored_to_the_entry_before_it(published, capsys):
    wh, first, second = published
    code, out = _verify(capsys)
    assert code == 0, out
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = _rows(con)
    anchors = [json.loads((f / "manifest.json").read_text())["anchor"] for f in (first, second)]
    assert anchors[0] == {"release_log_seq": 0, "release_log_head": release_log.GENESIS}
    assert anchors[1] == {"release_log_seq": 1, "release_log_head": rows[0]["entry_hash"]}
    assert rows[1]["manifest_sha256"] == hashlib.sha256((second / "manifest.json").read_bytes()).hexdigest()
    assert f"Head: entry 2, {rows[1]['entry_hash']}" in out


def test_an_entry_edited_and_every_hash_recomputed_is_named(published, capsys):
    wh, _, _ = published
    with duckdb.connect(str(wh)) as con:
        rows = _rows(con)
        rows[0]["reason"] = "a reason written later"
        prev = release_log.GENESIS
        for r in rows:  # the whole chain rebuilt, as anyone able to write the warehouse can
            r["prev_hash"] = prev
            r["entry_hash"] = prev = release_log.entry_hash(r)
            con.execute("update ops.release_log set reason = ?, prev_hash = ?, entry_hash = ? where seq = ?",
                        [r["reason"], r["prev_hash"], r["entry_hash"], r["seq"]])
    code, out = _verify(capsys)
    assert code == 1
    assert "entry 1: its signature does not match its content" in out
    assert "anchored to release log head" in out, "the second manifest names the head the rewrite replaced"


def test_a_removed_last_entry_with_its_sequence_recreated_is_named_by_the_folder_it_published(published, capsys):
    wh, _, second = published
    with duckdb.connect(str(wh)) as con:
        con.execute("delete from ops.release_log where seq = 2")
        con.execute("delete from ops.release_inputs where seq = 2")
        con.execute("drop sequence ops.release_log_seq")
        con.execute("create sequence ops.release_log_seq start 2")
        assert release_log.verify_log(con)[1] == [], "the chain and the sequence alone are fooled"
    code, out = _verify(capsys)
    assert code == 1 and f"{second}: a release folder no log entry names (its entry was removed)" in out


def test_an_edited_parquet_file_is_named_and_so_is_a_manifest_rewritten_to_match_it(published, capsys):
    _, _, second = published
    pq = second / "parquet" / "indicator_values.parquet"
    pl.read_parquet(pq).with_columns(numerator=pl.lit(999, dtype=pl.Int64)).write_parquet(pq)
    code, out = _verify(capsys)
    assert code == 1 and f"{pq}: differs from the file published" in out
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["files"]["parquet/indicator_values.parquet"] = hashlib.sha256(pq.read_bytes()).hexdigest()
    (second / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    code, out = _verify(capsys)
    assert code == 1 and "not the manifest entry 2 published" in out


def test_a_recipient_checks_its_copy_with_the_public_key_alone(published, tmp_path, capsys, monkeypatch):
    _, _, second = published
    assert main(["audit", "public-key"]) == 0
    public = capsys.readouterr().out.strip()
    copy = tmp_path / "recipient" / second.name
    shutil.copytree(second, copy)
    monkeypatch.delenv("PARTNERSHIP_PSEUDONYM_KEY")  # the recipient holds no secret
    assert main(["audit", "verify-release", str(copy), "--public-key", public]) == 0
    assert "signed by the warehouse's key" in capsys.readouterr().out
    pq = copy / "parquet" / "indicator_values.parquet"
    pq.write_bytes(pq.read_bytes().replace(b"PAR1", b"PAR1", 1) + b"\0")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["parquet/indicator_values.parquet"] = hashlib.sha256(pq.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert main(["audit", "verify-release", str(copy)]) == 0, "without the key a consistent forgery is not caught"
    assert "signature not checked" in " ".join(capsys.readouterr().out.split())
    assert main(["audit", "verify-release", str(copy), "--public-key", public]) == 1
    assert "signature does not verify" in " ".join(capsys.readouterr().err.split())
