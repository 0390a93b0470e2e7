"""An independent computation of the Supporting Families cohort (SF-01) from the demo's truth.

Written from the indicator definitions in docs/indicators.md, not from the product's SQL: the
true people (`demo_truth/records.parquet` names the person of every delivered row) and the
true households (`demo_truth/residence.parquet`: the people living at one UPRN on a day) take
the place of linkage; the evidence (dates, occurrence types and roles, outcomes, sessions) is
read from the accepted rows (`valid`), as the product reads it.

SF-01: a family is a household with a member under 18 at the quarter's end; it meets the
criteria when its members at the quarter's end have evidence of at least `min_criteria` of:
crime/ASB (an offender in an ASB occurrence), school attendance below 90% (a pupil's attended
over possible sessions in the terms ending in the window; terms dated 31 December, 31 March,
31 July; the latest attendance snapshot), domestic abuse (any role in a DOMESTIC_ABUSE
occurrence), a children's social care referral, a homelessness approach, an adult social care
referral assessed as having needs — dated in the `window_months` months to the quarter's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

CRITERIA = ("crime_asb", "school_attendance", "domestic_abuse", "child_in_need", "homelessness", "adult_social_care")


@dataclass
class Family:
    quarter: date  # first day
    uprn: str
    ward_code: str | None
    members: frozenset[str]  # true person ids
    criteria: frozenset[str]


def _add_months(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, d.day)


def _quarter_end(start: date) -> date:
    nxt = _add_months(start, 3)
    return date.fromordinal(nxt.toordinal() - 1)


# A term's last day from its academic year and name (terms dated 31 December, 31 March, 31 July).
_TERM_END = """case upper(v.term)
    when 'AUTUMN' then make_date(cast(left(v.academic_year, 4) as integer), 12, 31)
    when 'SPRING' then make_date(cast(left(v.academic_year, 4) as integer) + 1, 3, 31)
    when 'SUMMER' then make_date(cast(left(v.academic_year, 4) as integer) + 1, 7, 31) end"""


def _true_records(con, warehouse: Path, truth_dir: Path) -> None:
    """Attach the warehouse as `wh` and make `rec`: every delivered row's true person, by delivery and row."""
    con.execute(f"attach '{warehouse}' as wh (read_only)")
    con.execute(f"""create table rec as
        select d.agency || '__' || d.extract as contract, d.delivery_id, t.row_number, t.person_id as truth
        from wh.ops.deliveries d join read_parquet('{truth_dir / "records.parquet"}') t
          on t.agency = d.agency and t.extract = d.extract and t.file_name = d.file_name""")


def true_families(warehouse: Path, truth_dir: Path, quarters: list[date], window_months: int = 6,
                  min_criteria: int = 2) -> list[Family]:
    """The families meeting the criteria in each quarter (given by its first day)."""
    con = duckdb.connect()
    try:
        _true_records(con, warehouse, truth_dir)

        def rows(table: str, cols: str, where: str = "true") -> str:
            return f"""select r.truth, {cols} from wh.valid."{table}" v
                       join rec r on r.delivery_id = v._delivery_id and r.row_number = v._row_number where {where}"""

        con.execute(f"""create table evidence as
            {rows('county_police__incidents', "cast(v.occurrence_datetime as date) as day, 'crime_asb' as criterion",
                  "v.occurrence_type = 'ASB' and v.person_role = 'OFFENDER'")}
            union all
            {rows('county_police__incidents', "cast(v.occurrence_datetime as date), 'domestic_abuse'",
                  "v.occurrence_type = 'DOMESTIC_ABUSE'")}
            union all
            {rows('county_council__children_social_care_referrals', "cast(v.referral_datetime as date), 'child_in_need'")}
            union all
            {rows('riverside_council__homelessness_cases', "cast(v.approach_date as date), 'homelessness'")}
            union all
            {rows('county_council__adult_social_care_referrals', "cast(v.referral_datetime as date), 'adult_social_care'",
                  "v.outcome = 'ASSESSMENT'")}""")
        latest_attendance = con.execute("""select max(_delivery_id) from wh.valid.county_council__school_attendance""").fetchall()[0][0]
        con.execute(f"""create table attendance as
            {rows('county_council__school_attendance', f'''
                {_TERM_END} as term_end, v.attended_sessions as attended, v.possible_sessions as possible''',
                  f"v._delivery_id = {int(latest_attendance or -1)}")}""")
        families: list[Family] = []
        for start in quarters:
            end = _quarter_end(start)
            window = _add_months(date.fromordinal(end.toordinal() + 1), -window_months)
            params = {"s": window, "e": end}
            con.execute(f"""create or replace table members as
                select distinct r.uprn, r.ward_code, r.person_id as truth
                from read_parquet('{truth_dir / "residence.parquet"}') r
                where r.uprn is not null and (r.valid_from is null or r.valid_from <= $e)
                  and (r.valid_to is null or $e <= r.valid_to)""", {"e": end})
            got = con.execute(f"""
                with found as (
                    select truth, criterion from evidence where day between $s and $e
                    union all
                    select truth, 'school_attendance' from attendance where term_end between $s and $e
                    group by truth having sum(attended) < 0.9 * sum(possible)),
                children as (
                    select distinct m.uprn from members m join read_parquet('{truth_dir / "people.parquet"}') p
                      on p.person_id = m.truth
                    where p.date_of_birth <= $e and date_sub('year', p.date_of_birth, $e) < 18)
                select m.uprn, any_value(m.ward_code), list(distinct m.truth), list(distinct f.criterion)
                from members m left join found f using (truth)
                where m.uprn in (select uprn from children)
                group by m.uprn
                having count(distinct f.criterion) >= {int(min_criteria)}""", params).fetchall()
            for uprn, ward, people, criteria in got:
                families.append(Family(start, uprn, ward, frozenset(people), frozenset(c for c in criteria if c)))
        return families
    finally:
        con.close()


def people_with_records(warehouse: Path, truth_dir: Path) -> tuple[set[str], set[str]]:
    """The true people with at least one accepted record, and those with at least one accepted record
    carrying an address (a UPRN or an address line, as delivered: `identity.<contract>`)."""
    con = duckdb.connect()
    try:
        _true_records(con, warehouse, truth_dir)
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables() where database_name = 'wh' "
                                               "and schema_name = 'valid'").fetchall()}
        parts, addressed = [], []
        for (table,) in con.execute("select table_name from duckdb_tables() where database_name = 'wh' "
                                    "and schema_name = 'identity' order by 1").fetchall():
            if table not in tables or table == "nhs_optout__opt_outs":  # a list of NHS numbers, not a person's record
                continue
            cols = {c for (c,) in con.execute("select column_name from duckdb_columns() where database_name = 'wh' "
                                               "and schema_name = 'identity' and table_name = ?", [table]).fetchall()}
            parts.append(f"select '{table}' as contract, _delivery_id, _row_number from wh.valid.\"{table}\"")
            blank = [f"nullif(trim({c}), '') is not null" for c in ("uprn", "address_line") if c in cols]
            if blank:
                addressed.append(f"select '{table}' as contract, _delivery_id, _row_number from wh.identity.\"{table}\" "
                                 f"where {' or '.join(blank)}")

        def people(rows: list[str]) -> set[str]:
            if not rows:
                return set()
            return {p for (p,) in con.execute(f"""select distinct r.truth from rec r join ({' union all '.join(rows)}) v
                on v.contract = r.contract and v._delivery_id = r.delivery_id and v._row_number = r.row_number""").fetchall()}

        return people(parts), people(addressed)
    finally:
        con.close()


@dataclass
class CohortComparison:
    families_named: int
    families_right: int
    families_true: int
    families_found: int
    members_named: int
    members_right: int
    members_true: int
    members_found: int
    # the same over the true members with at least one record / one record carrying an address
    members_true_recorded: int = 0
    members_found_recorded: int = 0
    members_true_addressed: int = 0
    members_found_addressed: int = 0

    @property
    def family_precision(self) -> float:
        return self.families_right / self.families_named if self.families_named else 1.0

    @property
    def family_recall(self) -> float:
        return self.families_found / self.families_true if self.families_true else 1.0

    @property
    def member_precision(self) -> float:
        return self.members_right / self.members_named if self.members_named else 1.0

    @property
    def member_recall(self) -> float:
        return self.members_found / self.members_true if self.members_true else 1.0

    @property
    def member_recall_recorded(self) -> float:
        return self.members_found_recorded / self.members_true_recorded if self.members_true_recorded else 1.0

    @property
    def member_recall_addressed(self) -> float:
        return self.members_found_addressed / self.members_true_addressed if self.members_true_addressed else 1.0

    def __str__(self) -> str:
        return (f"families: {self.families_named} named, {self.families_right} right "
                f"(precision {100 * self.family_precision:.2f}%), {self.families_found} of {self.families_true} true "
                f"found (recall {100 * self.family_recall:.2f}%); members: {self.members_named} named, "
                f"{self.members_right} right (precision {100 * self.member_precision:.2f}%), "
                f"{self.members_found} of {self.members_true} found (recall {100 * self.member_recall:.2f}%); "
                f"of those with a record {self.members_found_recorded} of {self.members_true_recorded} "
                f"({100 * self.member_recall_recorded:.2f}%), with an address-bearing record "
                f"{self.members_found_addressed} of {self.members_true_addressed} ({100 * self.member_recall_addressed:.2f}%)")


def compare(named: dict[tuple[date, str], set[str]], truth: list[Family], recorded: set[str] | None = None,
            addressed: set[str] | None = None) -> CohortComparison:
    """`named`: {(quarter, household): the true people of its named members}. A named family is
    right when every member belongs to one true family of that quarter; a named member is right
    when they belong to the true family the most of their family's members belong to. Member
    recall is also given over the true members in `recorded` and in `addressed`
    (`people_with_records`): the warehouse can know only people the partnership holds a record of."""
    by_person = {(f.quarter, p): f for f in truth for p in f.members}
    fam_named = fam_right = mem_named = mem_right = 0
    found_members: set[tuple[date, str]] = set()
    found_families: set[tuple[date, str]] = set()
    for (quarter, _), people in named.items():
        fam_named += 1
        mem_named += len(people)
        owners = [by_person.get((quarter, p)) for p in people]
        counts: dict[str, int] = {}
        for o in owners:
            if o is not None:
                counts[o.uprn] = counts.get(o.uprn, 0) + 1
        if not counts:
            continue
        best = max(counts, key=lambda u: (counts[u], u))
        mem_right += counts[best]
        if counts[best] == len(people):
            fam_right += 1
        found_families.add((quarter, best))
        found_members.update((quarter, p) for p, o in zip(people, owners) if o is not None and o.uprn == best)
    true_members = [(f.quarter, p) for f in truth for p in f.members]
    recorded, addressed = recorded or set(), addressed or set()
    return CohortComparison(fam_named, fam_right, len(truth), len(found_families & {(f.quarter, f.uprn) for f in truth}),
                            mem_named, mem_right, len(true_members), len(found_members),
                            sum(1 for _, p in true_members if p in recorded),
                            sum(1 for _, p in found_members if p in recorded),
                            sum(1 for _, p in true_members if p in addressed),
                            sum(1 for _, p in found_members if p in addressed))


def sustained_improvement(warehouse: Path, truth_dir: Path, families: list[Family],
                          outcome_quarters: list[date]) -> dict[date, tuple[int, int]]:
    """SF-02 from the truth, {outcome quarter (first day): (numerator, denominator)}: of the true
    families meeting the criteria in the quarter twelve months earlier (`families`, from
    `true_families`), those with no police occurrence involving any member they had then (any
    role) in the six months to the outcome quarter's end, and every pupil among those members
    attending at least 90% of possible sessions in the last term ended by then."""
    con = duckdb.connect()
    try:
        _true_records(con, warehouse, truth_dir)
        con.execute("""create table police as
            select r.truth, cast(v.occurrence_datetime as date) as day from wh.valid.county_police__incidents v
            join rec r on r.delivery_id = v._delivery_id and r.row_number = v._row_number""")
        latest = con.execute("select max(_delivery_id) from wh.valid.county_council__school_attendance").fetchall()[0][0]
        con.execute(f"""create table attendance as
            select r.truth, {_TERM_END} as term_end, v.attended_sessions as attended, v.possible_sessions as possible
            from wh.valid.county_council__school_attendance v
            join rec r on r.delivery_id = v._delivery_id and r.row_number = v._row_number
            where v._delivery_id = {int(latest or -1)}""")
        out = {}
        for start in outcome_quarters:
            end = _quarter_end(start)
            identified = _add_months(start, -12)
            window = _add_months(date.fromordinal(end.toordinal() + 1), -6)
            last_term = con.execute("select max(term_end) from attendance where term_end <= ?", [end]).fetchall()[0][0]
            involved = {p for (p,) in con.execute("select distinct truth from police where day between ? and ?",
                                                   [window, end]).fetchall()}
            low = {p for (p,) in con.execute("""select truth from attendance where term_end = ? group by truth
                                                having sum(attended) < 0.9 * sum(possible)""", [last_term]).fetchall()}
            cohort = [f for f in families if f.quarter == identified]
            improved = sum(1 for f in cohort if not (f.members & involved) and not (f.members & low))
            out[start] = (improved, len(cohort))
        return out
    finally:
        con.close()
