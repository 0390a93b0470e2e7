"""How dbt nodes become Dagster assets. Keys follow the warehouse: [schema, name].

Sources keep dagster-dbt's default key [source name, table] = ["valid", <agency>__<extract>],
which is the ingestion asset's key, so the graph joins by itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings


def _layer(props: Mapping[str, Any]) -> str:
    """The warehouse schema a node is built in (staging, intermediate, marts, reference)."""
    return props.get("config", {}).get("schema") or props.get("schema") or "dbt"


class PartnershipTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        # dbt's tests of sources stay observations: as checks of the ingestion assets they would
        # split the dbt build into several steps around the linkage asset.
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "ingestion"
        return _layer(dbt_resource_props)
