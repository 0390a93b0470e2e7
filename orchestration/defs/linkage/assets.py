"""Linkage: the person index, households and opt-out flags, after every extract, before dbt.

Both tables are dbt sources (`linkage.person_records`, `linkage.persons`), whose default
Dagster keys are the keys of this asset, so the graph joins by itself."""

import dagster as dg

from orchestration.defs.ingestion.assets import POOL, extract_key
from orchestration.partnership.catalogue import contracts
from orchestration.partnership.linkage import coverage_gaps, run_linkage
from orchestration.partnership.settings import get_settings

PERSON_RECORDS = dg.AssetKey(["linkage", "person_records"])
PERSONS = dg.AssetKey(["linkage", "persons"])


def _specs() -> list[dg.AssetSpec]:
    deps = [extract_key(c) for c in contracts().values()]
    return [
        dg.AssetSpec(PERSON_RECORDS, deps=deps, group_name="linkage", kinds={"duckdb", "splink"},
                     description="One row per valid person record: person_id (stable across nights), household_id, "
                                 "match method and probability, national data opt-out flag."),
        dg.AssetSpec(PERSONS, deps=deps, group_name="linkage", kinds={"duckdb"},
                     description="One row per linked person: household_id and national data opt-out flag."),
    ]


@dg.multi_asset(
    specs=_specs(),
    pool=POOL,
    name="linkage_person_index",
    check_specs=[dg.AssetCheckSpec("every_person_record_linked", asset=PERSON_RECORDS, blocking=True,
                                   description="Every valid row of every person extract has exactly one person.")],
)
def person_index(context: dg.AssetExecutionContext):
    settings = get_settings()
    s = run_linkage(settings, contracts())
    context.log.info(
        f"linkage: {s.records} records -> {s.persons} persons ({s.new_persons} new), {s.households} households, "
        f"{s.opted_out_persons} opted out; {s.clerical_review_pairs} pairs for clerical review; "
        f"{s.profiles_scored} of {s.profiles} profiles scored ({'full re-score' if s.full_rescore else 'new only'}), "
        f"{s.records_linked} records linked again ({'incremental' if s.incremental else 'all'})")
    meta = {"records": s.records, "persons": s.persons, "new_persons": s.new_persons,
            "persons_kept_from_last_night": s.persons_kept_from_last_night, "households": s.households,
            "opted_out_persons": s.opted_out_persons, "clerical_review_pairs": s.clerical_review_pairs,
            "links_refused": s.links_refused, "model_trained": s.model_trained,
            "profiles_scored": s.profiles_scored, "records_scored": s.records_scored,
            "pairs_found_tonight": s.pairs_found_tonight, "full_rescore": s.full_rescore,
            "incremental": s.incremental, "records_linked": s.records_linked,
            "records_by_method": dg.MetadataValue.json(s.records_by_method),
            "seconds": dg.MetadataValue.json(s.seconds)}
    yield dg.MaterializeResult(asset_key=PERSON_RECORDS, metadata=meta)
    yield dg.MaterializeResult(asset_key=PERSONS, metadata={"persons": s.persons, "opted_out": s.opted_out_persons})
    gaps = coverage_gaps(settings, contracts())
    yield dg.AssetCheckResult(
        asset_key=PERSON_RECORDS, check_name="every_person_record_linked", passed=not gaps,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"gaps": dg.MetadataValue.md("\n".join(f"- {c}: {v} valid, {l} linked" for c, (v, l) in gaps.items()) or "none")})
