"""Compare the linkage output tables of two warehouses, row for row (order ignored).

    .venv/bin/python -m benchmarks.linkage_compare A/warehouse.duckdb B/warehouse.duckdb [--temp DIR]

Every table linkage writes (`linkage.*` and `identity.linkage_*`): the same columns and types,
the same row count, and `A except all B` and `B except all A` both empty (duplicates counted).
Prints one line per table and exits 1 when any differ. Used to prove that a change to
`orchestration/partnership/linkage` leaves its results identical.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import duckdb


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> set[tuple[str, str]]:
    """Its tables and views (a view is compared as its readers see it, with a table of the same name)."""
    return {(s, t) for s, t in con.execute(
        """select schema_name, name from (
               select schema_name, table_name as name, database_name from duckdb_tables()
               union all select schema_name, view_name, database_name from duckdb_views() where not internal)
           where database_name = ?
           and (schema_name = 'linkage' or (schema_name = 'identity' and name like 'linkage\\_%' escape '\\'))""",
        [db]).fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, db: str, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute("""select column_name, data_type from duckdb_columns()
                          where database_name = ? and schema_name = ? and table_name = ? order by column_index""",
                       [db, schema, table]).fetchall()


def compare(a: str, b: str, temp: str | None = None, memory_limit: str = "6GB", new_ok: bool = False) -> bool:
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute("set preserve_insertion_order = false")
    con.execute(f"set temp_directory = '{temp or tempfile.gettempdir()}'")
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    same = True
    ta, tb = _tables(con, "a"), _tables(con, "b")
    for missing, where in ((ta - tb, "B"), (tb - ta, "A")):
        for s, t in sorted(missing):
            print(f"{s}.{t}: missing in {where}")
            same &= new_ok and where == "A"
    for s, t in sorted(ta & tb):
        t0 = time.perf_counter()
        ca, cb = _columns(con, "a", s, t), _columns(con, "b", s, t)
        if ca != cb:
            print(f"{s}.{t}: columns differ: {ca} vs {cb}")
            same = False
            continue
        na = con.execute(f'select count(*) from a.{s}."{t}"').fetchall()[0][0]
        nb = con.execute(f'select count(*) from b.{s}."{t}"').fetchall()[0][0]
        only_a = con.execute(f'select count(*) from (from a.{s}."{t}" except all from b.{s}."{t}")').fetchall()[0][0]
        only_b = con.execute(f'select count(*) from (from b.{s}."{t}" except all from a.{s}."{t}")').fetchall()[0][0]
        ok = na == nb and only_a == 0 and only_b == 0
        same &= ok
        print(f"{s}.{t}: rows {na} / {nb}, only in A {only_a}, only in B {only_b}: "
              f"{'identical' if ok else 'DIFFER'} ({time.perf_counter() - t0:.1f} s)", flush=True)
    con.close()
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--temp", default=None, help="spill directory")
    parser.add_argument("--new-ok", action="store_true",
                        help="tables B has and A has not (a new table the compared views are made from) are not a difference")
    args = parser.parse_args()
    same = compare(args.a, args.b, args.temp, new_ok=args.new_ok)
    print("ALL IDENTICAL" if same else "DIFFERENCES FOUND")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
