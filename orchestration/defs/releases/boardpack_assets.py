"""One board-pack asset per aggregate protocol with indicator values, downstream of its release.

The pack is built from the release folder alone (never the warehouse), written into it, and
e-mailed to the protocol's distribution list when SMTP is configured and the release's content
differs from the last pack e-mailed. A night that left the release unchanged renders nothing:
the pack already in the release folder is current."""

import dagster as dg

from orchestration.partnership.boardpack.build import CHART_CACHE
from orchestration.partnership.boardpack.model import VALUES_SOURCE
from orchestration.partnership.catalogue import protocols
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import get_settings, run_date


def has_board_pack(protocol: Protocol) -> bool:
    return protocol.level == "aggregate" and any(o["source"] == VALUES_SOURCE for o in protocol.outputs)


def _board_pack_asset(protocol: Protocol) -> dg.AssetsDefinition:
    @dg.asset(
        key=["board_packs", protocol.id],
        deps=[dg.AssetKey(["releases", protocol.id])],
        group_name="releases",
        kinds={"html", "pdf"},
        description=f"Board pack for {protocol.doc['recipient']['name']}: HTML and PDF built from the {protocol.id} release.",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from orchestration.partnership.boardpack.build import (
            refresh_pack,  # imports the renderer only when it renders
        )

        settings = get_settings()
        refreshed = refresh_pack(settings.reports_dir, settings.releases_dir, protocol, run_date(),
                                 chart_cache=settings.data_dir / CHART_CACHE)
        if refreshed is None:
            context.log.info(f"board pack {protocol.id}: no release for {run_date()}; nothing to build")
            return dg.MaterializeResult(metadata={"status": "no release", "path": ""})
        result, mail = refreshed
        what = ("current: its release did not change, nothing rendered" if result.status == "current" else result.status)
        context.log.info(f"board pack {protocol.id} ({result.pdf.parent}): {what}; e-mail: {mail.detail or mail.status}")
        return dg.MaterializeResult(metadata={
            "status": result.status, "html": str(result.html), "pdf": str(result.pdf),
            "release_content_sha256": result.content_sha256, "mail": mail.status,
            "recipients": ", ".join(mail.recipients),
        })

    return _asset


def build_board_pack_assets() -> list[dg.AssetsDefinition]:
    return [_board_pack_asset(p) for p in protocols().values() if has_board_pack(p)]
