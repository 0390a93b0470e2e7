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

and an aggregate report (no identifying values) to `data/reports/linkage/`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from ..contracts import Contract
from ..settings import Settings
from . import model as splink_model
from .cluster import NO_VALUE, ConstrainedUnionFind, assign_stable_ids
from .inputs import OPT_OUT_CONTRACT, PersonSource, address_postcodes_sql, nhs_sql, person_sources, records_sql

# Match methods, strongest first: the order links are applied in.
METHODS = ("nhs_number", "upn", "local_id", "uprn_dob", "probabilistic")
PERSON_PREFIX = "LP"
HOUSEHOLD_PREFIX = "LH"
_IDENT = ("nhs_number", "upn", "uprn", "local_id", "forename", "surname", "date_of_birth", "sex", "postcode")
# Bump when what is compared or kept changes (normalisation, derived columns, the review
# threshold): stored scores are then discarded and every profile is scored again.
SCORING_VERSION = 3
STATE_TABLES = ("linkage_scoring_state", "linkage_scored_profiles", "linkage_scored_pairs", "linkage_term_frequencies")


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

    `retrain`: train the model again (and so score every profile again); `rescore`: score
    every profile again with the same model (what a night without stored scores does)."""
    summary = LinkageSummary()
    clock = _Clock()
    work = settings.data_dir / "linkage"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    mem = duckdb.connect()
    try:
        mem.execute(f"set memory_limit = '{memory_limit}'")
        mem.execute(f"set temp_directory = '{work / 'tmp'}'")
        mem.execute("set preserve_insertion_order = false")
        _read_inputs(mem, settings, person_sources(contracts))
        clock.lap("read")
        _profiles(mem, summary)
        clock.lap("profiles")
        path = model_path(settings)
        if retrain or not path.exists():
            splink_model.train(mem, "splink_input", path)
            summary.model_trained = True
        summary.model_path = str(path)
        clock.lap("train")
        _score(mem, path, summary, rescore)
        clock.lap("predict")
        _cluster(mem, summary)
        clock.lap("cluster")
        _person_ids(mem, summary)
        _households(mem, summary)
        _opt_outs(mem, summary)
        _clerical_review(mem, summary)
        clock.lap("ids_households_optouts")
        _write(mem, settings, summary)
        clock.lap("write")
    finally:
        mem.close()
    summary.seconds = clock.times
    _write_report(settings, summary)
    return summary


def _read_inputs(mem: duckdb.DuckDBPyConnection, settings: Settings, sources: list[PersonSource]) -> None:
    mem.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
    try:
        valid = _tables(mem, "wh", "valid")
        mem.execute(f"""create table records as
            select row_number() over (order by contract_id, delivery_id, row_number) - 1 as rid, *
            from ({records_sql(sources, valid, 'wh.')})""")
        # Last night's ids, so that people keep theirs.
        if "person_records" in _tables(mem, "wh", "linkage"):
            mem.execute("""create table previous as select contract_id, delivery_id, row_number, person_id, household_id
                           from wh.linkage.person_records""")
        else:
            mem.execute("""create table previous (contract_id varchar, delivery_id bigint, row_number bigint,
                           person_id varchar, household_id varchar)""")
        if "id_sequence" in _tables(mem, "wh", "linkage"):
            mem.execute("create table id_sequence as select * from wh.linkage.id_sequence")
        else:
            mem.execute("create table id_sequence (kind varchar, next_number bigint)")
        # What earlier nights scored (kept only while the model and what is compared are unchanged).
        identity = _tables(mem, "wh", "identity")
        if set(STATE_TABLES) <= identity:
            for t in STATE_TABLES:
                mem.execute(f"create table prev_{t} as select * from wh.identity.{t}")
        else:
            mem.execute("create table prev_linkage_scoring_state (model_sha256 varchar, scoring_version integer)")
            mem.execute("create table prev_linkage_scored_profiles (pkey uhugeint)")
            mem.execute("create table prev_linkage_scored_pairs (pkey_a uhugeint, pkey_b uhugeint, match_weight double, "
                        "match_probability double)")
            mem.execute(f"create table prev_linkage_term_frequencies ({splink_model.TF_COLUMN} varchar, "
                        f"tf_{splink_model.TF_COLUMN} double)")
        # The address gazetteer, to compare records that carry a UPRN but no postcode (fire).
        lookup = settings.reference_dir / "address_lookup.csv"
        if lookup.exists():
            mem.execute(f"create table address_postcodes as {address_postcodes_sql(str(lookup))}")
        else:
            mem.execute("create table address_postcodes (uprn varchar, postcode varchar)")
        # The national data opt-out list is a monthly full snapshot: only its latest accepted delivery counts.
        if OPT_OUT_CONTRACT in valid and OPT_OUT_CONTRACT in _tables(mem, "wh", "identity"):
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
    finally:
        mem.execute("detach wh")


def _profiles(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Records with identical identifiers are one profile; linkage works on profiles.

    A profile's `pkey` is a hash of what is compared about it (its identifiers and the postcode
    compared, which for a record with a UPRN and no postcode is its address's postcode): the
    same profile has the same key every night, which is how a night knows what it scored."""
    mem.execute(f"""create or replace table records as
        select r.*, md5_number(to_json({{{", ".join(f"'{c}': r.{c}" for c in _IDENT)},
                                          'compared_postcode': coalesce(r.postcode, a.postcode)}})) as pkey,
               coalesce(r.postcode, a.postcode) as compared_postcode
        from records r left join address_postcodes a on a.uprn = r.uprn and r.postcode is null""")
    cols = ", ".join(f"any_value({c}) as {c}" for c in (*_IDENT, "compared_postcode"))
    mem.execute(f"""create table profiles as
        select row_number() over (order by min(rid)) - 1 as pid, pkey, {cols}, min(rid) as first_rid,
               count(*) as n_records
        from records group by pkey""")
    mem.execute("create table record_profile as select r.rid, p.pid from records r join profiles p using (pkey)")
    mem.execute("""create table splink_input as
        select pid as unique_id, forename, surname, strftime(date_of_birth, '%Y-%m-%d') as dob, sex,
               compared_postcode as postcode, nhs_number, uprn
        from profiles""")
    summary.records = mem.execute("select count(*) from records").fetchall()[0][0]
    summary.profiles = mem.execute("select count(*) from profiles").fetchall()[0][0]


def _score(mem: duckdb.DuckDBPyConnection, path: Path, summary: LinkageSummary, rescore: bool) -> None:
    """Scored pairs of tonight's profiles, in `scored_pairs` (a, b: pids).

    Pairs between profiles an earlier night scored are taken from the stored scores; only
    pairs with at least one new profile are scored. The surname frequencies belong with the
    model: computed from the profiles of the first night a model scores, then kept. Stored
    scores and frequencies count only when they came from the same model and the same
    comparison inputs (SCORING_VERSION); otherwise every profile is scored again."""
    digest = splink_model.model_hash(path)
    state = mem.execute("select model_sha256, scoring_version from prev_linkage_scoring_state").fetchall()
    same_model = not summary.model_trained and state == [(digest, SCORING_VERSION)]
    full = rescore or not same_model
    if same_model:
        mem.execute("create table term_frequencies as select * from prev_linkage_term_frequencies")
    else:
        mem.execute(f"create table term_frequencies as {splink_model.term_frequencies_sql('splink_input')}")
    if full:
        mem.execute("create table scored_profiles as select pkey from prev_linkage_scored_profiles where false")
    else:
        mem.execute("create table scored_profiles as select * from prev_linkage_scored_profiles")
    mem.execute("""create table scoring_input as
        select s.*, k.pkey is null as is_new from splink_input s join profiles p on p.pid = s.unique_id
        left join scored_profiles k on k.pkey = p.pkey""")
    n_new, n_old = mem.execute("select count(*) filter (where is_new), count(*) filter (where not is_new) "
                               "from scoring_input").fetchall()[0]
    if n_new:
        pred = splink_model.predict(mem, "scoring_input", path, "new_pairs", "term_frequencies", new_only=n_old > 0)
        summary.pairs_found_tonight = pred.pairs
    else:
        mem.execute("create table new_pairs (a bigint, b bigint, match_weight double, match_probability double)")
    kept = "" if full else """
        union all
        select least(pa.pid, pb.pid), greatest(pa.pid, pb.pid), s.match_weight, s.match_probability
        from prev_linkage_scored_pairs s join profiles pa on pa.pkey = s.pkey_a join profiles pb on pb.pkey = s.pkey_b"""
    mem.execute(f"create table scored_pairs as select a, b, match_weight, match_probability from new_pairs {kept}")
    summary.full_rescore = full
    summary.profiles_scored = n_new
    summary.records_scored = mem.execute("""select coalesce(sum(p.n_records), 0) from scoring_input s
                                            join profiles p on p.pid = s.unique_id where s.is_new""").fetchall()[0][0]
    summary.probabilistic_pairs_scored = mem.execute("select count(*) from scored_pairs").fetchall()[0][0]
    mem.execute(f"create table scoring_state as select '{digest}' as model_sha256, {SCORING_VERSION} as scoring_version")


def _rule_edges(mem: duckdb.DuckDBPyConnection, partition: str, where: str) -> dict[str, np.ndarray]:
    """Each profile to the first profile sharing its key (a star per key: enough to connect them)."""
    return _numpy(mem, f"""
        select pid as a, first_value(pid) over (partition by {partition} order by pid) as b
        from profiles where {where} qualify a <> b order by b, a""")


def _cluster(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    codes = _codes(mem)
    uf = ConstrainedUnionFind(codes["nhs"], codes["upn"])
    rules = {
        "nhs_number": ("nhs_number", "nhs_number is not null"),
        "upn": ("upn", "upn is not null"),
        "local_id": ("local_id", "local_id is not null"),
        # UPRN + date of birth, and the same forename initial so that twins stay two people.
        "uprn_dob": ("uprn, date_of_birth, substr(forename, 1, 1)", "uprn is not null and date_of_birth is not null"),
    }
    for method, (partition, where) in rules.items():
        e = _rule_edges(mem, partition, where)
        uf.union_all(e["a"], e["b"], METHODS.index(method))
    e = _numpy(mem, f"""select a, b, match_probability from scored_pairs
                        where match_probability >= {splink_model.MATCH_THRESHOLD}
                        order by match_probability desc, a, b""")
    uf.union_all(e["a"], e["b"], METHODS.index("probabilistic"), e["match_probability"])
    summary.links_refused = uf.refused
    roots = uf.roots()
    import polars as pl

    frame = pl.DataFrame({"pid": np.arange(len(roots), dtype=np.int64), "root": roots,
                          "method_code": uf.method.astype(np.int64), "probability": uf.probability})
    mem.register("_clusters", frame)
    mem.execute("create table profile_cluster as select * from _clusters")
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


def _stable(mem: duckdb.DuckDBPyConnection, kind: str, prefix: str, group_sql: str, previous_col: str) -> tuple[int, int]:
    """Give each group (query `group_sql`: rid, grp numbered 0..n-1) an id, keeping last night's."""
    mem.execute(f"create or replace temp table _groups as {group_sql}")
    n_groups = mem.execute("select coalesce(max(grp) + 1, 0) from _groups").fetchall()[0][0]
    counts = mem.execute(f"""
        select g.grp, p.{previous_col}, count(*) from _groups g
        join records r using (rid)
        join previous p on p.contract_id = r.contract_id and p.delivery_id = r.delivery_id and p.row_number = r.row_number
        where p.{previous_col} is not null group by all""").fetchall()
    first = mem.execute("select min(rid) from _groups group by grp order by grp").fetchall()
    ids, nxt = assign_stable_ids(n_groups, counts, [f[0] for f in first], _next_number(mem, kind), prefix)
    import polars as pl

    mem.register("_ids", pl.DataFrame({"grp": np.arange(n_groups, dtype=np.int64), "id": ids}))
    mem.execute(f"create or replace table {kind}_ids as select g.rid, i.id from _groups g join _ids i using (grp)")
    mem.unregister("_ids")
    mem.execute("delete from id_sequence where kind = ?", [kind])
    mem.execute("insert into id_sequence values (?, ?)", [kind, nxt])
    kept = len({c[1] for c in counts} & set(ids))
    return n_groups, kept


def _person_ids(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    n, kept = _stable(mem, "person", PERSON_PREFIX, """
        select rp.rid, dense_rank() over (order by pc.root) - 1 as grp
        from record_profile rp join profile_cluster pc using (pid)""", "person_id")
    summary.persons, summary.persons_kept_from_last_night, summary.new_persons = n, kept, n - kept
    # How each record was matched: the first rule that linked its profile; a profile whose
    # records are the person's only ones is a singleton; repeated identical records otherwise.
    methods = ", ".join(f"({i}, '{m}')" for i, m in enumerate(METHODS))
    mem.execute(f"""create table record_person as
        with m(code, name) as (values {methods}),
        sized as (select i.rid, i.id as person_id, count(*) over (partition by i.id) as person_records from person_ids i)
        select r.rid, s.person_id,
               case when m.name is not null then m.name
                    when s.person_records = 1 then 'singleton'
                    else 'identical_identifiers' end as match_method,
               case when m.name = 'probabilistic' then pc.probability end as match_probability
        from records r join sized s using (rid) join record_profile rp using (rid)
        join profile_cluster pc using (pid) left join m on m.code = pc.method_code""")
    summary.records_by_method = dict(mem.execute(
        "select match_method, count(*) from record_person group by 1 order by 1").fetchall())


def _households(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """A person's household: the UPRN of their latest record that has one; else the UPRN that
    people with the same surname at the same postcode have; else that surname and postcode."""
    mem.execute("""create table person_address as
        with rp as (select r.*, p.person_id from records r join record_person p using (rid)),
        last_uprn as (select person_id, arg_max(uprn, (delivery_id, row_number)) as uprn
                      from rp where uprn is not null group by 1),
        last_addr as (select person_id, arg_max(postcode, (delivery_id, row_number)) as postcode,
                             arg_max(surname, (delivery_id, row_number)) as surname
                      from rp where postcode is not null and surname is not null group by 1),
        addr_uprn as (select a.postcode, a.surname, min(u.uprn) as uprn from last_addr a join last_uprn u using (person_id)
                      group by 1, 2 having count(distinct u.uprn) = 1),
        persons as (select distinct person_id from rp)
        select p.person_id,
               coalesce('U:' || u.uprn, 'U:' || au.uprn, 'A:' || a.postcode || '|' || a.surname, 'P:' || p.person_id)
                   as household_key
        from persons p left join last_uprn u using (person_id) left join last_addr a using (person_id)
        left join addr_uprn au on au.postcode = a.postcode and au.surname = a.surname""")
    n, _ = _stable(mem, "household", HOUSEHOLD_PREFIX, """
        select rp.rid, dense_rank() over (order by pa.household_key) - 1 as grp
        from record_person rp join person_address pa using (person_id)""", "household_id")
    summary.households = n


def _opt_outs(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Flagged once, on the person: any of their records carries an NHS number on the list."""
    mem.execute("""create table opted_out_persons as
        select distinct p.person_id from record_person p join records r using (rid)
        join opt_outs o using (nhs_number)""")
    summary.opted_out_persons = mem.execute("select count(*) from opted_out_persons").fetchall()[0][0]


def _clerical_review(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Borderline pairs (review threshold <= p < match threshold) left in two different people."""
    mem.execute(f"""create table clerical_review as
        with pc as (select pid, min(person_id) as person_id from record_profile join record_person using (rid) group by 1)
        select s.match_probability, s.match_weight,
               pa.person_id as person_id_l, pb.person_id as person_id_r,
               a.forename as forename_l, b.forename as forename_r, a.surname as surname_l, b.surname as surname_r,
               a.date_of_birth as date_of_birth_l, b.date_of_birth as date_of_birth_r, a.sex as sex_l, b.sex as sex_r,
               a.postcode as postcode_l, b.postcode as postcode_r, a.nhs_number as nhs_number_l, b.nhs_number as nhs_number_r,
               a.uprn as uprn_l, b.uprn as uprn_r, a.n_records as records_l, b.n_records as records_r
        from scored_pairs s join profiles a on a.pid = s.a join profiles b on b.pid = s.b
        join pc pa on pa.pid = s.a join pc pb on pb.pid = s.b
        where s.match_probability < {splink_model.MATCH_THRESHOLD} and pa.person_id <> pb.person_id
        order by s.match_probability desc, person_id_l, person_id_r""")
    summary.clerical_review_pairs = mem.execute("select count(*) from clerical_review").fetchall()[0][0]


def _write(mem: duckdb.DuckDBPyConnection, settings: Settings, summary: LinkageSummary) -> None:
    mem.execute("""create table out_person_records as
        select r.contract_id, r.delivery_id, r.row_number, p.person_id, h.id as household_id, p.match_method,
               p.match_probability, o.person_id is not null as opted_out
        from records r join record_person p using (rid) join household_ids h using (rid)
        left join opted_out_persons o using (person_id)""")
    summary.opted_out_records = mem.execute(
        "select count(*) from out_person_records where opted_out").fetchall()[0][0]
    mem.execute(f"attach '{settings.warehouse_path}' as wh")
    try:
        mem.execute("begin transaction")
        for schema in ("linkage", "identity"):
            mem.execute(f"create schema if not exists wh.{schema}")
        mem.execute("""create or replace table wh.linkage.person_records as
            select * from out_person_records order by contract_id, delivery_id, row_number""")
        mem.execute("""create or replace table wh.linkage.persons as
            select person_id, min(household_id) as household_id, bool_or(opted_out) as opted_out, count(*) as records
            from out_person_records group by person_id order by person_id""")
        mem.execute("create or replace table wh.linkage.id_sequence as select * from id_sequence order by kind")
        mem.execute(f"""create or replace table wh.identity.linkage_records as
            select r.contract_id, r.delivery_id, r.row_number, o.person_id, o.household_id, {", ".join(f"r.{c}" for c in _IDENT)}
            from records r join out_person_records o using (contract_id, delivery_id, row_number)
            order by r.contract_id, r.delivery_id, r.row_number""")
        mem.execute("create or replace table wh.identity.linkage_clerical_review as select * from clerical_review")
        # What tonight scored: every current profile, the pairs found among them, and the
        # model and surname frequencies they were scored with.
        mem.execute("create or replace table wh.identity.linkage_scoring_state as select * from scoring_state")
        mem.execute("""create or replace table wh.identity.linkage_scored_profiles as
                       select pkey from profiles order by pkey""")
        mem.execute("""create or replace table wh.identity.linkage_scored_pairs as
                       select pa.pkey as pkey_a, pb.pkey as pkey_b, s.match_weight, s.match_probability
                       from scored_pairs s join profiles pa on pa.pid = s.a join profiles pb on pb.pid = s.b
                       order by pkey_a, pkey_b""")
        mem.execute("create or replace table wh.identity.linkage_term_frequencies as select * from term_frequencies")
        mem.execute("commit")
    except BaseException:
        mem.execute("rollback")
        raise
    finally:
        mem.execute("detach wh")


def _write_report(settings: Settings, summary: LinkageSummary) -> None:
    """The night's linkage report: counts only, no identifying values."""
    out = report_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(summary)
    (out / "linkage_summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def coverage_gaps(settings: Settings, contracts: dict[str, Contract]) -> dict[str, tuple[int, int]]:
    """Extracts whose valid rows and person records differ in number: {contract: (valid, linked)}."""
    from ..warehouse import connect

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
