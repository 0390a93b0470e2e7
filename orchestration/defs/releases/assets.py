"""One release asset per sharing protocol, gated explicitly on its sources' contracts.

Dagster does not stop Python assets downstream of a failed dbt test on its own, so each
release checks, before building, that no extract of its controllers stands rejected
(partnership/ingest/holdback.py); the release engine then audits its output before publishing.
A protocol out of force, or whose source mart is not built, produces nothing and says why
(run log, ops.release_log, reports/releases/<date>.json); a failed audit fails the asset."""

import dagster as dg

from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.catalogue import contracts, protocols
from orchestration.partnership.ingest.holdback import held_extracts, protocol_hold_back
from orchestration.partnership.releases.publish import (
    ReleaseBlocked,
    ReleaseResult,
    record_report,
    release,
)
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import get_settings, run_date


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
        held = protocol_hold_back(protocol, contracts(), held_extracts(settings, contracts()))
        if held:
            detail = "; ".join(f"{cid}: {r[0]}" for cid, r in sorted(held.items()))
            raise dg.Failure(f"release {protocol.id} held back: a source delivery stands rejected ({detail})")
        try:
            result = release(settings.warehouse_path, settings.releases_dir, protocol, run_date(),
                             reports_dir=settings.reports_dir)
        except ReleaseBlocked as exc:
            record_report(settings.reports_dir, run_date(), ReleaseResult(protocol.id, "blocked", reason=str(exc)))
            raise dg.Failure(f"release {protocol.id} blocked by its audit; nothing was published: {exc}") from None
        if result.status == "published" and _pack_follows(context, protocol):
            import orchestration.partnership.boardpack.pdf as pdf
            pdf.warm()  # Chromium starts while the other releases run, not on the pack's clock
            context.log.info(f"release {protocol.id}: its board pack follows in this run; Chromium started for it")
        line = f"release {protocol.id}: {result.status} {result.reason or (result.path or '')}".strip()
        if result.status in ("not_in_force", "blocked"):
            context.log.warning(line)  # e.g. an expired protocol: nothing produced, and why
        else:
            context.log.info(line)
        return dg.MaterializeResult(metadata={
            "status": result.status, "reason": result.reason,
            "path": str(result.path) if result.path else "", **{f"rows_{k}": v for k, v in result.row_counts.items()},
        })

    return _asset


# the night's executor (jobs.py), and Dagster's for `execute_in_process` (how runtime/night.py runs `partnership run`)
IN_PROCESS = ("in_process", "execute_in_process_executor")


def _pack_follows(context: dg.AssetExecutionContext, protocol: Protocol) -> bool:
    """This release's board pack is built later in this run, in this process (the in-process executor)."""
    from orchestration.defs.releases.boardpack_assets import has_board_pack

    return (has_board_pack(protocol) and context.job_def.executor_def.name in IN_PROCESS
            and dg.AssetKey(["board_packs", protocol.id]) in context.job_def.asset_layer.selected_asset_keys)


def build_release_assets() -> list[dg.AssetsDefinition]:
    return [_release_asset(p) for p in protocols().values()]
