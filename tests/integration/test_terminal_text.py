"""What a delivery or a release holds reaches the terminal and e-mail as text, never as markup;
`query --protocol` takes a protocol's id and nothing else."""

from __future__ import annotations

import os

import duckdb
import pytest

import orchestration.partnership.cli.console as cli_console
from orchestration.partnership.cli import main
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.notify import compose
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.engine import Assessment

pytestmark = pytest.mark.dbt_free

CLOSING = "[/x]"
LINK = "[link=http://e.ex]x[/link]"
EMOJI = ":warning:"


@pytest.fixture
def wide(monkeypatch):
    """One line per table row, so that what is printed can be read back whole."""
    for c in (cli_console.console, cli_console.err):
        monkeypatch.setattr(c, "width", 400)


def _release(data_dir, protocol: str = "falls-board"):
    folder = data_dir / "releases" / protocol / "2026-11-28"
    folder.mkdir(parents=True)
    with duckdb.connect(str(folder / f"{protocol}.duckdb")) as con:
        con.execute(f'create table t ("{CLOSING}" varchar, v varchar)')
        con.execute("insert into t values (?, ?)", [LINK, EMOJI])
    return folder


def test_query_output_is_printed_as_text_whatever_the_values_and_column_names(tmp_path, monkeypatch, capsys, wide):
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path))
    _release(tmp_path)
    assert main(["query", "--protocol", "falls-board", f"select '{CLOSING}' as a, '{LINK}' as b"]) == 0
    out = capsys.readouterr().out
    assert CLOSING in out and LINK in out and "\x1b]8;" not in out  # no hyperlink escape sequence either
    assert main(["query", "--protocol", "falls-board", "select * from t"]) == 0
    out = capsys.readouterr().out
    assert CLOSING in out and LINK in out and EMOJI in out


def test_query_refuses_anything_but_a_protocol_id_and_lists_the_ids(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path / "data"))
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "2026-11-28").mkdir(parents=True)
    with duckdb.connect(str(elsewhere / "2026-11-28" / "elsewhere.duckdb")) as con:
        con.execute("create table secrets as select 'Ada Lovelace' as name")
    for attempt in (str(elsewhere), "../elsewhere", "falls-board/../../elsewhere"):
        assert main(["query", "--protocol", attempt, "select * from secrets"]) == 2
        captured = capsys.readouterr()
        assert "Ada" not in captured.out + captured.err
        assert "--protocol takes the id of a protocol" in captured.err
        assert "falls-board" in captured.err and "supporting-families" in captured.err


def test_query_does_not_follow_a_link_planted_as_a_release(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path))
    other = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("create table t as select 'Ada Lovelace' as name")
    folder = tmp_path / "releases" / "falls-board" / "2026-11-28"
    folder.mkdir(parents=True)
    os.symlink(other, folder / "falls-board.duckdb")
    assert main(["query", "--protocol", "falls-board", "select * from t"]) == 2
    captured = capsys.readouterr()
    assert "Ada" not in captured.out and "no published release" in captured.err


def test_check_prints_column_names_that_look_like_markup_as_they_are(tmp_path, monkeypatch, capsys, wide):
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path / "owner"))
    contract = load_contracts(PROJECT_ROOT / "contracts" / "agencies")["county_ambulance__incidents"]
    sent = tmp_path / "incidents_20261126.csv"
    sent.write_text(",".join([*contract.column_names, CLOSING, LINK]) + "\n")
    assert main(["check", str(sent), "--contract", contract.id, "--arrived-at", "2026-11-27T01:30"]) == 1
    out = capsys.readouterr().out
    assert CLOSING in out and LINK in out


def test_an_owners_notice_is_plain_text_whatever_the_file_is_called():
    contract = load_contracts(PROJECT_ROOT / "contracts" / "agencies")["county_ambulance__incidents"]
    name = "incidents_<img src=x onerror=alert(1)>_20261127.csv"
    a = Assessment(contract.id, contract.version, contract.agency, name, "0" * 64, None, None, status="rejected",
                   reason_code="file_name", reason=f"{name}: {LINK}")
    msg = compose(contract, a, 7, None, "warehouse@partnership.example")
    assert not msg.is_multipart() and msg.get_content_type() == "text/plain"
    assert name in msg["Subject"] and name in msg.get_content()


def test_check_shows_an_escape_sequence_in_a_value_escaped_never_sent_to_the_terminal(tmp_path, monkeypatch, capsys, wide):
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path / "owner"))
    contract = load_contracts(PROJECT_ROOT / "contracts" / "agencies")["county_council__school_attendance"]
    row = {"upn": "A909210610347", "forename": "Dylan", "surname": "Morgan", "date_of_birth": "2015-04-07", "sex": "M",
           "postcode": "RV6 3WQ", "address_line": "\x1b[2J5 Mariners Close\x07", "school_urn": "113036",
           "academic_year": "2025/26", "term": "AUTUMN", "census_date": "2025-10-25", "possible_sessions": "136",
           "attended_sessions": "125"}
    sent = tmp_path / "school_attendance_20260722.csv"
    sent.write_text(",".join(contract.column_names) + "\n" + ",".join(row[c] for c in contract.column_names) + "\n",
                    encoding="utf-8-sig")
    main(["check", str(sent), "--contract", contract.id, "--arrived-at", "2026-07-23T01:30"])
    out = capsys.readouterr().out
    assert "address_line:pattern" in out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out
