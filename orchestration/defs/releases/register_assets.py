"""The agreement register, after the night's releases: its pages and index, and the warnings of
agreements expiring, under review, unsigned or drifted (run log, the register, operations' e-mail)."""

import dagster as dg

from orchestration.partnership.catalogue import contracts, protocols
from orchestration.partnership.settings import get_settings, run_date


def build_register_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=["register", "agreements"],
        deps=[dg.AssetKey(["releases", pid]) for pid in sorted(protocols())],
        group_name="releases",
        kinds={"html", "pdf"},
        description="The agreement register: each protocol as a page (HTML and PDF) its IG lead signs off, and an "
                    "index of their states; warns of agreements expiring, under review or drifted.",
    )
    def agreement_register(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from orchestration.partnership.register.night import night_register

        done = night_register(get_settings(), run_date(), protocols(), contracts())
        for w in done.warnings:
            context.log.warning(f"agreement: {w}")
        context.log.info(f"agreement register {done.result.folder}: printed {', '.join(done.result.printed) or 'nothing'}"
                         f"; e-mail: {done.detail}")
        return dg.MaterializeResult(metadata={
            "index": str(done.result.folder / "index.html"), "warnings": len(done.warnings), "mail": done.mail,
            **{f"state_{s.protocol.id}": ", ".join(s.labels) for s in done.result.standings}})

    return agreement_register
