"""Ingestion: register landed files, then one asset per agency extract (its `valid` table)."""

import dagster as dg

from orchestration.partnership.catalogue import contracts
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.ingest.night import process_extract, register_deliveries
from orchestration.partnership.settings import get_settings

DELIVERIES = dg.AssetKey(["ops", "deliveries"])
POOL = "warehouse"  # every writer of the DuckDB file shares one slot


@dg.asset(key=DELIVERIES, group_name="ingestion", pool=POOL,
          description="Every landed file, registered once by path and sha256 (ops.deliveries).")
def deliveries(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    new = register_deliveries(get_settings(), contracts())
    context.log.info(f"{len(new)} new file(s) registered")
    return dg.MaterializeResult(metadata={"new_deliveries": len(new)})


def extract_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["valid", contract.id])


def _extract_asset(contract: Contract) -> dg.AssetsDefinition:
    key = extract_key(contract)

    @dg.asset(
        key=key,
        deps=[DELIVERIES],
        group_name="ingestion",
        pool=POOL,
        kinds={"duckdb", "polars"},
        owners=[f"team:{contract.agency}"],
        tags={"agency": contract.agency},
        description=f"{contract.title}: contract-valid rows (contract {contract.id} v{contract.version}).",
        check_specs=[
            # Not a Dagster-blocking check: the dbt build would be skipped whole. What is downstream
            # of this extract is held back explicitly (dbt --exclude, release gates) while it fails.
            dg.AssetCheckSpec("contract_file_level", asset=key,
                              description="No delivery of this extract stands rejected (file-level contract rules)."),
            dg.AssetCheckSpec("quarantine_within_tolerance", asset=key,
                              description="Quarantined share of rows within the contract's tolerance; batch rules met."),
        ],
    )
    def _asset(context: dg.AssetExecutionContext):
        settings = get_settings()
        # the key checked, the deliveries loaded and the standing rejections read on one connection
        outcome = process_extract(settings, contract)
        standing = outcome.standing
        context.log.info(
            f"{contract.id}: {outcome.accepted} accepted, {outcome.rejected} rejected; "
            f"rows read {outcome.rows_read} = valid {outcome.rows_valid} + quarantined {outcome.rows_quarantined}"
        )
        yield dg.MaterializeResult(
            metadata={"accepted": outcome.accepted, "rejected": outcome.rejected, "rows_read": outcome.rows_read,
                      "rows_valid": outcome.rows_valid, "rows_quarantined": outcome.rows_quarantined,
                      "seconds": dg.MetadataValue.json({k: round(v, 3) for k, v in outcome.seconds.items()})},
        )
        yield dg.AssetCheckResult(
            check_name="contract_file_level", passed=not standing, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rejected_deliveries": dg.MetadataValue.md("\n".join(f"- {r}" for r in standing) or "none")},
        )
        yield dg.AssetCheckResult(
            check_name="quarantine_within_tolerance", passed=not outcome.warnings, severity=dg.AssetCheckSeverity.WARN,
            metadata={"warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in outcome.warnings) or "none")},
        )

    return _asset


def build_ingestion_assets() -> list[dg.AssetsDefinition]:
    return [deliveries] + [_extract_asset(c) for c in contracts().values()]
