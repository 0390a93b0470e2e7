"""Probabilistic scoring: the Splink pairs of tonight's new profiles, and the scored pairs among
the profiles being linked (kept scores of earlier nights included)."""

from __future__ import annotations

from pathlib import Path

import duckdb

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.linkage.state import (
    SCORING_VERSION,
    SPLINK_SELECT,
    STATE_TABLES,
    LinkageSummary,
    tables,
)


def score_new_profiles(mem: duckdb.DuckDBPyConnection, path: Path, summary: LinkageSummary, rescore: bool) -> None:
    """Scored pairs of tonight's new profiles, in `new_pairs_pk` (by profile key, smaller first).

    Pairs between profiles an earlier night scored are kept in the stored scores; only
    pairs with at least one new profile are scored. The surname frequencies belong with the
    model: computed from the profiles of the first night a model scores, then kept. Stored
    scores and frequencies count only when they came from the same model and the same
    comparison inputs (SCORING_VERSION); otherwise every profile is scored again."""
    digest = splink_model.model_hash(path)
    has_state = set(STATE_TABLES) <= tables(mem, "wh", "identity")
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
        select {SPLINK_SELECT}, pkey in (select pkey from new_keys) as is_new, n_records from all_profiles""")
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


def collect_scored_pairs(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """Scored pairs among the profiles being linked (`profiles`), in `scored_pairs` (a < b: pids)."""
    kept = "" if summary.full_rescore else """
        union all select pkey_a, pkey_b, match_weight, match_probability from wh.identity.linkage_scored_pairs"""
    mem.execute(f"""create table scored_pairs as
        with pk as (select pkey_a, pkey_b, match_weight, match_probability from new_pairs_pk {kept})
        select least(pa.pid, pb.pid) as a, greatest(pa.pid, pb.pid) as b, pk.match_weight, pk.match_probability
        from pk join profiles pa on pa.pkey = pk.pkey_a join profiles pb on pb.pkey = pk.pkey_b""")
