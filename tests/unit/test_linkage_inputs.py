"""The address gazetteer as linkage reads it: UPRN -> postcode and address line, normalised."""

import duckdb
import pytest

from orchestration.partnership.linkage.inputs import address_key_sql, address_postcodes_sql

pytestmark = pytest.mark.dbt_free


def test_uprns_map_to_their_normalised_postcode_and_ambiguous_ones_are_left_out(tmp_path):
    csv = tmp_path / "address_lookup.csv"
    csv.write_text("uprn,address_line,postcode,lsoa_code,ward_code\n"
                   "000100090000001,1 High St,rv6 2fj,E1,W1\n"       # leading zeros, lower case, spaced
                   "100090000002,2 High St,RV62FJ,E1,W1\n"           # no space
                   "100090000003,3 High St,RV1 0AF,E1,W1\n"          # listed twice with two postcodes
                   "100090000003,3 High St,RV1 0AG,E1,W1\n"
                   "100090000004,4 High St,RV1 0AF,E1,W1\n"          # listed twice, same postcode
                   "100090000004,4 High St,RV10AF,E1,W1\n"
                   "not-a-uprn,5 High St,RV1 0AF,E1,W1\n"
                   "100090000006,6 High St,,E1,W1\n")
    rows = dict(duckdb.sql(f"select uprn, postcode from ({address_postcodes_sql(str(csv))})").fetchall())
    assert rows == {"100090000001": "RV6 2FJ", "100090000002": "RV6 2FJ", "100090000004": "RV1 0AF"}


def test_address_lines_compare_whatever_their_case_punctuation_spacing_and_street_type_abbreviation():
    written = ["12 Oak Road", "12, OAK RD.", "12  oak rd", " 12 Oak Road ", "12 Oák Road", "12-Oak Road"]
    keys = {duckdb.sql(f"select {address_key_sql('?')}", params=[w]).fetchall()[0][0] for w in written}
    assert keys == {"12 oak road"}
    # Street types are written out only at the end; a different number or street stays different.
    assert duckdb.sql(f"select {address_key_sql('?')}", params=["3 St Mary Cl"]).fetchall() == [("3 st mary close",)]
    for other in ("21 Oak Road", "12 Oak Lane", "12 Oaks Road", "Flat 2, 12 Oak Road"):
        assert duckdb.sql(f"select {address_key_sql('?')}", params=[other]).fetchall()[0][0] != "12 oak road"
    assert duckdb.sql(f"select {address_key_sql('?')}", params=[" ,. "]).fetchall() == [(None,)]


def test_the_gazetteer_keeps_each_uprn_s_address_line_compared(tmp_path):
    csv = tmp_path / "address_lookup.csv"
    csv.write_text("uprn,address_line,postcode\n100090000001,1 High St,RV6 2FJ\n100090000002,\"2, Mill Lane\",RV6 2FJ\n")
    rows = duckdb.sql(f"select uprn, address_key from ({address_postcodes_sql(str(csv), True)}) order by 1").fetchall()
    assert rows == [("100090000001", "1 high street"), ("100090000002", "2 mill lane")]
