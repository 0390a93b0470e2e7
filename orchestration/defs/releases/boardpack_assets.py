"""One board-pack asset per aggregate protocol with indicator values, downstream of its release.

The pack is built from the release folder alone (never the warehouse), written into it, and
e-mailed to the protocol's distribution list when SMTP is configured and the release's content
differs from the last pack e-mailed."""

import dagster as dg

from orchestration.defs.catalogue import protocols
from orchestration.partnership.boardpack.model import VALUES_SOURCE
from orchestration.partnership.protocols import Protocol
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
        from orchestration.partnership.boardpack.build import build_pack  # Altair, Playwright: only when run
        from orchestration.partnership.mail import send_pack

        settings = get_settings()
        folder = settings.releases_dir / protocol.id / run_date().isoformat()
        if not (folder / "manifest.json").exists():
            context.log.info(f"board pack {protocol.id}: no release for {run_date()}; nothing to build")
            return dg.MaterializeResult(metadata={"status": "no release", "path": ""})
        result = build_pack(folder, protocol)
        mail = send_pack(result, protocol, settings.reports_dir)
        context.log.info(f"board pack {protocol.id}: {result.status}; e-mail: {mail.detail or mail.status}")
        return dg.MaterializeResult(metadata={
            "status": result.status, "html": str(result.html), "pdf": str(result.pdf),
            "release_content_sha256": result.content_sha256, "mail": mail.status,
            "recipients": ", ".join(mail.recipients),
        })

    return _asset


def build_board_pack_assets() -> list[dg.AssetsDefinition]:
    return [_board_pack_asset(p) for p in protocols().values() if has_board_pack(p)]
