"""Household quality against the demo generator's truth, at dates.

A household is the people living at one address at a date, so households are compared date
by date: on each quarter's last day of the two years before the demo's as-of date, two people
are a true pair when the generator has both living at one UPRN that day
(`demo_truth/residence.parquet`), a predicted pair when the warehouse puts both in one
household that day (`linkage.household_members`; a warehouse without it: each person's one
household in `linkage.persons`). Precision and recall are over the pairs of every date.

Who is compared (the targets): the true people with at least one delivered record that carries a
UPRN or an address line (an address-bearing record), and everyone the warehouse puts in a household with someone
else on one of the dates (so a person joined on a postcode is judged too), each through the
persons linkage made of their records (a true person split into two persons is in the
households of both). A person put in a household on a day the truth has them dead, unborn or
away counts against precision. `everyone`: the same over every person with a record, for
information (people known only by postcode are mostly in no household).
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb

from orchestration.partnership.linkage.state import STORED_RECORDS
from orchestration.partnership.settings import Settings

PRECISION_TARGET = 0.97
RECALL_TARGET = 0.90
QUARTERS = 8

_PAIRS = "coalesce(sum(n * (n - 1) / 2), 0)::hugeint"


def evaluation_dates(as_of: date, quarters: int = QUARTERS) -> list[date]:
    """The last day of each of the `quarters` quarters ended before `as_of`."""
    q_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    out = []
    for _ in range(quarters):
        end = q_start - timedelta(days=1)
        out.append(end)
        q_start = date(end.year, 3 * ((end.month - 1) // 3) + 1, 1)
    return sorted(out)


def predicted_members_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Household membership as the warehouse states it: person, household, first and last day."""
    has = con.execute("""select count(*) from duckdb_tables()
                         where database_name = 'wh' and schema_name = 'linkage' and table_name = 'household_members'""").fetchall()[0][0]
    if has:
        return "select person_id, household_id, valid_from, valid_to from wh.linkage.household_members"
    return ("select person_id, household_id, cast(null as date) as valid_from, cast(null as date) as valid_to "
            "from wh.linkage.persons")


def evaluate_households(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict | None:
    """Pairwise household precision and recall by date; `con` has the warehouse attached as `wh`
    and table `labelled` (pred, truth: each record's predicted and true person)."""
    truth = settings.truth_dir
    if not (truth / "residence.parquet").exists() or not (truth / "manifest.json").exists():
        return None
    as_of = date.fromisoformat(json.loads((truth / "manifest.json").read_text())["as_of"])
    dates = evaluation_dates(as_of)
    con.execute("create or replace temp table eval_dates as select unnest(?::date[]) as d", [dates])
    con.execute(f"""create or replace temp table hq_members as
        select distinct d.d, m.household_id, m.person_id as pred
        from ({predicted_members_sql(con)}) m
        join eval_dates d on (m.valid_from is null or m.valid_from <= d.d) and (m.valid_to is null or d.d <= m.valid_to)""")
    con.execute("""create or replace temp table hq_shared as
        select pred from hq_members where (d, household_id) in (
            select (d, household_id) from hq_members group by d, household_id having count(*) > 1)""")
    con.execute(f"""create or replace temp table hq_address_people as
        select distinct l2.truth from labelled l2 join ({_address_records_sql(con)}) r
          on r.contract_id = l2.contract_id and r.delivery_id = l2.delivery_id and r.row_number = l2.row_number""")
    address = _pairs(con, settings, """select distinct pred, truth from labelled
        where truth in (select truth from hq_address_people) or pred in (select pred from hq_shared)""")
    everyone = _pairs(con, settings, "select distinct pred, truth from labelled")
    return {"dates": [d.isoformat() for d in dates], **address, "everyone": everyone,
            "targets": {"precision": PRECISION_TARGET, "recall": RECALL_TARGET}}


def _address_records_sql(con: duckdb.DuckDBPyConnection) -> str:
    """(contract_id, delivery_id, row_number) of every record delivered with a UPRN or an address line."""
    parts = [f"select contract_id, delivery_id, row_number from {STORED_RECORDS} where uprn is not null"]
    for (table,) in con.execute("""select table_name from duckdb_columns()
                                   where database_name = 'wh' and schema_name = 'identity' and column_name = 'address_line'
                                   order by 1""").fetchall():
        parts.append(f"""select '{table}', _delivery_id, _row_number from wh.identity."{table}"
                         where nullif(trim(address_line), '') is not null""")
    return " union all ".join(parts)


def _pairs(con: duckdb.DuckDBPyConnection, settings: Settings, people_sql: str) -> dict:
    """Pairs of the people `people_sql` selects (pred, truth) over the evaluation dates."""
    con.execute(f"create or replace temp table hq_people as {people_sql}")
    con.execute("""create or replace temp table hq_pred as
        select distinct m.d, m.household_id, p.truth from hq_people p join hq_members m using (pred)""")
    con.execute(f"""create or replace temp table hq_true as
        select distinct d.d, r.uprn, r.person_id as truth
        from read_parquet('{settings.truth_dir / "residence.parquet"}') r join eval_dates d
          on (r.valid_from is null or r.valid_from <= d.d) and (r.valid_to is null or d.d <= r.valid_to)
        where r.uprn is not null and r.person_id in (select truth from hq_people)""")

    def q(sql: str) -> int:
        return int(con.execute(sql).fetchall()[0][0] or 0)

    tp = q(f"""select {_PAIRS} from (select count(distinct p.truth) n from hq_pred p join hq_true t using (d, truth)
                                     group by p.d, p.household_id, t.uprn)""")
    predicted = q(f"select {_PAIRS} from (select count(distinct truth) n from hq_pred group by d, household_id)")
    actual = q(f"select {_PAIRS} from (select count(distinct truth) n from hq_true group by d, uprn)")
    return {"people": q("select count(distinct truth) from hq_people"), "true_positive_pairs": tp,
            "predicted_pairs": predicted, "true_pairs": actual,
            "precision": tp / predicted if predicted else None, "recall": tp / actual if actual else None}
