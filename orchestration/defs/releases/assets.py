"""One release asset per sharing protocol, gated explicitly on the extracts it reads.

Dagster does not stop Python assets downstream of a failed dbt test on its own, so each
release checks, before building, that no extract it reads (its release lineage, from the dbt
manifest and the protocol) stands rejected or unprocessed (partnership/ingest/holdback.py);
the release engine then audits its output before publishing. Every outcome is recorded as it
happened (partnership/releases/outcomes.py: ops.release_log, reports/releases/<date>.json, the
run's log); one that leaves the recipient without fresh data (held_back, blocked, failed)
fails the asset, so the night fails, says so, and alerts operations."""

import traceback

import dagster as dg

from orchestration.defs.dbt.project import partnership_dbt
from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.catalogue import contracts, protocols
from orchestration.partnership.ingest.holdback import held_extracts, protocol_hold_back
from orchestration.partnership.ops.rundate import RunDateError, check_run_date
from orchestration.partnership.releases import outcomes
from orchestration.partnership.releases.lineage import load_lineage
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.publish import (
    ReleaseBlocked,
    ReleaseResult,
    record_report,
    release,
)
from orchestration.partnership.settings import get_settings, run_date
from orchestration.partnership.warehouse.permissions import share_release


def _release_asset(protocol: Protocol) -> dg.AssetsDefinition:
    deps = sorted({tuple(o["source"].split(".")) for o in protocol.outputs})

    @dg.asset(
        key=["releases", protocol.id],
        deps=[dg.AssetKey(list(d)) for d in deps],
        group_name="releases",
        pool=POOL,
        kinds={"duckdb", "parquet"},
        description=f"{protocol.doc['title']} ({protocol.level}; recipient: {protocol.doc['recipient']['name']}).",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        settings = get_settings()
        try:  # launched by the schedule or the UI as well as `partnership run`: checked here too
            check_run_date(settings.warehouse_path, run_date())
        except RunDateError as exc:
            result = outcomes.record(settings.warehouse_path, settings.reports_dir, protocol, run_date(), "blocked",
                                     str(exc), context.run_id)
            raise dg.Failure(f"release {protocol.id} blocked: {result.reason}") from None
        lineage = load_lineage(partnership_dbt.manifest_path, protocols(), contracts())
        in_force, _ = protocol.in_force(run_date())  # out of force, nothing is built: the engine logs not_in_force
        held = protocol_hold_back(protocol, lineage, held_extracts(settings, contracts())) if in_force else {}
        if held:
            result = outcomes.record(settings.warehouse_path, settings.reports_dir, protocol, run_date(), "held_back",
                                     outcomes.held_back_reason(protocol, held), context.run_id)
            raise dg.Failure(f"release {protocol.id} held_back: {result.reason}")
        try:
            result = release(settings.warehouse_path, settings.releases_dir, protocol, run_date(),
                             reports_dir=settings.reports_dir, run_id=context.run_id)
        except ReleaseBlocked as exc:  # logged by the engine; the night's report says it too
            record_report(settings.reports_dir, run_date(), ReleaseResult(protocol.id, "blocked", reason=str(exc)),
                          context.run_id)
            raise dg.Failure(f"release {protocol.id} blocked: {outcomes.no_fresh_data(protocol)}: nothing was "
                             f"published: {exc}") from None
        except Exception as exc:
            result = outcomes.record(settings.warehouse_path, settings.reports_dir, protocol, run_date(), "failed",
                                     outcomes.failed_reason(protocol, exc), context.run_id)
            context.log.error(traceback.format_exc())  # the whole trace for operations; the alert takes the reason
            raise dg.Failure(f"release {protocol.id} failed: {result.reason}") from None
        if result.status == "blocked":  # a source it reads is not built: logged by the engine
            raise dg.Failure(f"release {protocol.id} blocked: {outcomes.no_fresh_data(protocol)}: {result.reason}")
        if result.path is not None and result.status in ("published", "unchanged"):
            # owner-only, unless the operator named the recipient's group for this protocol
            shared = share_release(result.path, protocol.id)
            if shared:
                context.log.info(f"release {protocol.id}: readable by group {shared}")
        if result.status == "published" and _printing_follows(context, protocol):
            import orchestration.partnership.boardpack.pdf as pdf
            pdf.warm()  # Chromium starts while the other releases run, not on the pack's or the register's clock
            context.log.info(f"release {protocol.id}: its board pack or register page is printed later in this run; "
                             "Chromium started for it")
        line = f"release {protocol.id}: {result.status} {result.reason or (result.path or '')}".strip()
        if result.status == "not_in_force":
            context.log.warning(line)  # an expired protocol: nothing produced, and why
        else:
            context.log.info(line)
        return dg.MaterializeResult(metadata={
            "status": result.status, "reason": result.reason,
            "path": str(result.path) if result.path else "", **{f"rows_{k}": v for k, v in result.row_counts.items()},
            **({"held_for_review": result.held_for_review} if protocol.level == "identifiable" else {}),
        })

    return _asset


# the night's executor (jobs.py), and Dagster's for `execute_in_process` (how runtime/night.py runs `partnership run`)
IN_PROCESS = ("in_process", "execute_in_process_executor")


def _printing_follows(context: dg.AssetExecutionContext, protocol: Protocol) -> bool:
    """This published release's board pack is built, or its agreement's register page (which lists
    the releases made) printed, later in this run, in this process (the in-process executor)."""
    from orchestration.defs.releases.boardpack_assets import has_board_pack

    if context.job_def.executor_def.name not in IN_PROCESS:
        return False
    selected = context.job_def.asset_layer.selected_asset_keys
    return (has_board_pack(protocol) and dg.AssetKey(["board_packs", protocol.id]) in selected) \
        or dg.AssetKey(["register", "agreements"]) in selected


def build_release_assets() -> list[dg.AssetsDefinition]:
    return [_release_asset(p) for p in protocols().values()]
