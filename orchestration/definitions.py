"""The Dagster code location: gathers each concern's definitions."""

import dagster as dg

from orchestration.defs.dbt.assets import dbt_resource, partnership_dbt_models
from orchestration.defs.ingestion.assets import build_ingestion_assets
from orchestration.defs.jobs import nightly_job, nightly_schedule
from orchestration.defs.linkage.assets import person_index
from orchestration.defs.releases.assets import build_release_assets
from orchestration.defs.releases.boardpack_assets import build_board_pack_assets

defs = dg.Definitions(
    assets=[*build_ingestion_assets(), person_index, partnership_dbt_models, *build_release_assets(),
            *build_board_pack_assets()],
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    resources={"dbt": dbt_resource},
)
