"""Keyed pseudonyms: normalisation, HMAC computed in DuckDB equals Python's, key handling."""

import hashlib
import hmac
import stat

import duckdb
import pytest

import orchestration.partnership.warehouse.pseudonymise as ps

pytestmark = pytest.mark.dbt_free

KEY = b"k" * 40


def _sql_with_pads(value, kind):
    con = duckdb.connect()
    try:
        norm = ps.normalise_sql("v", kind)
        ipad, opad = ps.hmac_pads(KEY)
        return con.execute(
            f"select {norm}, case when {norm} is null then null else {ps.hmac_sql(norm)} end from (select $v as v)",
            {"v": value, "ipad": ipad, "opad": opad}).fetchall()[0]
    finally:
        con.close()


@pytest.mark.parametrize("value, kind, expected", [
    ("  943 476 5919 ", "nhs_number", "9434765919"),
    ("943-476-5919", "nhs_number", "9434765919"),
    ("rv6 2fj", "postcode", "RV62FJ"),
    (" RV6  2FJ ", "postcode", "RV62FJ"),
    ("  O'Brien  ", "text", "o'brien"),
    ("Anne  Marie", "text", "anne marie"),
    ("Zoe\u0301", "text", "zo\u00e9"),  # decomposed accent equals the composed one
    ("   ", "text", None),
    ("", "nhs_number", None),
])
def test_values_are_normalised_before_hashing_the_same_way_in_sql_and_python(value, kind, expected):
    norm, _ = _sql_with_pads(value, kind)
    assert norm == expected
    assert ps.normalise(value, kind) == expected


def test_the_hmac_computed_in_duckdb_equals_pythons_hmac_sha256():
    for value, kind in [("9434765919", "nhs_number"), ("Élodie", "text"), ("RV6 2FJ", "postcode"), ("x" * 200, "text")]:
        norm, digest = _sql_with_pads(value, kind)
        assert digest == hmac.new(KEY, norm.encode(), hashlib.sha256).hexdigest() == ps.hmac_python(KEY, norm)


def test_spacing_and_case_do_not_change_a_pseudonym():
    a = _sql_with_pads("rv6 2fj", "postcode")[1]
    b = _sql_with_pads("RV62FJ", "postcode")[1]
    assert a == b


def test_a_different_key_or_context_gives_unlinkable_pseudonyms():
    assert ps.hmac_python(KEY, "9434765919") != ps.hmac_python(b"j" * 40, "9434765919")
    assert ps.hmac_python(KEY, "9434765919", context="falls-analysts") != ps.hmac_python(KEY, "9434765919")
    ipad, opad = ps.hmac_pads(KEY, context="falls-analysts")
    con = duckdb.connect()
    try:
        got = con.execute(f"select {ps.hmac_sql('$v')}", {"v": "9434765919", "ipad": ipad, "opad": opad}).fetchall()[0][0]
    finally:
        con.close()
    assert got == ps.hmac_python(KEY, "9434765919", context="falls-analysts")


def test_without_a_key_the_error_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv(ps.KEY_ENV, raising=False)
    monkeypatch.delenv(ps.KEY_FILE_ENV, raising=False)
    with pytest.raises(ps.PseudonymKeyError, match="PARTNERSHIP_PSEUDONYM_KEY"):
        ps.load_key()


def test_a_key_file_that_does_not_exist_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(ps.KEY_ENV, raising=False)
    monkeypatch.setenv(ps.KEY_FILE_ENV, str(tmp_path / "nope.key"))
    with pytest.raises(ps.PseudonymKeyError, match="does not exist"):
        ps.load_key()


def test_a_short_key_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv(ps.KEY_ENV, "short-secret")
    with pytest.raises(ps.PseudonymKeyError) as err:
        ps.load_key()
    assert "short-secret" not in str(err.value)


def test_a_key_is_read_from_the_environment_or_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv(ps.KEY_ENV, "e" * 40)
    assert ps.load_key() == b"e" * 40
    monkeypatch.delenv(ps.KEY_ENV)
    f = tmp_path / "key"
    f.write_text("f" * 40 + "\n")
    monkeypatch.setenv(ps.KEY_FILE_ENV, str(f))
    assert ps.load_key() == b"f" * 40


def test_the_demo_key_is_random_private_and_not_overwritten(tmp_path):
    path = ps.create_demo_key(tmp_path / "secrets" / "pseudonym.key")
    first = path.read_text()
    assert len(first.strip()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ps.create_demo_key(path)
    assert path.read_text() == first
    assert ps.create_demo_key(tmp_path / "other.key").read_text() != first


def test_a_changed_key_is_refused_by_a_warehouse_built_with_another(monkeypatch, tmp_path):
    from orchestration.partnership.ingest.night import check_key
    from orchestration.partnership.settings import Settings

    settings = Settings(tmp_path)
    monkeypatch.delenv(ps.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(ps.KEY_ENV, "a" * 40)
    check_key(settings)
    monkeypatch.setenv(ps.KEY_ENV, "b" * 40)
    with pytest.raises(ps.PseudonymKeyError, match="differs") as err:
        check_key(settings)
    assert "b" * 40 not in str(err.value) and "a" * 40 not in str(err.value)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        stored = con.execute("select value from ops.settings").fetchall()
    finally:
        con.close()
    assert stored == [(ps.fingerprint(b"a" * 40),)]  # only a fingerprint is kept, never the key


def test_a_loads_pseudonyms_hashed_once_per_distinct_value_are_each_rows_own_hmac():
    """ingest._pseudonyms hashes each distinct value once and matches rows to it by value: every row
    must still get Python's HMAC of its own normalised value (repeats, variants of one value, nulls,
    values that normalise to nothing, and every row in its place)."""
    import polars as pl

    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ingest.deliveries import _pseudonyms
    from orchestration.partnership.settings import PROJECT_ROOT

    contract = load_contracts(PROJECT_ROOT / "contracts" / "agencies")["riverside_acute__ae_attendances"]
    direct = [c.name for c in contract.columns if c.classification == "direct_identifier"]
    assert {"nhs_number", "forename"} <= set(direct)
    nhs = ["9434765919", "943 476 5919", None, "943-476-5919", "4010232137", "--", "9434765919"] * 300
    names = ["Anne  Marie", " anne marie", "Zoe\u0301", "Zo\u00e9", None, "ANNE MARIE", "Élodie"] * 300
    valid = pl.DataFrame({"_row_number": range(1, len(nhs) + 1), **{c: names for c in direct if c != "nhs_number"},
                          "nhs_number": nhs}).sample(fraction=1.0, shuffle=True, seed=7)
    con = duckdb.connect()
    try:
        out = _pseudonyms(con, contract, valid, ps.hmac_pads(KEY))
    finally:
        con.close()
    assert out.select(valid.columns).equals(valid)  # the rows as they were, in their order
    for name in direct:
        kind = ps.identifier_kind(name)
        expected = [None if ps.normalise(v, kind) is None else ps.hmac_python(KEY, ps.normalise(v, kind))
                    for v in valid.get_column(name).to_list()]
        assert out.get_column(f"{name}_pseudo").to_list() == expected, name
    assert out.get_column("nhs_number_pseudo").null_count() == 300 * 2  # missing, and "--" (no digits)


def test_the_one_key_check_records_a_first_key_only_when_asked_and_refuses_another(monkeypatch, tmp_path):
    monkeypatch.delenv(ps.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(ps.KEY_ENV, "a" * 40)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema ops; create table ops.settings (name varchar primary key, value varchar not null)")
        assert ps.checked_key(con, consequence="x") == b"a" * 40  # a release's check: nothing recorded
        assert con.execute("select count(*) from ops.settings").fetchall() == [(0,)]
        ps.checked_key(con, consequence="x", record=True)  # the first night's
        assert con.execute("select value from ops.settings").fetchall() == [(ps.fingerprint(b"a" * 40),)]
        monkeypatch.setenv(ps.KEY_ENV, "b" * 40)
        for record in (False, True):
            with pytest.raises(ps.PseudonymKeyError, match="differs .*; nothing was built here"):
                ps.checked_key(con, consequence="nothing was built here", record=record)
        assert con.execute("select value from ops.settings").fetchall() == [(ps.fingerprint(b"a" * 40),)]
