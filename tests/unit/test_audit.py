"""The independent checker (identifier patterns, recoverable cells) and the release log's chain."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestration.partnership.releases.audit as audit
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.log as release_log
from orchestration.partnership.releases.protocols import load_protocol
from orchestration.partnership.settings import PROJECT_ROOT
from tests.conftest import TEST_KEY
from tests.oracles import attacker

pytestmark = pytest.mark.dbt_free

FALLS_BOARD = load_protocol(PROJECT_ROOT / "contracts" / "protocols" / "falls-board.yaml")


def test_nhs_numbers_are_recognised_by_their_modulus_11_check_digit():
    assert audit.nhs_check_digit_ok("9434765919")       # the NHS's published example
    assert not audit.nhs_check_digit_ok("9434765918")
    assert not audit.nhs_check_digit_ok("123456789")


def test_identifier_patterns_are_found_but_codes_and_hashes_are_not():
    found = audit.identifier_findings("t.c", ["943 476 5919", "RV5 4QU", "E01900001", "a" * 10 + "9434765919" + "b" * 44,
                                              "fall_admission", "65-69"], None, exact_names=True)
    assert any("NHS numbers" in f and f.startswith("t.c: 1 ") for f in found)
    assert any("postcodes" in f and "1 values" in f for f in found)


@pytest.mark.parametrize("key", [b"k" * 32, b"another key of sixty-five bytes, longer than one SHA-256 block!!!"])
def test_the_audits_pseudonyms_are_the_standard_librarys_hmac_of_the_recipients_derived_key(key):
    context = "release-recipient:county-falls-analysts"
    derived = hmac.new(key, context.encode(), hashlib.sha256).digest()
    pseudonym = audit.pseudonymiser(key, context)
    for value in ("P000000001", "", "Zoë O’Brien", "h" * 200, "P000000001"):
        assert pseudonym(value) == hmac.new(derived, value.encode(), hashlib.sha256).hexdigest()
    assert pseudonym("P000000001") != audit.pseudonymiser(key, "release-recipient:other")("P000000001")


class _NamesZone:
    """The part of the audit's zone the identifier check reads: full names, one made of the letters a-f."""

    full_names = {("ada", "bee"), ("john", "smith"), ("dee", "cafe")}
    names = {n for pair in full_names for n in pair}
    hex_pairs = {("ada", "bee"), ("dee", "cafe")}

    def known_nhs(self, candidates):
        return set()


def test_pseudonym_shaped_values_get_the_same_findings_as_any_other_value():
    rng = random.Random(7)
    values = []
    for i in range(400):
        v = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        if i % 3 == 0:  # plant a full name made of hex letters, digits around it
            at = rng.randrange(1, 50)
            v = (v[:at] + "1ada2bee3" + v[at + 9:])[:64]
        if i % 7 == 0:
            v = (v[:20] + "5dee0cafe9" + v[30:])[:64]
        values.append(v)
    assert all(audit.HEX_VALUE.fullmatch(v) for v in values)
    planted = sum(("1ada2bee3" in v) + ("5dee0cafe9" in v) for v in values)
    for exact in (True, False):
        fast = audit.identifier_findings("t.c", values, _NamesZone(), exact_names=exact)
        # the same values with a trailing space are not pseudonym-shaped: they take the general path
        general = audit.identifier_findings("t.c", [v + " " for v in values], _NamesZone(), exact_names=exact)
        assert fast == general == [f"t.c: {planted} names from the identity schema"]
    assert audit.identifier_findings("t.c", ["a" * 64], None, exact_names=True) == []


def test_the_columns_holding_another_recipients_pseudonyms_are_those_a_python_set_finds():
    df = pl.DataFrame({
        "ref": ["a" * 64, None, "b" * 64],
        "cat": pl.Series(["x", "c" * 64, None], dtype=pl.Categorical),
        "big": [9434765919, None, 1],
        "small": [1, 2, 3],
        "other": ["d" * 64, "e", "f"],
        "when": [date(2026, 1, 1)] * 3,
    })
    for released in ({"a" * 64, "c" * 64}, {"9434765919"}, {"z" * 64}, {"a" * 64, "d" * 64, "9434765919", "c" * 64}):
        by_python_sets = [c for c, values in audit.string_values(df, set()) if released & set(values)]
        assert audit.columns_holding(df, released) == by_python_sets
    assert audit.columns_holding(df, {"a" * 64, "c" * 64}) == ["ref", "cat"]


def test_the_names_one_audit_read_serve_the_next_only_while_no_name_changed(tmp_path):
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema identity")
        con.execute("create table identity.a (forename varchar, surname varchar)")
        con.execute("insert into identity.a values ('Ada', 'Lovelace'), ('Tom', 'Lovelace'), (null, 'Nobody')")
    with audit.Zone(db) as first, audit.Zone(db) as second:
        assert first.full_names == {("ada", "lovelace"), ("tom", "lovelace")}
        assert second.full_names is first.full_names  # read once for both audits
    for change in ("update identity.a set forename = 'Ida' where forename = 'Ada'",  # same row count
                   "update identity.a set forename = 'Tom', surname = 'Lovelace' where forename is null",
                   "delete from identity.a where forename = 'Tom'"):
        with duckdb.connect(str(db)) as con:
            con.execute(change)
            expected = {(f.casefold().strip(), s.casefold().strip())
                        for f, s in con.execute("select forename, surname from identity.a").fetchall() if f and s}
        with audit.Zone(db) as zone:
            assert zone.full_names == expected


def _ward_table(cells):
    rows = []
    for w, (f, m) in enumerate(cells):
        rows += [("q", "ward", f"E0590000{w}", "sex:F", f), ("q", "ward", f"E0590000{w}", "sex:M", m),
                 ("q", "ward", f"E0590000{w}", "persons", f + m)]
    rows += [("q", "district", "E07900001", "sex:F", sum(c[0] for c in cells)),
             ("q", "district", "E07900001", "sex:M", sum(c[1] for c in cells)),
             ("q", "district", "E07900001", "persons", sum(c[0] + c[1] for c in cells))]
    return pl.DataFrame(rows, schema=["period_start", "geography_type", "geography_code", "breakdown", "numerator"], orient="row")


MARGINS = [
    {"name": "wards", "by": ["period_start", "breakdown"], "column": "geography_type", "total": "district", "members": ["ward"]},
    {"name": "sex", "by": ["period_start", "geography_type", "geography_code"], "column": "breakdown", "total": "persons",
     "members_prefix": "sex:"},
]


def test_the_audit_finds_cells_recoverable_after_primary_suppression_only_and_none_after_secondary():
    df = _ward_table([[3, 20], [30, 25], [40, 41]])
    primary = disclosure.apply(df, ["numerator"], [], 1, 7, 5)
    assert audit.recoverable_cells(primary, "numerator", MARGINS) >= 1
    full = disclosure.apply(df, ["numerator"], [], 1, 7, 5, margins=MARGINS)
    assert audit.recoverable_cells(full, "numerator", MARGINS) == 0


@pytest.fixture
def log_db(tmp_path, monkeypatch):
    monkeypatch.setenv("PARTNERSHIP_PSEUDONYM_KEY", TEST_KEY)  # entries are signed with a key derived from it
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ops")
        for day in (1, 2, 3):
            release_log.append(con, FALLS_BOARD, date(2026, 11, day), "published", tmp_path / str(day), "ab" * 32, "")
    return path


def test_an_intact_release_log_verifies(log_db):
    with duckdb.connect(str(log_db), read_only=True) as con:
        assert release_log.verify_log(con) == (3, [])


def test_an_edited_entry_is_detected(log_db):
    with duckdb.connect(str(log_db)) as con:
        con.execute("update ops.release_log set status = 'unchanged' where seq = 2")
        n, problems = release_log.verify_log(con)
    assert any("entry 2" in p and "edited" in p for p in problems)


def test_an_entry_rehashed_after_editing_still_breaks_the_chain(log_db):
    with duckdb.connect(str(log_db)) as con:
        con.execute("update ops.release_log set reason = 'x' where seq = 2")
        row = dict(zip([r[0] for r in con.execute("describe ops.release_log").fetchall()],
                       con.execute("select * from ops.release_log where seq = 2").fetchall()[0]))
        con.execute("update ops.release_log set entry_hash = ? where seq = 2", [release_log.entry_hash(row)])
        _, problems = release_log.verify_log(con)
    assert any("entry 3" in p and "chain" in p for p in problems)


def _rows(con) -> list[dict]:
    cols = [r[0] for r in con.execute("describe ops.release_log").fetchall()]
    return [dict(zip(cols, r)) for r in con.execute("select * from ops.release_log order by seq").fetchall()]


def test_an_entry_edited_with_every_hash_after_it_recomputed_is_caught_by_its_signature(log_db):
    """What a writer without the secret can do: edit entry 2, then re-hash and re-chain every entry
    from it on, so that the hash chain alone verifies."""
    with duckdb.connect(str(log_db)) as con:
        con.execute("update ops.release_log set reason = 'nothing to see' where seq = 2")
        prev = None
        for row in _rows(con):
            if row["seq"] >= 2:
                row["prev_hash"] = prev
                row["entry_hash"] = release_log.entry_hash(row)
                con.execute("update ops.release_log set prev_hash = ?, entry_hash = ? where seq = ?",
                            [row["prev_hash"], row["entry_hash"], row["seq"]])
            prev = row["entry_hash"]
        assert release_log.verify_log(con) == (3, []), "the chain alone is fooled"
        _, problems = release_log.verify_log(con, TEST_KEY.encode())
    assert [p for p in problems if "signature" in p] and all(p.startswith(("entry 2", "entry 3")) for p in problems)
    assert any(p.startswith("entry 2: its signature does not match") for p in problems)


def test_an_entry_signed_with_another_key_or_not_signed_is_named(log_db):
    with duckdb.connect(str(log_db)) as con:
        con.execute("update ops.release_log set signature = null where seq = 1")
        _, problems = release_log.verify_log(con, TEST_KEY.encode())
        assert problems == ["entry 1: not signed"]
        _, problems = release_log.verify_log(con, b"another key of at least thirty-two bytes")
    assert len(problems) == 3


@pytest.mark.parametrize("seq", [1, 2, 3])
def test_a_removed_entry_is_detected_wherever_it_was(log_db, seq):
    with duckdb.connect(str(log_db)) as con:
        con.execute("delete from ops.release_log where seq = ?", [seq])
        _, problems = release_log.verify_log(con)
    assert any("missing" in p for p in problems)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.3, 0.6, 0.9]))
def test_recoverable_cells_counts_exactly_what_exact_elimination_recovers(seed, share):
    """Any suppression pattern, leaking or not, on tables with varied margins, missing rows and nulls:
    the audit's null-space test agrees with an attacker solving the margins exactly (fractions)."""
    rng = random.Random(seed)
    rows, margins = attacker.random_table(rng, count="numerator")
    df = pl.DataFrame(rows, schema={"indicator_id": pl.Utf8, "period_start": pl.Utf8, "geography_type": pl.Utf8,
                                    "geography_code": pl.Utf8, "breakdown": pl.Utf8, "numerator": pl.Int64})
    suppressed = [v is not None and rng.random() < share for v in df["numerator"].to_list()]
    expected = attacker.recovered(rows, "numerator", suppressed, margins)
    found = audit.recoverable_cells(df.with_columns(pl.Series("numerator_suppressed", suppressed)), "numerator", margins)
    assert found == len(expected)


def test_the_audit_imports_none_of_the_release_builders_modules():
    import ast
    import subprocess
    import sys

    code = ("import sys, orchestration.partnership.releases.audit; "
            "print(sorted(m for m in sys.modules if m.startswith('orchestration.partnership.releases')))")
    loaded = ast.literal_eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=PROJECT_ROOT).stdout)
    builder = {f"orchestration.partnership.releases.{m}"
               for m in ("scope", "build", "dictionary", "fingerprint", "publish", "disclosure", "differencing",
                         "closing", "protection", "structure", "pooling", "derived", "facts")}
    assert "orchestration.partnership.releases.audit.people" in loaded
    assert "orchestration.partnership.releases.audit.attack" in loaded, "the attacker is part of the audit"
    assert not builder & set(loaded)


def test_the_release_logic_version_hashes_every_module_that_builds_or_audits_a_release():
    import ast
    import subprocess
    import sys

    import orchestration.partnership.releases.fingerprint as fingerprint

    code = ("import sys, orchestration.partnership.releases.publish; "
            "print(sorted(m.__file__ for n, m in sys.modules.items() if n.startswith('orchestration.partnership.releases.')))")
    loaded = ast.literal_eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                             cwd=PROJECT_ROOT).stdout)
    partnership = PROJECT_ROOT / "orchestration" / "partnership"
    release_modules = {Path(f).resolve().relative_to(partnership).as_posix() for f in loaded}
    assert {"releases/publish.py", "releases/audit/people.py"} <= release_modules
    assert release_modules <= set(fingerprint.LOGIC_SOURCES)
    assert all((partnership / name).is_file() for name in fingerprint.LOGIC_SOURCES)


def test_a_release_holding_a_date_after_its_release_date_is_blocked_but_a_period_under_way_is_not():
    day = date(2026, 1, 15)
    ok = {"indicator_values": pl.DataFrame({"period_start": [date(2026, 1, 1)], "period_end": [date(2026, 1, 31)]})}
    problems: list[str] = []
    audit.check_no_later_dates(ok, day, problems)
    assert problems == []
    later = {"events": pl.DataFrame({"event_month": [date(2025, 12, 1), date(2026, 11, 1)], "n": [1, 2]})}
    audit.check_no_later_dates(later, day, problems)
    assert problems == ["events.event_month: holds dates up to 2026-11-01, after the release date 2026-01-15"]
