"""One release asset per sharing protocol, gated explicitly on its sources' contracts.

Dagster does not stop Python assets downstream of a failed dbt test on its own
(dagster issue 25112), so each release checks, before building, that no extract of its
controllers stands rejected; the release engine then audits its output before publishing."""

import dagster as dg

from orchestration.defs.catalogue import contracts, protocols
from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.night import blocking_rejections
from orchestration.partnership.protocols import Protocol
from orchestration.partnership.release import release
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
        held = {
            c.id: reasons
            for c in contracts().values()
            if c.agency in protocol.doc["controllers"] and (reasons := blocking_rejections(settings, c.id))
        }
        if held:
            detail = "; ".join(f"{cid}: {r[0]}" for cid, r in sorted(held.items()))
            raise dg.Failure(f"release {protocol.id} held back: a source delivery stands rejected ({detail})")
        result = release(settings.warehouse_path, settings.releases_dir, protocol, run_date())
        context.log.info(f"release {protocol.id}: {result.status} {result.reason}".strip())
        return dg.MaterializeResult(metadata={
            "status": result.status, "reason": result.reason,
            "path": str(result.path) if result.path else "", **{f"rows_{k}": v for k, v in result.row_counts.items()},
        })

    return _asset


def build_release_assets() -> list[dg.AssetsDefinition]:
    return [_release_asset(p) for p in protocols().values()]
