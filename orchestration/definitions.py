"""The Dagster code location: gathers each concern's definitions."""

import dagster as dg

from orchestration.defs.dbt.assets import dbt_resource, partnership_dbt_models
from orchestration.defs.freshness import freshness_checks
from orchestration.defs.ingestion.assets import build_ingestion_assets
from orchestration.defs.jobs import jobs, schedules
from orchestration.defs.linkage.assets import person_index
from orchestration.defs.releases.assets import build_release_assets
from orchestration.defs.releases.boardpack_assets import build_board_pack_assets
from orchestration.defs.releases.register_assets import build_register_asset
from orchestration.defs.sensors import landing_sensor, ops_failure_alert
from orchestration.partnership.warehouse.permissions import lock_down

lock_down()  # the code server and every run it starts write the data folder owner-only (0600/0700)

defs = dg.Definitions(
    assets=[*build_ingestion_assets(), person_index, partnership_dbt_models, *build_release_assets(),
            *build_board_pack_assets(), build_register_asset()],
    asset_checks=freshness_checks(),
    jobs=jobs,
    schedules=schedules,
    sensors=[landing_sensor, ops_failure_alert],
    resources={"dbt": dbt_resource},
)
