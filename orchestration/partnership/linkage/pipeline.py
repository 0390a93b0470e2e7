"""The linkage step of a night: person index, households and opt-out flags.

Reads `valid.*` and `identity.*` from the warehouse, computes in a private in-memory DuckDB
(spilling to `data/linkage/tmp`), and writes, in one transaction:

- `linkage.person_records`  one row per valid person record: its person, household, how it
                            was matched, and the person's opt-out flag
- `linkage.persons`         one row per person
- `linkage.id_sequence`     the next free person and household numbers (ids are never reused)
- `identity.linkage_records`       the normalised identifying values of each record and its person
- `identity.linkage_clerical_review`  borderline pairs (restricted: they show identifying values)
- `identity.linkage_scoring_state`, `identity.linkage_scored_profiles`, `identity.linkage_scored_pairs`,
  `identity.linkage_term_frequencies`  what was scored, with which model and surname frequencies,
                            so that the next night scores only profiles it has not seen
- `identity.linkage_profiles`, `identity.linkage_person_addresses`, `identity.linkage_deliveries`,
  `identity.linkage_state`  what was linked, so that the next night links only the records of
                            new or withdrawn deliveries and the groups of profiles they touch
- `identity.linkage_address_postcodes`  the gazetteer's UPRN -> postcode, normalised, reused
                            while the gazetteer file is the one `linkage_state` records

and an aggregate report (no identifying values) to `data/reports/linkage/`. A night that links
only part ends with the same tables as a night that links everything (see `_region`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np

import orchestration.partnership.linkage.model as splink_model
import orchestration.partnership.linkage.residence as residence
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.linkage.cluster import (
    NO_VALUE,
    ConstrainedUnionFind,
    assign_stable_ids,
)
from orchestration.partnership.linkage.inputs import (
    OPT_OUT_CONTRACT,
    PersonSource,
    address_postcodes_sql,
    nhs_sql,
    person_sources,
    records_sql,
)
from orchestration.partnership.settings import Settings

# Match methods, strongest first: the order links are applied in.
METHODS = ("nhs_number", "upn", "local_id", "uprn_dob", "probabilistic")
PERSON_PREFIX = "LP"
HOUSEHOLD_PREFIX = "LH"
_IDENT = ("nhs_number", "upn", "uprn", "local_id", "forename", "surname", "date_of_birth", "sex", "postcode")
# Bump when what is compared or kept changes (normalisation, derived columns, the review
# threshold): stored scores are then discarded and every profile is scored again.
SCORING_VERSION = 3
STATE_TABLES = ("linkage_scoring_state", "linkage_scored_profiles", "linkage_scored_pairs", "linkage_term_frequencies")
# What a night needs to link only the records that changed (see `_region`). Bump STATE_VERSION
# when their meaning changes: the next night then links every record again and rewrites them.
STATE_VERSION = 2  # 2: households by UPRN only (no surname-at-postcode key)
DELTA_TABLES = ("linkage_state", "linkage_profiles", "linkage_person_addresses", "linkage_deliveries")
# The gazetteer's UPRN -> postcode table, normalised, for the next night while the file is the same.
ADDRESS_TABLE = "linkage_address_postcodes"
_KEY = ("contract_id", "delivery_id", "row_number")
_SPLINK_SELECT = """pid as unique_id, forename, surname, strftime(date_of_birth, '%Y-%m-%d') as dob, sex,
                    compared_postcode as postcode, nhs_number, uprn"""
_FIRST = "first_contract_id, first_delivery_id, first_row_number"


@dataclass
class LinkageSummary:
    records: int = 0
    profiles: int = 0
    persons: int = 0
    households: int = 0
    opted_out_persons: int = 0
    opted_out_records: int = 0
    records_by_method: dict[str, int] = field(default_factory=dict)
    probabilistic_pairs_scored: int = 0
    profiles_scored: int = 0
    records_scored: int = 0
    pairs_found_tonight: int = 0
    full_rescore: bool = True
    incremental: bool = False
    records_linked: int = 0
    profiles_linked: int = 0
    links_refused: int = 0
    clerical_review_pairs: int = 0
    persons_kept_from_last_night: int = 0
    new_persons: int = 0
    model_trained: bool = False
    model_path: str = ""
    match_threshold: float = splink_model.MATCH_THRESHOLD
    review_threshold: float = splink_model.REVIEW_THRESHOLD
    seconds: dict[str, float] = field(default_factory=dict)


def model_path(settings: Settings) -> Path:
    return settings.data_dir / "linkage" / "model.json"


def report_dir(settings: Settings) -> Path:
    return settings.reports_dir / "linkage"


def _tables(con: duckdb.DuckDBPyConnection, db: str, schema: str) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ?", [db, schema]).fetchall()}


def _numpy(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray]:
    frame = con.sql(sql).pl()
    return {c: frame[c].to_numpy() for c in frame.columns}


class _Clock:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.times: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self.t, 2)
        self.t = now


def run_linkage(settings: Settings, contracts: dict[str, Contract], retrain: bool = False,
                memory_limit: str = "6GB", rescore: bool = False) -> LinkageSummary:
    """Link every valid person record into people and households. Returns what was done.

    `retrain`: train the model again (and so score and link every profile again); `rescore`:
    score every profile again with the same model (what a night without stored scores does).
    Either also links every record again; otherwise, when the stored state is usable, only the
    records of new or withdrawn deliveries and the people they touch are linked again."""
    summary = LinkageSummary()
    clock = _Clock()
    work = settings.data_dir / "linkage"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    path = model_path(settings)
    mem = duckdb.connect()
    try:
        mem.execute(f"set memory_limit = '{memory_limit}'")
        mem.execute(f"set temp_directory = '{work / 'tmp'}'")
        mem.execute("set preserve_insertion_order = false")
        mem.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        try:
            sources = person_sources(contracts)
            gazetteer, address_cached = _read_reference(mem, settings)
            delta = (not (retrain or rescore) and path.exists() and _state_usable(mem, path, gazetteer))
            summary.incremental = delta
            if delta:
                _read_new(mem, sources)
            else:
                _read_all(mem, sources)
            clock.lap("read")
            if delta:
                _all_profiles(mem)
            else:
                _profiles(mem, "unnumbered")
                mem.execute("drop table unnumbered")
                mem.execute("create view all_profiles as select * from profiles")
            # What Splink compares. An incremental night uses the stored model and frequencies,
            # so only `scoring_input` (built from `all_profiles` in `_score`) is read.
            mem.execute(f"create {'view' if delta else 'table'} splink_input as select {_SPLINK_SELECT} from all_profiles")
            clock.lap("profiles")
            if retrain or not path.exists():
                splink_model.train(mem, "splink_input", path)
                summary.model_trained = True
            summary.model_path = str(path)
            clock.lap("train")
            _score(mem, path, summary, rescore)
            clock.lap("predict")
            if delta:
                _region(mem)
                _profiles(mem, "region_records")
            _scored_pairs(mem, summary)
            _cluster(mem, summary)
            clock.lap("cluster")
            _person_ids(mem, summary)
            _households(mem, delta)
            _opt_outs(mem, delta)
            summary.records_linked = mem.execute("select count(*) from records").fetchall()[0][0]
            summary.profiles_linked = mem.execute("select count(*) from profiles").fetchall()[0][0]
            clock.lap("ids_households_optouts")
        finally:
            mem.execute("detach wh")
        _write(mem, settings, summary, delta, gazetteer, address_cached, sources)
        clock.lap("write")
    finally:
        mem.close()
    summary.seconds = clock.times
    _write_report(settings, summary)
    return summary


def _read_reference(mem: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[str, bool]:
    """The address gazetteer and the opt-out list; returns the gazetteer's digest ('' if none)
    and whether its UPRN -> postcode table was read from last night's copy."""
    # The address gazetteer, to compare records that carry a UPRN but no postcode (fire).
    # Normalising it takes seconds at county; last night's copy (`ADDRESS_TABLE`, written
    # with the state that records the digest it was made from) serves while the file is the same.
    lookup = settings.reference_dir / "address_lookup.csv"
    digest = hashlib.sha256(lookup.read_bytes()).hexdigest() if lookup.exists() else ""
    cached = (ADDRESS_TABLE in _tables(mem, "wh", "identity") and "linkage_state" in _tables(mem, "wh", "identity")
              and mem.execute("select gazetteer_sha256 from wh.identity.linkage_state").fetchall() == [(digest,)])
    if cached:
        mem.execute(f"create table address_postcodes as select uprn, postcode from wh.identity.{ADDRESS_TABLE}")
    elif lookup.exists():
        mem.execute(f"create table address_postcodes as {address_postcodes_sql(str(lookup))}")
    else:
        mem.execute("create table address_postcodes (uprn varchar, postcode varchar)")
    # The national data opt-out list is a monthly full snapshot: only its latest accepted delivery counts.
    if OPT_OUT_CONTRACT in _tables(mem, "wh", "valid") and OPT_OUT_CONTRACT in _tables(mem, "wh", "identity"):
        mem.execute(f"""create table opt_outs as
            with latest as (
                select delivery_id from wh.ops.deliveries
                where contract_id = '{OPT_OUT_CONTRACT}' and status = 'accepted'
                order by arrived_at desc, delivery_id desc limit 1)
            select distinct {nhs_sql('i.nhs_number')} as nhs_number
            from wh.identity.{OPT_OUT_CONTRACT} i join latest l on i._delivery_id = l.delivery_id
            where {nhs_sql('i.nhs_number')} is not null""")
    else:
        mem.execute("create table opt_outs (nhs_number varchar)")
    return digest, cached


def _state_usable(mem: duckdb.DuckDBPyConnection, path: Path, gazetteer: str) -> bool:
    """Whether last night's stored state can be carried forward: it exists, was made by this
    code with this model, scoring inputs and gazetteer, and holds every record it recorded
    (retention purges linkage rows with their delivery: the next night then links everything)."""
    identity, linkage = _tables(mem, "wh", "identity"), _tables(mem, "wh", "linkage")
    if not ({*STATE_TABLES, *DELTA_TABLES, "linkage_records"} <= identity
            and {"person_records", "persons", "id_sequence"} <= linkage):
        return False
    if mem.execute("select state_version, gazetteer_sha256 from wh.identity.linkage_state").fetchall() != [
            (STATE_VERSION, gazetteer)]:
        return False
    if mem.execute("select model_sha256, scoring_version from wh.identity.linkage_scoring_state").fetchall() != [
            (splink_model.model_hash(path), SCORING_VERSION)]:
        return False
    return mem.execute("""
        with r as (select contract_id, delivery_id, count(*) as n from wh.identity.linkage_records group by all),
             p as (select contract_id, delivery_id, count(*) as n from wh.linkage.person_records group by all)
        select count(*) from wh.identity.linkage_deliveries d
        full join r using (contract_id, delivery_id) full join p using (contract_id, delivery_id)
        where d.records is distinct from r.n or d.records is distinct from p.n""").fetchall()[0][0] == 0


def _keyed(sql: str) -> str:
    """Records with their profile key and the postcode compared.

    A profile's `pkey` is a hash of what is compared about it (its identifiers and the postcode
    compared, which for a record with a UPRN and no postcode is its address's postcode): the
    same profile has the same key every night, which is how a night knows what it has seen."""
    return f"""select {", ".join(f"r.{c}" for c in (*_KEY, *_IDENT))},
               md5_number(to_json({{{", ".join(f"'{c}': r.{c}" for c in _IDENT)},
                                    'compared_postcode': coalesce(r.postcode, a.postcode)}})) as pkey,
               coalesce(r.postcode, a.postcode) as compared_postcode
        from ({sql}) r left join address_postcodes a on a.uprn = r.uprn and r.postcode is null"""


def _current_deliveries(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    valid = _tables(mem, "wh", "valid")
    parts = [f"""select '{s.id}' as contract_id, _delivery_id as delivery_id, count(*) as records
                 from wh.valid."{s.contract.table}" group by all""" for s in sources if s.contract.table in valid]
    mem.execute("create table cur_deliveries as " + (" union all ".join(parts) if parts else
                "select cast(null as varchar) as contract_id, cast(null as bigint) as delivery_id, "
                "cast(null as bigint) as records where false"))


def _read_all(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    """Every valid person record (`unnumbered`, made into profiles and `records` by `_profiles`),
    and last night's ids so that people keep theirs."""
    valid = _tables(mem, "wh", "valid")
    mem.execute(f"create table unnumbered as {_keyed(records_sql(sources, valid, 'wh.'))}")
    mem.execute("create table cur_deliveries as select contract_id, delivery_id, count(*) as records from unnumbered group by all")
    # Read where it is used (once, by `_person_ids`), not copied: at 25 million rows a copy
    # is gigabytes of the working database's memory.
    if "person_records" in _tables(mem, "wh", "linkage"):
        mem.execute("""create view previous as select contract_id, delivery_id, row_number, person_id, household_id
                       from wh.linkage.person_records""")
    else:
        mem.execute("""create table previous (contract_id varchar, delivery_id bigint, row_number bigint,
                       person_id varchar, household_id varchar)""")
    _id_sequence(mem)


def _id_sequence(mem: duckdb.DuckDBPyConnection) -> None:
    if "id_sequence" in _tables(mem, "wh", "linkage"):
        mem.execute("create table id_sequence as select * from wh.linkage.id_sequence")
    else:
        mem.execute("create table id_sequence (kind varchar, next_number bigint)")


def _read_new(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    """Only the valid rows of deliveries linkage has not seen, and which deliveries it saw have gone.

    A delivery is known by its contract, id and number of valid rows: one that changed counts as
    withdrawn and delivered again."""
    _current_deliveries(mem, sources)
    mem.execute("""create table new_deliveries as select contract_id, delivery_id, records from cur_deliveries
                   except select contract_id, delivery_id, records from wh.identity.linkage_deliveries""")
    mem.execute("""create table removed_deliveries as
                   select contract_id, delivery_id, records from wh.identity.linkage_deliveries
                   except select contract_id, delivery_id, records from cur_deliveries""")
    wanted: dict[str, list[int]] = {}
    for c, d in mem.execute("select contract_id, delivery_id from new_deliveries order by all").fetchall():
        wanted.setdefault(c, []).append(d)
    mem.execute(f"create table new_records as {_keyed(records_sql(sources, _tables(mem, 'wh', 'valid'), 'wh.', wanted))}")
    _id_sequence(mem)


def _all_profiles(mem: duckdb.DuckDBPyConnection) -> None:
    """Tonight's profiles (what is scored): last night's, with those whose records changed recounted.

    `pid` only names a profile for Splink and the joins around it (results are keyed by `pkey`):
    last night's unchanged profiles keep their row number in the stored table, which costs no
    sort; the others follow, numbered by their first record as a night linking everything
    numbers them, so that pairs among new profiles are scored in the same orientation."""
    ident = ", ".join(_IDENT)
    mem.execute("""create table touched as
        select pkey from new_records
        union select l.pkey from wh.identity.linkage_records l semi join removed_deliveries using (contract_id, delivery_id)""")
    mem.execute(f"""create table touched_profiles as
        with recs as (
            select {", ".join(f"l.{c}" for c in (*_KEY, *_IDENT))}, l.pkey, coalesce(l.postcode, a.postcode) as compared_postcode
            from wh.identity.linkage_records l left join address_postcodes a on a.uprn = l.uprn and l.postcode is null
            anti join removed_deliveries using (contract_id, delivery_id)
            where l.pkey in (select pkey from touched)
            union all select {", ".join(_KEY)}, {ident}, pkey, compared_postcode from new_records)
        select pkey, {", ".join(f"any_value({c}) as {c}" for c in (*_IDENT, "compared_postcode"))},
               {", ".join(f"arg_min({k}, ({', '.join(_KEY)})) as first_{k}" for k in _KEY)}, count(*) as n_records
        from recs group by pkey""")
    cols = f"pkey, {ident}, compared_postcode, n_records"
    first = ", ".join(f"t.{c}" for c in _FIRST.split(", "))
    mem.execute(f"""create table all_profiles as
        select p.rowid as pid, {cols}, component from wh.identity.linkage_profiles p anti join touched using (pkey)
        union all
        select (select coalesce(max(rowid) + 1, 0) from wh.identity.linkage_profiles) + row_number() over (order by {first}) - 1,
               {", ".join(f"t.{c}" for c in cols.split(", "))}, s.component
        from touched_profiles t left join wh.identity.linkage_profiles s using (pkey)""")


def _region(mem: duckdb.DuckDBPyConnection) -> None:
    """The records to link again tonight: those of every group of profiles (connected by a rule
    or a pair at the match threshold) that a new, changed or vanished profile belongs to or joins.

    Clustering, person ids and match methods of a group depend on that group alone, so groups
    outside the region keep last night's result, which is what linking everything would give."""
    p = splink_model.MATCH_THRESHOLD
    mem.execute(f"""create table region_components as
        with np as (select * from all_profiles where component is null),
        hit as (
            select s.component from wh.identity.linkage_profiles s where s.pkey in (select pkey from touched)
            union all
            select o.component from new_pairs_pk n join all_profiles o on o.pkey = n.pkey_a where n.match_probability >= {p}
            union all
            select o.component from new_pairs_pk n join all_profiles o on o.pkey = n.pkey_b where n.match_probability >= {p}
            union all select o.component from all_profiles o join np on o.nhs_number = np.nhs_number
            union all select o.component from all_profiles o join np on o.upn = np.upn
            union all select o.component from all_profiles o join np on o.local_id = np.local_id
            union all select o.component from all_profiles o join np on o.uprn = np.uprn
                and o.date_of_birth = np.date_of_birth and substr(o.forename, 1, 1) is not distinct from substr(np.forename, 1, 1))
        select distinct component from hit where component is not null""")
    # Last night's profiles (and so people: a person never spans two groups) in those groups.
    mem.execute("""create table prev_region as select pkey, person_id from wh.identity.linkage_profiles
                   where component in (select component from region_components)""")
    mem.execute("""create table region_pkeys as select pkey from all_profiles
                   where component is null or component in (select component from region_components)""")
    ident = ", ".join(f"l.{c}" for c in _IDENT)
    # One scan of the stored records (25 million at the largest volume measured) for both:
    # the records of the region's profiles, and last night's of its people.
    mem.execute(f"""create table stored_region as
        select {", ".join(f"l.{c}" for c in _KEY)}, {ident}, l.pkey, l.person_id, l.household_id
        from wh.identity.linkage_records l
        where l.pkey in (select pkey from region_pkeys union select pkey from prev_region)""")
    mem.execute(f"""create table region_records as
        select l.contract_id, l.delivery_id, l.row_number, {ident}, l.pkey, p.compared_postcode
        from stored_region l
        join (select pkey, compared_postcode from all_profiles semi join region_pkeys using (pkey)) p using (pkey)
        anti join removed_deliveries using (contract_id, delivery_id)
        union all select {", ".join(_KEY)}, {", ".join(_IDENT)}, pkey, compared_postcode from new_records""")
    mem.execute("""create table previous as select contract_id, delivery_id, row_number, person_id, household_id
                   from stored_region where pkey in (select pkey from prev_region)""")


# A record's place in (contract, delivery, row) order, and in (delivery, row) order, as one
# number: the delivery's rank (or id) above the row number (`_profiles` checks they fit).
_ROW_BITS = 40


def _profiles(mem: duckdb.DuckDBPyConnection, source: str) -> None:
    """Records with identical identifiers are one profile; linkage works on profiles.

    `profiles`: one row per profile of `source` (the records being linked, with their
    identifiers), numbered (`pid`) by first record in (contract, delivery, row) order, with its
    first and last record. `records`: each record's delivery (`d`, in `deliveries`), row and
    profile, nothing more. Everything linkage decides about a record it decides about its
    profile (the same identifiers), so the identifiers are kept once per profile, not once per
    record (25 million records are a million profiles)."""
    mem.execute("""create or replace table deliveries as
        select cast(row_number() over (order by contract_id, delivery_id) - 1 as bigint) as d, contract_id, delivery_id
        from (select distinct contract_id, delivery_id from cur_deliveries)""")
    lo, hi, dmin, dmax = mem.execute(f"""select min(row_number), max(row_number),
        (select min(delivery_id) from deliveries), (select max(delivery_id) from deliveries) from {source}""").fetchall()[0]
    if (lo is not None and (lo < 0 or hi >= 1 << _ROW_BITS)) or (dmin is not None and (dmin < 0 or dmax >= 1 << (62 - _ROW_BITS))):
        raise ValueError(f"linkage: row numbers {lo}..{hi} or delivery ids {dmin}..{dmax} out of the range linkage orders by")
    cols = ", ".join(f"any_value(s.{c}) as {c}" for c in (*_IDENT, "compared_postcode"))
    mask = (1 << _ROW_BITS) - 1
    mem.execute(f"""create table profiles as
        with p as (
            select s.pkey, {cols},
                   min((d.d << {_ROW_BITS}) + s.row_number) as first_at,
                   max((s.delivery_id << {_ROW_BITS}) + s.row_number) as last_at, count(*) as n_records
            from {source} s join deliveries d using (contract_id, delivery_id) group by s.pkey)
        select row_number() over (order by p.first_at) - 1 as pid, p.pkey, {", ".join(f"p.{c}" for c in (*_IDENT, "compared_postcode"))},
               d.contract_id as first_contract_id, d.delivery_id as first_delivery_id, p.first_at & {mask} as first_row_number,
               p.n_records, p.last_at as last_at
        from p join deliveries d on d.d = p.first_at >> {_ROW_BITS}""")
    mem.execute(f"""create table records as
        select cast(d.d as integer) as d, s.row_number, p.pid
        from {source} s join deliveries d using (contract_id, delivery_id) join profiles p using (pkey)
        order by d, row_number""")


def _score(mem: duckdb.DuckDBPyConnection, path: Path, summary: LinkageSummary, rescore: bool) -> None:
    """Scored pairs of tonight's new profiles, in `new_pairs_pk` (by profile key, smaller first).

    Pairs between profiles an earlier night scored are kept in the stored scores; only
    pairs with at least one new profile are scored. The surname frequencies belong with the
    model: computed from the profiles of the first night a model scores, then kept. Stored
    scores and frequencies count only when they came from the same model and the same
    comparison inputs (SCORING_VERSION); otherwise every profile is scored again."""
    digest = splink_model.model_hash(path)
    has_state = set(STATE_TABLES) <= _tables(mem, "wh", "identity")
    state = (mem.execute("select model_sha256, scoring_version from wh.identity.linkage_scoring_state").fetchall()
             if has_state else [])
    same_model = not summary.model_trained and state == [(digest, SCORING_VERSION)]
    full = rescore or not same_model
    if same_model:
        mem.execute("create table term_frequencies as select * from wh.identity.linkage_term_frequencies")
    else:
        mem.execute(f"create table term_frequencies as {splink_model.term_frequencies_sql('splink_input')}")
    if full:
        mem.execute("create table new_keys as select pkey from all_profiles")
    else:
        mem.execute("create table new_keys as select pkey from all_profiles anti join wh.identity.linkage_scored_profiles using (pkey)")
    mem.execute(f"""create table scoring_input as
        select {_SPLINK_SELECT}, pkey in (select pkey from new_keys) as is_new, n_records from all_profiles""")
    n_new, n_old = mem.execute("select count(*) filter (where is_new), count(*) filter (where not is_new) "
                               "from scoring_input").fetchall()[0]
    if n_new:
        pred = splink_model.predict(mem, "scoring_input", path, "new_pairs", "term_frequencies", new_only=n_old > 0)
        summary.pairs_found_tonight = pred.pairs
    else:
        mem.execute("create table new_pairs (a bigint, b bigint, match_weight double, match_probability double)")
    mem.execute("""create table new_pairs_pk as
        select least(pa.pkey, pb.pkey) as pkey_a, greatest(pa.pkey, pb.pkey) as pkey_b, n.match_weight, n.match_probability
        from new_pairs n join all_profiles pa on pa.pid = n.a join all_profiles pb on pb.pid = n.b""")
    summary.full_rescore = full
    summary.profiles_scored = n_new
    summary.records_scored = mem.execute(
        "select coalesce(sum(n_records), 0) from scoring_input where is_new").fetchall()[0][0]
    mem.execute(f"create table scoring_state as select '{digest}' as model_sha256, {SCORING_VERSION} as scoring_version")


def _scored_pairs(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Scored pairs among the profiles being linked (`profiles`), in `scored_pairs` (a < b: pids)."""
    kept = "" if summary.full_rescore else """
        union all select pkey_a, pkey_b, match_weight, match_probability from wh.identity.linkage_scored_pairs"""
    mem.execute(f"""create table scored_pairs as
        with pk as (select pkey_a, pkey_b, match_weight, match_probability from new_pairs_pk {kept})
        select least(pa.pid, pb.pid) as a, greatest(pa.pid, pb.pid) as b, pk.match_weight, pk.match_probability
        from pk join profiles pa on pa.pkey = pk.pkey_a join profiles pb on pb.pkey = pk.pkey_b""")


def _rule_edges(mem: duckdb.DuckDBPyConnection, partition: str, where: str) -> dict[str, np.ndarray]:
    """Each profile to the first profile sharing its key (a star per key: enough to connect them)."""
    return _numpy(mem, f"""
        select pid as a, first_value(pid) over (partition by {partition} order by pid) as b
        from profiles where {where} qualify a <> b order by b, a""")


def _cluster(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    import polars as pl
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    codes = _codes(mem)
    uf = ConstrainedUnionFind(codes["nhs"], codes["upn"])
    rules = {
        "nhs_number": ("nhs_number", "nhs_number is not null"),
        "upn": ("upn", "upn is not null"),
        "local_id": ("local_id", "local_id is not null"),
        # UPRN + date of birth, and the same forename initial so that twins stay two people.
        "uprn_dob": ("uprn, date_of_birth, substr(forename, 1, 1)", "uprn is not null and date_of_birth is not null"),
    }
    left, right = [], []
    for method, (partition, where) in rules.items():
        e = _rule_edges(mem, partition, where)
        uf.union_all(e["a"], e["b"], METHODS.index(method))
        left.append(e["a"])
        right.append(e["b"])
    e = _numpy(mem, f"""select a, b, match_probability from scored_pairs
                        where match_probability >= {splink_model.MATCH_THRESHOLD}
                        order by match_probability desc, a, b""")
    uf.union_all(e["a"], e["b"], METHODS.index("probabilistic"), e["match_probability"])
    left.append(e["a"])
    right.append(e["b"])
    roots = uf.roots()
    # Groups of profiles connected by any link, refused ones included: what a night links again
    # when one of them changes. Named by their smallest profile key.
    n = len(roots)
    a, b = np.concatenate(left).astype(np.int64), np.concatenate(right).astype(np.int64)
    label = (connected_components(coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)), directed=False)[1]
             if n else np.zeros(0, dtype=np.int64))
    frame = pl.DataFrame({"pid": np.arange(n, dtype=np.int64), "root": roots,
                          "method_code": uf.method.astype(np.int64), "probability": uf.probability,
                          "label": label.astype(np.int64), "refused": uf.refused_at.astype(np.int64)})
    mem.register("_clusters", frame)
    mem.execute("""create table profile_cluster as
        select c.pid, c.root, c.method_code, c.probability, c.refused,
               min(p.pkey) over (partition by c.label) as component
        from _clusters c join profiles p using (pid)""")
    mem.unregister("_clusters")


def _codes(mem: duckdb.DuckDBPyConnection) -> dict[str, np.ndarray]:
    """Integer codes of each profile's NHS number and UPN (-1: none), for the cannot-link rule."""
    return _numpy(mem, f"""
        with n as (select nhs_number, row_number() over (order by nhs_number) - 1 as code
                   from (select distinct nhs_number from profiles where nhs_number is not null)),
             u as (select upn, row_number() over (order by upn) - 1 as code
                   from (select distinct upn from profiles where upn is not null))
        select p.pid, coalesce(n.code, {NO_VALUE}) as nhs, coalesce(u.code, {NO_VALUE}) as upn
        from profiles p left join n using (nhs_number) left join u using (upn) order by p.pid""")


def _next_number(mem: duckdb.DuckDBPyConnection, kind: str) -> int:
    row = mem.execute("select next_number from id_sequence where kind = ?", [kind]).fetchall()
    return int(row[0][0]) if row else 1


def _assign(mem: duckdb.DuckDBPyConnection, kind: str, prefix: str, n_groups: int,
            counts: list[tuple[int, str, int]], first: list[int]) -> list[str]:
    """Ids for groups 0..n-1 (see `assign_stable_ids`), moving the id sequence on."""
    ids, nxt = assign_stable_ids(n_groups, counts, first, _next_number(mem, kind), prefix)
    mem.execute("delete from id_sequence where kind = ?", [kind])
    mem.execute("insert into id_sequence values (?, ?)", [kind, nxt])
    return ids


def _person_ids(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Each group of linked profiles is a person, keeping the id most of its records had."""
    import polars as pl

    mem.execute("""create or replace temp table _groups as
        select pid, dense_rank() over (order by root) - 1 as grp from profile_cluster""")
    n_groups = mem.execute("select coalesce(max(grp) + 1, 0) from _groups").fetchall()[0][0]
    # Last night's person and household of tonight's records, counted per profile: the one
    # join of every record with last night's (households count from it too).
    mem.execute("""create table prev_counts as
        select r.pid, p.person_id, p.household_id, count(*) as n
        from previous p join deliveries d using (contract_id, delivery_id)
        join records r on r.d = d.d and r.row_number = p.row_number
        group by all""")
    counts = [(g, p, int(n)) for g, p, n in mem.execute("""
        select g.grp, c.person_id, sum(c.n) from prev_counts c join _groups g using (pid)
        where c.person_id is not null group by all""").fetchall()]
    # A group's first record is its first profile's (profiles are numbered by first record).
    first = [f[0] for f in mem.execute("select min(pid) from _groups group by grp order by grp").fetchall()]
    ids = _assign(mem, "person", PERSON_PREFIX, n_groups, counts, first)
    mem.register("_ids", pl.DataFrame({"grp": np.arange(n_groups, dtype=np.int64), "id": ids}))
    mem.execute("create table profile_person as select g.pid, i.id as person_id from _groups g join _ids i using (grp)")
    mem.unregister("_ids")
    kept = len({c[1] for c in counts} & set(ids))
    summary.new_persons = n_groups - kept
    # How each record was matched: the first rule that linked its profile; a profile whose
    # records are the person's only ones is a singleton; repeated identical records otherwise.
    methods = ", ".join(f"({i}, '{m}')" for i, m in enumerate(METHODS))
    mem.execute(f"""create table profile_method as
        with m(code, name) as (values {methods}),
        sized as (select pp.pid, pp.person_id, sum(p.n_records) over (partition by pp.person_id) as person_records
                  from profile_person pp join profiles p using (pid))
        select s.pid, s.person_id,
               case when m.name is not null then m.name
                    when s.person_records = 1 then 'singleton'
                    else 'identical_identifiers' end as match_method,
               case when m.name = 'probabilistic' then pc.probability end as match_probability
        from sized s join profile_cluster pc using (pid) left join m on m.code = pc.method_code""")


def _households(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """A person's household: the UPRN of their latest record that has one; else the UPRN that
    people with the same surname at the same postcode have; else that surname and postcode.

    A person's household key depends on their own latest address and on the people at the
    same postcode with the same surname (the *cell*). A night linking everything works it out
    for everyone; an incremental night only for the people it may change (`_household_scope`),
    everyone else keeps last night's household, which is what everyone would get."""
    import polars as pl

    # From the person's profiles: a profile's records share its identifiers, so the person's
    # latest record with a UPRN is the latest record of the latest of their profiles with one.
    # (`last_at` orders records by (delivery, row); `pid` orders profiles by first record.)
    latest = "last_at"
    mem.execute(f"""create table region_persons as
        with pp as (select p.*, m.person_id from profiles p join profile_person m using (pid))
        select person_id, cast(sum(n_records) as bigint) as records,
               {", ".join(f"arg_min(first_{k}, pid) as first_{k}" for k in _KEY)},
               arg_max(uprn, {latest}) filter (where uprn is not null) as last_uprn,
               arg_max(postcode, {latest}) filter (where postcode is not null and surname is not null) as last_postcode,
               arg_max(surname, {latest}) filter (where postcode is not null and surname is not null) as last_surname
        from pp group by person_id""")
    if delta:
        _household_scope(mem)
    else:
        mem.execute(f"""create table persons_all as
            select {_PERSON_ADDRESS}, cast(null as varchar) as previous_household,
                   cast(null as boolean) as previous_opted_out, true as relinked from region_persons""")
        mem.execute("create view cell_members as select last_postcode, last_surname, last_uprn from persons_all")
    mem.execute(f"""create table person_grp as
        with keyed as (
            select p.person_id, p.records, p.previous_household, p.relinked,
                   row_number() over (order by {_FIRST}) as first_rank,
                   coalesce('U:' || p.last_uprn, 'P:' || p.person_id) as household_key
            from persons_all p)
        select *, dense_rank() over (order by household_key) - 1 as grp from keyed""")
    n_groups = mem.execute("select coalesce(max(grp) + 1, 0) from person_grp").fetchall()[0][0]
    # Last night's household of each record: per record for people linked again, per person otherwise.
    counts = mem.execute("""
        select grp, household_id, sum(n) from (
            select g.grp, c.household_id, sum(c.n) as n from prev_counts c join profile_person pp using (pid)
            join person_grp g on g.person_id = pp.person_id
            where c.household_id is not null group by all
            union all
            select grp, previous_household, records from person_grp where not relinked and previous_household is not null)
        group by all""").fetchall()
    first = [f[0] for f in mem.execute("select min(first_rank) from person_grp group by grp order by grp").fetchall()]
    ids = _assign(mem, "household", HOUSEHOLD_PREFIX, n_groups, [(g, h, int(n)) for g, h, n in counts], first)
    mem.register("_ids", pl.DataFrame({"grp": np.arange(n_groups, dtype=np.int64), "id": ids}))
    mem.execute("create table person_household as select g.person_id, i.id as household_id from person_grp g join _ids i using (grp)")
    mem.unregister("_ids")


_PERSON_ADDRESS = f"person_id, records, {_FIRST}, last_uprn, last_postcode, last_surname"
_STORED_PERSONS = """(select * from wh.identity.linkage_person_addresses
                       where person_id not in (select person_id from prev_ids))"""


def _household_scope(mem: duckdb.DuckDBPyConnection) -> None:
    """`persons_all`: the people whose household an incremental night works out again; and
    `cell_members`: everyone in their cells (the people a household key depends on).

    Households are assigned per household key, each key keeping the household most of its
    members' records had (`assign_stable_ids`); that assignment is independent between sets
    of people connected by a shared key or a shared household of last night. Last night every
    household was exactly one key's people. A key changes only for people linked again
    tonight and for people in a cell where someone arrived or left (its UPRN may change).
    Starting from those people, the set is closed by adding everyone sharing a UPRN key with
    them and everyone in a household of last night that any of them (or anyone who left) had:
    with last night's households being keys, that is everyone connected to them. Everyone
    else keeps their key, alone with last night's household, so keeps that household; and
    new household numbers go only to keys in the set, numbered in the same order."""
    cols = _PERSON_ADDRESS
    stored = _STORED_PERSONS
    mem.execute("create table prev_ids as select distinct person_id from prev_region")
    mem.execute("""create table left_persons as select person_id, last_postcode, last_surname, household_id
                   from wh.identity.linkage_person_addresses where person_id in (select person_id from prev_ids)""")
    mem.execute("""create table dirty_cells as
        select distinct last_postcode, last_surname from (
            select last_postcode, last_surname from region_persons
            union all select last_postcode, last_surname from left_persons)
        where last_postcode is not null and last_surname is not null""")
    # People whose key may change: those linked again, and everyone in a cell someone entered or left.
    mem.execute(f"""create table moved as
        select {cols}, household_id as previous_household, opted_out as previous_opted_out, false as relinked
        from {stored} s semi join dirty_cells using (last_postcode, last_surname)
        union all
        select {cols}, cast(null as varchar), cast(null as boolean), true from region_persons""")
    mem.execute("""create table moved_uprns as
        with au as (select last_postcode, last_surname, min(last_uprn) as uprn from moved
                    where last_postcode is not null and last_uprn is not null group by 1, 2
                    having count(distinct last_uprn) = 1)
        select distinct coalesce(m.last_uprn, au.uprn) as uprn
        from moved m left join au using (last_postcode, last_surname) where coalesce(m.last_uprn, au.uprn) is not null""")
    mem.execute(f"""create table scope_households as
        select household_id from left_persons
        union select household_id from previous
        union select previous_household from moved
        union select household_id from {stored} s semi join moved_uprns u on u.uprn = s.last_uprn""")
    mem.execute(f"""create table persons_all as
        select * from moved
        union all
        select {cols}, household_id, opted_out, false from {stored} s
        where person_id not in (select person_id from moved)
          and (household_id in (select household_id from scope_households)
               or last_uprn in (select uprn from moved_uprns))""")
    mem.execute(f"""create table cell_members as
        select last_postcode, last_surname, last_uprn from {stored} s
        semi join (select distinct last_postcode, last_surname from persons_all) c using (last_postcode, last_surname)
        union all select last_postcode, last_surname, last_uprn from region_persons""")


def _opt_outs(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """Flagged once, on the person: any of their records carries an NHS number on the list.

    The list is a full snapshot, so every person is checked against it (a join of the list with
    the stored profiles); an incremental night then carries only the people whose flag
    changed, beside those whose household was worked out again."""
    stored = """union all select nhs_number, person_id from wh.identity.linkage_profiles
                where component not in (select component from region_components)""" if delta else ""
    mem.execute(f"""create table opted_out_persons as
        select distinct person_id from (
            select p.nhs_number, pp.person_id from profiles p join profile_person pp using (pid) {stored})
        join opt_outs using (nhs_number)""")
    flag_changed = f"""
        union all
        select {_PERSON_ADDRESS}, household_id as previous_household, opted_out as previous_opted_out,
               false as relinked, household_id, not opted_out
        from {_STORED_PERSONS} s
        where person_id not in (select person_id from person_household)
          and opted_out <> (person_id in (select person_id from opted_out_persons))""" if delta else ""
    mem.execute(f"""create or replace table persons_all as
        select a.*, h.household_id, o.person_id is not null as opted_out
        from persons_all a join person_household h using (person_id) left join opted_out_persons o using (person_id)
        {flag_changed}""")


def _write(mem: duckdb.DuckDBPyConnection, settings: Settings, summary: LinkageSummary, delta: bool,
           gazetteer: str, address_cached: bool = False, sources: list[PersonSource] | None = None) -> None:
    ident = ", ".join(f"p.{c}" for c in _IDENT)
    # What a record's rows say, per profile; the rows themselves are joined as they are written.
    mem.execute(f"""create table profile_out as
        select p.pid, m.person_id, a.household_id, m.match_method, m.match_probability, a.opted_out, {ident}, p.pkey
        from profiles p join profile_method m using (pid) join persons_all a using (person_id)""")
    mem.execute(f"""create view out_records as
        select d.contract_id, d.delivery_id, r.row_number, o.person_id, o.household_id, o.match_method,
               o.match_probability, o.opted_out, {", ".join(f"o.{c}" for c in _IDENT)}, o.pkey
        from records r join deliveries d using (d) join profile_out o using (pid)""")
    mem.execute(f"""create table out_profiles as
        select p.pkey, {", ".join(f"p.{c}" for c in _IDENT)}, p.compared_postcode, {", ".join(f"p.{c}" for c in _FIRST.split(", "))},
               p.n_records, c.component, pp.person_id, c.refused
        from profiles p join profile_cluster c using (pid) join profile_person pp using (pid)""")
    if delta:
        mem.execute("""create table changed as select person_id, household_id, opted_out from persons_all
                       where not relinked and (household_id is distinct from previous_household
                                               or opted_out is distinct from previous_opted_out)""")
        mem.execute("create table vanished as select pkey from touched where pkey not in (select pkey from all_profiles)")
        mem.execute("create table new_profile_keys as select pkey from new_keys")
    mem.execute(f"attach '{settings.warehouse_path}' as wh")
    try:
        mem.execute("begin transaction")
        for schema in ("linkage", "identity"):
            mem.execute(f"create schema if not exists wh.{schema}")
        if delta:
            _write_changes(mem)
        else:
            _write_all(mem, gazetteer)
        if not (delta and address_cached):
            mem.execute(f"create or replace table wh.identity.{ADDRESS_TABLE} as select * from address_postcodes order by uprn")
        mem.execute("create or replace table wh.linkage.id_sequence as select * from id_sequence order by kind")
        _clerical_review(mem, delta)
        nxt = residence.write_households(mem, sources or [], _tables(mem, "wh", "valid"),
                                         _next_number(mem, "household"), HOUSEHOLD_PREFIX)
        mem.execute("update wh.linkage.id_sequence set next_number = ? where kind = 'household'", [nxt])
        _count(mem, summary)
        mem.execute("commit")
    except BaseException:
        mem.execute("rollback")
        raise
    finally:
        mem.execute("detach wh")


_RECORD_COLS = "contract_id, delivery_id, row_number, person_id, household_id, match_method, match_probability, opted_out"
_LINKAGE_RECORD_COLS = f"contract_id, delivery_id, row_number, person_id, household_id, {', '.join(_IDENT)}, pkey"
_PERSON_COLS = "person_id, household_id, opted_out, records"
_ADDRESS_COLS = f"person_id, records, {_FIRST}, last_uprn, last_postcode, last_surname, household_id, opted_out"


def _write_all(mem: duckdb.DuckDBPyConnection, gazetteer: str) -> None:
    """Everything linked tonight: replace every table.

    The per-record tables are written in `records`' order, which is (contract, delivery, row):
    the joins that add each profile's values keep it (insertion order preserved), so the
    tables are stored in that order, nearly, without sorting 25 million wide rows again."""
    mem.execute("set preserve_insertion_order = true")
    mem.execute(f"create or replace table wh.linkage.person_records as select {_RECORD_COLS} from out_records")
    mem.execute(f"create or replace table wh.linkage.persons as select {_PERSON_COLS} from persons_all order by person_id")
    mem.execute(f"""create or replace table wh.identity.linkage_records as
                    select {_LINKAGE_RECORD_COLS} from out_records""")
    # What tonight scored: every current profile, the pairs found among them, and the
    # model and surname frequencies they were scored with.
    mem.execute("create or replace table wh.identity.linkage_scoring_state as select * from scoring_state")
    mem.execute("create or replace table wh.identity.linkage_scored_profiles as select pkey from profiles order by pkey")
    mem.execute("""create or replace table wh.identity.linkage_scored_pairs as
                   select least(pa.pkey, pb.pkey) as pkey_a, greatest(pa.pkey, pb.pkey) as pkey_b,
                          s.match_weight, s.match_probability
                   from scored_pairs s join profiles pa on pa.pid = s.a join profiles pb on pb.pid = s.b
                   order by pkey_a, pkey_b""")
    mem.execute("create or replace table wh.identity.linkage_term_frequencies as select * from term_frequencies")
    # What the next night needs to link only what changes.
    mem.execute(f"""create or replace table wh.identity.linkage_state as
                    select {STATE_VERSION} as state_version, '{gazetteer}' as gazetteer_sha256""")
    mem.execute("create or replace table wh.identity.linkage_profiles as select * from out_profiles order by pkey")
    mem.execute(f"""create or replace table wh.identity.linkage_person_addresses as
                    select {_ADDRESS_COLS} from persons_all order by person_id""")
    mem.execute("""create or replace table wh.identity.linkage_deliveries as
                   select contract_id, delivery_id, records from cur_deliveries order by contract_id, delivery_id""")


def _write_changes(mem: duckdb.DuckDBPyConnection) -> None:
    """Only what changed: the records and profiles linked again replace last night's rows of
    the people they held; the rows of people whose household or opt-out changed are replaced by
    the same rows with the new values. (Not updated in place: DuckDB's checkpoint then rewrites
    the updated column of every row group holding such a row, seconds for a handful of people;
    rows deleted and appended cost it almost nothing. Row order means nothing in these tables.)"""
    for table, cols, new in (("linkage.person_records", _RECORD_COLS, {"household_id", "opted_out"}),
                             ("identity.linkage_records", _LINKAGE_RECORD_COLS, {"household_id"})):
        moved = ", ".join(f"c.{c}" if c in new else f"t.{c}" for c in cols.split(", "))
        mem.execute(f"""create or replace temp table _changed_rows as select {moved}
                        from wh.{table} t join changed c on t.person_id = c.person_id
                        where t.person_id not in (select person_id from prev_ids)""")
        mem.execute(f"""delete from wh.{table} where person_id in (select person_id from prev_ids)
                        or person_id in (select person_id from changed)""")
        mem.execute(f"insert into wh.{table} select {cols} from out_records")
        mem.execute(f"insert into wh.{table} select {cols} from _changed_rows")
    for table, cols in (("linkage.persons", _PERSON_COLS), ("identity.linkage_person_addresses", _ADDRESS_COLS)):
        mem.execute(f"""delete from wh.{table} where person_id in (select person_id from prev_ids)
                        or person_id in (select person_id from changed)""")
        mem.execute(f"""insert into wh.{table} select {cols} from persons_all
                        where relinked or person_id in (select person_id from changed)""")
    mem.execute("delete from wh.identity.linkage_profiles where component in (select component from region_components)")
    mem.execute("insert into wh.identity.linkage_profiles select * from out_profiles")
    mem.execute("delete from wh.identity.linkage_scored_profiles where pkey in (select pkey from vanished)")
    mem.execute("insert into wh.identity.linkage_scored_profiles select pkey from new_profile_keys")
    mem.execute("""delete from wh.identity.linkage_scored_pairs
                   where pkey_a in (select pkey from vanished) or pkey_b in (select pkey from vanished)""")
    mem.execute("insert into wh.identity.linkage_scored_pairs select * from new_pairs_pk")
    mem.execute("""delete from wh.identity.linkage_deliveries d using removed_deliveries r
                   where d.contract_id = r.contract_id and d.delivery_id = r.delivery_id""")
    mem.execute("insert into wh.identity.linkage_deliveries select contract_id, delivery_id, records from new_deliveries")


def _clerical_review(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """Borderline pairs (review threshold <= p < match threshold) left in two different people,
    the profile delivered first on the left.

    A row depends on its pair and its two profiles (identifiers, first record, records,
    person). An incremental night changes those only for the profiles of the groups it links
    again: it replaces the rows of last night's people in those groups (`prev_ids`: a person
    never spans two groups) with the rows of pairs that have a profile linked tonight."""
    sides = ("forename", "surname", "date_of_birth", "sex", "postcode", "nhs_number", "uprn")
    first = "(x.first_contract_id, x.first_delivery_id, x.first_row_number) < (y.first_contract_id, y.first_delivery_id, y.first_row_number)"
    delta = delta and "linkage_clerical_review" in _tables(mem, "wh", "identity")
    pairs, profiles = "wh.identity.linkage_scored_pairs", "wh.identity.linkage_profiles"
    if delta:
        # The pairs with a profile linked tonight, and only their profiles (not a join of every
        # stored pair with every stored profile, twice).
        mem.execute(f"""create or replace temp table _review_pairs as select * from {pairs} s
                        where s.match_probability < {splink_model.MATCH_THRESHOLD}
                          and (s.pkey_a in (select pkey from out_profiles) or s.pkey_b in (select pkey from out_profiles))""")
        mem.execute(f"""create or replace temp table _review_profiles as select * from {profiles}
                        where pkey in (select pkey_a from _review_pairs union select pkey_b from _review_pairs)""")
        pairs, profiles = "_review_pairs", "_review_profiles"
    rows = f"""
        with s as (
            select s.match_probability, s.match_weight,
                   case when {first} then x.pkey else y.pkey end as pkey_l,
                   case when {first} then y.pkey else x.pkey end as pkey_r
            from {pairs} s
            join {profiles} x on x.pkey = s.pkey_a join {profiles} y on y.pkey = s.pkey_b
            where s.match_probability < {splink_model.MATCH_THRESHOLD})
        select s.match_probability, s.match_weight, a.person_id as person_id_l, b.person_id as person_id_r,
               {", ".join(f"a.{c} as {c}_l, b.{c} as {c}_r" for c in sides)},
               a.n_records as records_l, b.n_records as records_r
        from s join {profiles} a on a.pkey = s.pkey_l join {profiles} b on b.pkey = s.pkey_r
        where a.person_id <> b.person_id"""
    if delta:
        mem.execute("""delete from wh.identity.linkage_clerical_review
                       where person_id_l in (select person_id from prev_ids) or person_id_r in (select person_id from prev_ids)""")
        mem.execute(f"insert into wh.identity.linkage_clerical_review {rows}")
    else:
        mem.execute(f"""create or replace table wh.identity.linkage_clerical_review as {rows}
                        order by s.match_probability desc, person_id_l, person_id_r""")


def _count(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """The night's figures, from the tables as written (the same whether all or part was linked)."""
    q = lambda sql: mem.execute(sql).fetchall()[0][0]  # noqa: E731
    summary.records = q("select count(*) from wh.linkage.person_records")
    summary.opted_out_records = q("select count(*) from wh.linkage.person_records where opted_out")
    summary.records_by_method = dict(mem.execute(
        "select match_method, count(*) from wh.linkage.person_records group by 1 order by 1").fetchall())
    summary.persons = q("select count(*) from wh.linkage.persons")
    summary.households = q("select count(distinct household_id) from wh.linkage.persons")
    summary.opted_out_persons = q("select count(*) from wh.linkage.persons where opted_out")
    summary.persons_kept_from_last_night = summary.persons - summary.new_persons
    summary.profiles = q("select count(*) from wh.identity.linkage_profiles")
    summary.links_refused = q("select coalesce(sum(refused), 0) from wh.identity.linkage_profiles")
    summary.probabilistic_pairs_scored = q("select count(*) from wh.identity.linkage_scored_pairs")
    summary.clerical_review_pairs = q("select count(*) from wh.identity.linkage_clerical_review")


def _write_report(settings: Settings, summary: LinkageSummary) -> None:
    """The night's linkage report: counts only, no identifying values."""
    out = report_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(summary)
    (out / "linkage_summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def coverage_gaps(settings: Settings, contracts: dict[str, Contract]) -> dict[str, tuple[int, int]]:
    """Extracts whose valid rows and person records differ in number: {contract: (valid, linked)}."""
    from orchestration.partnership.warehouse.connection import connect

    gaps = {}
    with connect(settings.warehouse_path, read_only=True) as con:
        linked = dict(con.execute(
            "select contract_id, count(*) from linkage.person_records group by 1").fetchall())
        valid = _tables(con, con.execute("select current_database()").fetchall()[0][0], "valid")
        for source in person_sources(contracts):
            if source.contract.table not in valid:
                continue
            n = con.execute(f'select count(*) from valid."{source.contract.table}"').fetchall()[0][0]
            if n != linked.get(source.id, 0):
                gaps[source.id] = (n, linked.get(source.id, 0))
    return gaps
