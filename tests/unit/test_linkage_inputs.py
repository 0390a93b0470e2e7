"""The address gazetteer as linkage reads it: UPRN -> postcode, both normalised."""

import duckdb
import pytest

from orchestration.partnership.linkage.inputs import address_postcodes_sql

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
    rows = dict(duckdb.sql(address_postcodes_sql(str(csv))).fetchall())
    assert rows == {"100090000001": "RV6 2FJ", "100090000002": "RV6 2FJ", "100090000004": "RV1 0AF"}
