"""Linkage orders records by one number, the delivery above the row (`build_profiles`): a row number
or delivery id that would not fit stops the link with an error instead of ordering wrongly."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.partnership.linkage.profiles import ROW_BITS, build_profiles

pytestmark = pytest.mark.dbt_free


def _mem(delivery_id: int, row_number: int) -> duckdb.DuckDBPyConnection:
    mem = duckdb.connect()
    mem.execute("create table cur_deliveries as select 'a__b' as contract_id, ?::bigint as delivery_id, 1 as records",
                [delivery_id])
    mem.execute("create table src as select 'a__b' as contract_id, ?::bigint as delivery_id, ?::bigint as row_number, "
                "'k' as pkey", [delivery_id, row_number])
    return mem


@pytest.mark.parametrize("delivery_id,row_number", [
    (1, 1 << ROW_BITS),            # a row number past the bits it is given
    (1 << (62 - ROW_BITS), 1),     # a delivery id past the bits above them
    (1, -1),
])
def test_numbers_that_do_not_fit_stop_the_link(delivery_id, row_number):
    with pytest.raises(ValueError, match="out of the range linkage orders by"):
        build_profiles(_mem(delivery_id, row_number), "src")


def test_the_largest_that_fit_pass_the_check():
    mem = _mem((1 << (62 - ROW_BITS)) - 1, (1 << ROW_BITS) - 1)
    try:
        build_profiles(mem, "src")
    except ValueError as exc:
        pytest.fail(f"refused numbers that fit: {exc}")
    except duckdb.Error:
        pass  # past the check: the table has no identifier columns, which this test does not need
