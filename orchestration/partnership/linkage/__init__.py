"""Linking people and households across agencies (see docs/linkage.md).

Domain code only: no Dagster imports. `run_linkage` is what the `linkage/person_records` asset
calls: it reads `valid.*` and `identity.*` from the warehouse, computes in a private in-memory
DuckDB (spilling to `data/linkage/tmp`), and writes, in one transaction:

- `linkage.person_records`  one row per valid person record: its person, household, how it
                            was matched, and the person's opt-out flag
- `linkage.persons`         one row per person
- `linkage.id_sequence`     the next free person and household numbers (ids are never reused)
- `identity.linkage_record_keys`   each record's key and profile key; the `identity.linkage_records`
                            view adds its normalised identifying values, person and household
- `identity.linkage_clerical_review`  borderline pairs (restricted: they show identifying values)
- `identity.linkage_scoring_state`, `identity.linkage_scored_profiles`, `identity.linkage_scored_pairs`,
  `identity.linkage_term_frequencies`  what was scored, with which model and surname frequencies,
                            so that the next night scores only profiles it has not seen
- `identity.linkage_profiles`, `identity.linkage_person_addresses`, `identity.linkage_deliveries`,
  `identity.linkage_state`  what was linked, so that the next night links only the records of
                            new or withdrawn deliveries and the groups of profiles they touch
- `identity.linkage_address_postcodes`  the gazetteer's UPRN -> postcode, normalised, reused
                            while the gazetteer file is the one `linkage_state` records
- `linkage.household_members`, `identity.linkage_household_addresses`,
  `identity.linkage_household_review`, `identity.linkage_line_matches`,
  `identity.linkage_line_deliveries`, `identity.linkage_spells`, `identity.linkage_spell_state`,
  `identity.linkage_line_near`, `identity.linkage_postcode_days`
                            households at a date, the sources placing each person, each
                            record's address-line match, each person's address spells, near
                            address-line matches and record days per postcode and surname
                            (`households`, `address_lines`, `spells`)

and an aggregate report (no identifying values) to `data/reports/linkage/`. A night that links
only part ends with the same tables as a night that links everything (see
`profiles.select_region`).

The phases, one module each: `read` (input and stored state), `profiles`, `scoring` (Splink,
with `model`), `people` (clustering with `cluster`, person ids), `households` (with `spells`), `optouts`,
`write`; `state` holds what they share. `inputs` says which extracts are about people and how
their identifiers are normalised; `quality.evaluate` measures a result against the demo
generator's truth.
"""

from __future__ import annotations

import time

import duckdb

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.linkage.households import assign_households
from orchestration.partnership.linkage.inputs import person_sources
from orchestration.partnership.linkage.optouts import flag_opt_outs
from orchestration.partnership.linkage.people import (
    assign_person_ids,
    cluster_profiles,
    summarise_persons,
)
from orchestration.partnership.linkage.profiles import (
    build_profiles,
    select_region,
    tonight_profiles,
)
from orchestration.partnership.linkage.read import (
    read_all,
    read_new,
    read_reference,
    state_usable,
)
from orchestration.partnership.linkage.scoring import (
    collect_scored_pairs,
    score_new_profiles,
)
from orchestration.partnership.linkage.state import (
    SPLINK_SELECT,
    LinkageSummary,
    model_path,
    report_dir,
    tables,
)
from orchestration.partnership.linkage.write import write_report, write_results
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import LINKAGE_MEMORY_LIMIT_ENV, memory_limit
from orchestration.partnership.warehouse.permissions import lock_down

__all__ = ["LinkageSummary", "coverage_gaps", "model_path", "report_dir", "run_linkage"]


def linkage_memory_limit() -> str:
    """The working database's memory limit (see `run_linkage`)."""
    return memory_limit(LINKAGE_MEMORY_LIMIT_ENV)


class _Clock:
    """Seconds per phase, for the report."""

    def __init__(self) -> None:
        self.t, self.cpu = time.perf_counter(), time.process_time()
        self.times: dict[str, float] = {}
        self.cpu_times: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.times[name] = round(now - self.t, 2)
        self.cpu_times[name] = round(cpu - self.cpu, 2)
        self.t, self.cpu = now, cpu


def run_linkage(settings: Settings, contracts: dict[str, Contract], retrain: bool = False,
                working_memory: str | None = None, rescore: bool = False) -> LinkageSummary:
    """Link every valid person record into people and households. Returns what was done.

    `retrain`: train the model again (and so score and link every profile again); `rescore`:
    score every profile again with the same model (what a night without stored scores does).
    Either also links every record again; otherwise, when the stored state is usable, only the
    records of new or withdrawn deliveries and the people they touch are linked again.
    `working_memory`: the working database's memory limit (a DuckDB size); by default
    `PARTNERSHIP_LINKAGE_MEMORY_LIMIT`, else the night's `PARTNERSHIP_MEMORY_LIMIT` (4GB): beyond it
    the work spills to `data/linkage/tmp`."""
    summary = LinkageSummary()
    clock = _Clock()
    work = settings.data_dir / "linkage"
    lock_down()  # its spill files hold identifying values: the owner's alone
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    path = model_path(settings)
    mem = duckdb.connect()
    try:
        mem.execute(f"set memory_limit = '{working_memory or linkage_memory_limit()}'")
        summary.memory_limit = mem.execute("select current_setting('memory_limit')").fetchall()[0][0]
        mem.execute(f"set temp_directory = '{work / 'tmp'}'")
        mem.execute("set preserve_insertion_order = false")
        mem.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        try:
            sources = person_sources(contracts)
            gazetteer, address_cached = read_reference(mem, settings)
            delta = (not (retrain or rescore) and path.exists() and state_usable(mem, path, gazetteer))
            summary.incremental = delta
            if delta:
                read_new(mem, sources)
            else:
                read_all(mem, sources)
            clock.lap("read")
            if delta:
                tonight_profiles(mem)
            else:
                build_profiles(mem, "unnumbered", dated=True)
                mem.execute("drop table unnumbered")
                mem.execute("create view all_profiles as select * from profiles")
            # What Splink compares. An incremental night uses the stored model and frequencies,
            # so only `scoring_input` (built from `all_profiles` in `score_new_profiles`) is read.
            mem.execute(f"create {'view' if delta else 'table'} splink_input as select {SPLINK_SELECT} from all_profiles")
            clock.lap("profiles")
            if retrain or not path.exists():
                splink_model.train(mem, "splink_input", path)
                summary.model_trained = True
            summary.model_path = str(path)
            clock.lap("train")
            score_new_profiles(mem, path, summary, rescore)
            clock.lap("predict")
            if delta:
                select_region(mem)
                build_profiles(mem, "region_records")
            collect_scored_pairs(mem, summary)
            cluster_profiles(mem, summary)
            clock.lap("cluster")
            assign_person_ids(mem, summary)
            summarise_persons(mem)
            assign_households(mem, delta)
            flag_opt_outs(mem, delta)
            summary.records_linked = mem.execute("select count(*) from records").fetchall()[0][0]
            summary.profiles_linked = mem.execute("select count(*) from profiles").fetchall()[0][0]
            clock.lap("ids_households_optouts")
        finally:
            mem.execute("detach wh")
        write_results(mem, settings, summary, delta, gazetteer, address_cached, sources)
        clock.lap("write")
    finally:
        mem.close()
    summary.seconds = clock.times
    summary.cpu_seconds = clock.cpu_times
    write_report(settings, summary)
    return summary


def coverage_gaps(settings: Settings, contracts: dict[str, Contract]) -> dict[str, tuple[int, int]]:
    """Extracts whose valid rows and person records differ in number: {contract: (valid, linked)}."""
    from orchestration.partnership.warehouse.connection import connect

    gaps = {}
    with connect(settings.warehouse_path, read_only=True) as con:
        linked = dict(con.execute(
            "select contract_id, count(*) from linkage.person_records group by 1").fetchall())
        valid = tables(con, con.execute("select current_database()").fetchall()[0][0], "valid")
        for source in person_sources(contracts):
            if source.contract.table not in valid:
                continue
            n = con.execute(f'select count(*) from valid."{source.contract.table}"').fetchall()[0][0]
            if n != linked.get(source.id, 0):
                gaps[source.id] = (n, linked.get(source.id, 0))
    return gaps
