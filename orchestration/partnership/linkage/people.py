"""People: profiles joined by the deterministic rules and by scored pairs (under the cannot-link
rule) into persons, each keeping the id most of its records had, and how each was matched."""

from __future__ import annotations

import duckdb
import numpy as np

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.linkage.cluster import (
    NO_VALUE,
    ConstrainedUnionFind,
    assign_stable_ids,
)
from orchestration.partnership.linkage.state import (
    KEY,
    METHODS,
    PERSON_PREFIX,
    LinkageSummary,
    numpy_columns,
)


def _rule_edges(mem: duckdb.DuckDBPyConnection, partition: str, where: str) -> dict[str, np.ndarray]:
    """Each profile to the first profile sharing its key (a star per key: enough to connect them)."""
    return numpy_columns(mem, f"""
        select pid as a, first_value(pid) over (partition by {partition} order by pid) as b
        from profiles where {where} qualify a <> b order by b, a""")


def cluster_profiles(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
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
    e = numpy_columns(mem, f"""select a, b, match_probability from scored_pairs
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
    return numpy_columns(mem, f"""
        with n as (select nhs_number, row_number() over (order by nhs_number) - 1 as code
                   from (select distinct nhs_number from profiles where nhs_number is not null)),
             u as (select upn, row_number() over (order by upn) - 1 as code
                   from (select distinct upn from profiles where upn is not null))
        select p.pid, coalesce(n.code, {NO_VALUE}) as nhs, coalesce(u.code, {NO_VALUE}) as upn
        from profiles p left join n using (nhs_number) left join u using (upn) order by p.pid""")


def _next_number(mem: duckdb.DuckDBPyConnection, kind: str) -> int:
    row = mem.execute("select next_number from id_sequence where kind = ?", [kind]).fetchall()
    return int(row[0][0]) if row else 1


def assign_ids(mem: duckdb.DuckDBPyConnection, kind: str, prefix: str, n_groups: int,
            counts: list[tuple[int, str, int]], first: list[int]) -> list[str]:
    """Ids for groups 0..n-1 (see `assign_stable_ids`), moving the id sequence on."""
    ids, nxt = assign_stable_ids(n_groups, counts, first, _next_number(mem, kind), prefix)
    mem.execute("delete from id_sequence where kind = ?", [kind])
    mem.execute("insert into id_sequence values (?, ?)", [kind, nxt])
    return ids


def assign_person_ids(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
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
    ids = assign_ids(mem, "person", PERSON_PREFIX, n_groups, counts, first)
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


def summarise_persons(mem: duckdb.DuckDBPyConnection) -> None:
    """`region_persons`: each person linked tonight with their records, first record and latest
    address (what their household is worked out from)."""
    # From the person's profiles: a profile's records share its identifiers, so the person's
    # latest record with a UPRN is the latest record of the latest of their profiles with one.
    # (`last_at` orders records by (delivery, row); `pid` orders profiles by first record.)
    latest = "last_at"
    mem.execute(f"""create table region_persons as
        with pp as (select p.*, m.person_id from profiles p join profile_person m using (pid))
        select person_id, cast(sum(n_records) as bigint) as records,
               {", ".join(f"arg_min(first_{k}, pid) as first_{k}" for k in KEY)},
               arg_max(uprn, {latest}) filter (where uprn is not null) as last_uprn,
               arg_max(postcode, {latest}) filter (where postcode is not null and surname is not null) as last_postcode,
               arg_max(surname, {latest}) filter (where postcode is not null and surname is not null) as last_surname
        from pp group by person_id""")
