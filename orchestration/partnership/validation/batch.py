"""Batch-level contract rules as a Great Expectations 1.x suite, built from the contract.

The suite holds the rules that judge a delivery as a whole: its row count, the share of
missing values per column, and the freshness of its newest record. It runs once per
delivery on a small frame (the row number, whether each column with a null-rate limit holds a value, and the
typed freshness column), never on the row path: which rows are bad is pandera's job
(rows.py). Its verdicts are the batch rules' verdicts; nothing restates them.

With a `docs_dir`, a file-backed GX project under it keeps every validation result and
its Data Docs site (`<docs_dir>/data_docs/index.html`). Without one (`partnership check`),
an ephemeral context is used and nothing is written.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.validation.readers import ROW_NUMBER

SITE = "partnership"


@dataclass(frozen=True)
class BatchResult:
    rule: str  # row_count | <column>:null_rate | <column>:freshness
    severity: str  # error | warning
    passed: bool
    observed: str
    expected: str


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    _compile_templates_once()
    return gx


_TEMPLATE_CODE: dict[str, bytes] = {}


def _compile_templates_once() -> None:
    """Data Docs renders every page through a new Jinja environment (one per GX view object),
    which compiles GX's templates again: most of an extract's Data Docs build. One in-memory
    bytecode cache shared by those environments compiles each template once per process. Jinja
    checks each template's source checksum before it uses the cached code, and every environment
    GX makes has the same settings, so the pages are the same."""
    try:
        import jinja2
        from great_expectations.render.view.view import DefaultJinjaView
    except ImportError:  # GX or Jinja laid out otherwise: pages render as GX renders them
        return
    if getattr(DefaultJinjaView, "_partnership_bytecode_cache", None) is not None:
        return

    class _Memory(jinja2.BytecodeCache):
        def load_bytecode(self, bucket) -> None:
            code = _TEMPLATE_CODE.get(bucket.key)
            if code is not None:
                bucket.bytecode_from_string(code)

        def dump_bytecode(self, bucket) -> None:
            _TEMPLATE_CODE[bucket.key] = bucket.bytecode_to_string()

    cache = _Memory()
    get_template = DefaultJinjaView._get_template

    def _get_template(self, template_str: str):  # every page renders through it (GX introspects __init__: left alone)
        self.env.bytecode_cache = cache
        return get_template(self, template_str)

    DefaultJinjaView._get_template = _get_template
    DefaultJinjaView._partnership_bytecode_cache = cache


_CONTEXTS: dict[str, object] = {}


def _context(docs_dir: Path | None):
    gx = _gx()
    key = str(docs_dir) if docs_dir else ""
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    if docs_dir is None:
        ctx = gx.get_context(mode="ephemeral")
    else:
        docs_dir.mkdir(parents=True, exist_ok=True)
        ctx = gx.get_context(mode="file", project_root_dir=str(docs_dir))
        sites = ctx.list_data_docs_sites() or {}
        here = str(docs_dir / "data_docs")
        if SITE in sites and (sites[SITE].get("store_backend") or {}).get("base_directory") != here:
            # GX keeps the site's folder as an absolute path: a data folder moved or restored
            # elsewhere would write its pages into the old one.
            ctx.delete_data_docs_site(SITE)
            sites = {k: v for k, v in sites.items() if k != SITE}
        if SITE not in sites:
            ctx.add_data_docs_site(SITE, {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": here},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
        for other in [s for s in sites if s != SITE]:
            ctx.delete_data_docs_site(other)
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    _CONTEXTS[key] = ctx
    return ctx


def build_suite(contract: Contract, arrived_at: datetime, rows: int):
    """The contract's batch rules as GX expectations. `meta.rule` names the rule as reports do."""
    gx = _gx()
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=contract.id, meta={"contract": contract.id, "version": contract.version})
    if contract.row_count_min is not None:
        suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(
            min_value=contract.row_count_min, max_value=contract.row_count_max,
            meta={"rule": "row_count", "severity": contract.row_count_severity}))
    for col in contract.columns:
        if col.max_null_percent is not None:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(
                column=col.name, mostly=round(1 - col.max_null_percent / 100.0, 6),
                meta={"rule": f"{col.name}:null_rate", "severity": col.null_severity}))
    f = contract.freshness
    if f is not None and rows > 0:  # an empty delivery has no newest record; its row count rule judges it
        import pandas as pd

        oldest_allowed = pd.Timestamp(datetime.combine(arrived_at.date() - timedelta(days=f.max_age_days), datetime.min.time()))
        suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(
            column=f.column, min_value=oldest_allowed,
            meta={"rule": f"{f.column}:freshness", "severity": f.severity, "max_age_days": f.max_age_days}))
    return suite


def batch_frame(contract: Contract, text: pl.DataFrame, valid: pl.DataFrame):
    """The few columns the suite reads, as pandas: whether each null-rate column's value is present, the freshness column typed."""
    # A null-rate column goes over as presence only (1.0, or NaN where missing): the suite counts
    # missing values and nothing else, and a float column converts without a Python string per
    # row (identifying values never reach GX's stored results either).
    cols = [pl.col(ROW_NUMBER)] + [pl.when(pl.col(c.name).is_not_null()).then(1.0).otherwise(None).alias(c.name)
                                   for c in contract.columns if c.max_null_percent is not None]
    frame = text.select(cols)
    out = frame.to_pandas()
    if contract.freshness is not None:
        import numpy as np

        values = valid.get_column(contract.freshness.column).cast(pl.Datetime("us")).to_numpy()
        # Only valid rows carry a trustworthy typed value; pad to the batch's length with missing values.
        pad = np.full(len(out) - len(values), np.datetime64("NaT"), dtype="datetime64[us]")
        out[contract.freshness.column] = np.concatenate([values.astype("datetime64[us]"), pad])
    return out


def _describe(result) -> tuple[str, str]:
    cfg = result.expectation_config
    kw = cfg.kwargs
    r = result.result or {}
    kind = cfg.type
    if kind == "expect_table_row_count_to_be_between":
        return f"{r.get('observed_value')} rows", f"{kw.get('min_value')} to {kw.get('max_value')} rows"
    if kind == "expect_column_values_to_not_be_null":
        pct = r.get("unexpected_percent")
        limit = 100 * (1 - (kw.get("mostly") or 1))
        return (f"{pct:.1f}% missing" if pct is not None else "n/a"), f"at most {limit:g}% missing"
    if kind == "expect_column_max_to_be_between":
        obs = r.get("observed_value")
        return (f"newest {str(obs)[:19]}" if obs is not None else "no valid value"), f"newest on or after {str(kw.get('min_value'))[:10]}"
    return str(r.get("observed_value")), str(kw)


def run_suite(contract: Contract, text: pl.DataFrame, valid: pl.DataFrame, arrived_at: datetime,
              delivery_label: str, docs_dir: Path | None = None) -> list[BatchResult]:
    """Run the contract's batch suite on one delivery; one result per rule, in suite order."""
    return start_suite(contract, text, valid, arrived_at, delivery_label, docs_dir).result()


def start_suite(contract: Contract, text: pl.DataFrame, valid: pl.DataFrame, arrived_at: datetime,
                delivery_label: str, docs_dir: Path | None = None) -> Pending:
    """`run_suite`, started: with a worker, the suite runs there while the caller goes on (a night
    loads the delivery's rows meanwhile); `.result()` waits for its results."""
    frame = batch_frame(contract, text, valid)
    return Pending(_run_suite_on_frame, contract, frame, text.height, arrived_at, delivery_label, docs_dir)


def _run_suite_on_frame(contract: Contract, frame, rows: int, arrived_at: datetime, delivery_label: str,
                        docs_dir: Path | None) -> list[BatchResult]:
    gx = _gx()
    ctx = _context(docs_dir)
    suite = build_suite(contract, arrived_at, rows)
    if not suite.expectations:
        return []
    suite = ctx.suites.add_or_update(suite)
    source = ctx.data_sources.add_or_update_pandas("deliveries")
    names = [a.name for a in source.assets]
    asset = source.get_asset(contract.id) if contract.id in names else source.add_dataframe_asset(contract.id)
    batch_def = next((b for b in asset.batch_definitions if b.name == "delivery"), None) \
        or asset.add_batch_definition_whole_dataframe("delivery")
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(data=batch_def, suite=suite, name=contract.id))
    res = vd.run(batch_parameters={"dataframe": frame}, result_format="BASIC",
                 run_id=gx.RunIdentifier(run_name=delivery_label, run_time=datetime.now()))
    out = []
    for r in res.results:
        meta = r.expectation_config.meta or {}
        observed, expected = _describe(r)
        if r.exception_info and r.exception_info.get("raised_exception"):
            observed = "could not be evaluated"
        out.append(BatchResult(meta.get("rule", r.expectation_config.type), meta.get("severity", "error"), bool(r.success),
                               observed, expected))
    return out


def build_docs(docs_dir: Path, everything: bool = False) -> Path:
    return start_docs(docs_dir, everything).result()


def start_docs(docs_dir: Path, everything: bool = False) -> Pending:
    """`build_docs`, started (in the worker, after the suites asked for before it)."""
    return Pending(_build_docs, docs_dir, everything)


def _build_docs(docs_dir: Path, everything: bool = False) -> Path:
    """Bring the Data Docs site up to date with the stored validation results: render the pages
    of results that have none yet (a night's new deliveries, or any a crash left unrendered),
    their suites' pages and the index; nothing when every result has its page. A stored result
    never changes, so its page stands; rendering them all again would cost more each night as
    the history grows. `everything` renders every page again."""
    ctx = _context(docs_dir)
    if everything:
        ctx.build_data_docs(site_names=[SITE])
        return docs_dir / "data_docs" / "index.html"
    site = docs_dir / "data_docs"
    # A result's page is validations/<its key's parts>.html (were GX to lay pages out otherwise,
    # every page would look missing and be rendered again: slower, never stale).
    missing = [k for k in ctx.validation_results_store.list_keys()
               if not site.joinpath("validations", *k.to_tuple()[:-1], k.to_tuple()[-1] + ".html").is_file()]
    if missing or not (site / "index.html").is_file():
        suites = list({k.expectation_suite_identifier.to_tuple(): k.expectation_suite_identifier for k in missing}.values())
        ctx.build_data_docs(site_names=[SITE], resource_identifiers=missing + suites)
    return site / "index.html"


# ----------------------------------------------------------------------------- a warm worker
# Importing Great Expectations is slow (its expectation classes are built at import), and
# the first delivery of a night would pay for it. A night starts a worker process first thing;
# it imports GX on the other core while the night loads its definitions, and then runs every
# suite and Data Docs build of the night (the only process that writes the GX project). Without
# a worker (`partnership check`, a single asset run in the UI) GX runs in this process, the same code.
# The worker is `python -m orchestration.partnership.validation.gx_worker` on two pipes, not multiprocessing:
# a spawned multiprocessing child re-imports the caller's main script, which may be a night.

_WORKER = None


class _Worker:
    def __init__(self) -> None:
        import subprocess
        import sys
        import threading
        from multiprocessing.connection import Connection

        from_parent, to_child = os.pipe()
        from_child, to_parent = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestration.partnership.validation.gx_worker", str(from_parent),
                                      str(to_parent)], pass_fds=(from_parent, to_parent), stdin=subprocess.DEVNULL)
        os.close(from_parent)
        os.close(to_parent)
        self.requests = Connection(to_child, readable=False)
        self.replies = Connection(from_child, writable=False)
        self.lock = threading.Lock()
        self.used = False
        self.sent = 0  # requests sent; the worker answers them in order
        self.received = 0
        self.unclaimed: dict[int, tuple[bool, object]] = {}  # replies read before their caller asked

    def submit(self, fn, *args) -> int:
        """Send a request; returns its ticket, for `wait`."""
        with self.lock:
            self.used = True
            self.requests.send((fn.__name__, args))
            self.sent += 1
            return self.sent

    def wait(self, ticket: int):
        """The reply to a request (raising what it raised), reading earlier replies aside."""
        with self.lock:
            while ticket not in self.unclaimed:
                reply = self.replies.recv()
                self.received += 1
                self.unclaimed[self.received] = reply
            ok, value = self.unclaimed.pop(ticket)
        if not ok:
            raise value
        return value

    def call(self, fn, *args):
        return self.wait(self.submit(fn, *args))

    def close(self) -> None:
        import subprocess

        self.requests.close()  # the worker ends when its requests end
        if not self.used:
            # Still importing GX, or idle: it has done nothing, so a night that ended before any
            # contract suite (a failure, nothing new) need not wait for the import to finish.
            self.proc.kill()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.replies.close()


def serve(requests, replies) -> None:
    """The worker's loop: run each requested function of this module, reply with its result."""
    _gx()  # warm: the reason the worker exists
    while True:
        try:
            name, args = requests.recv()
        except EOFError:
            return
        try:
            replies.send((True, globals()[name](*args)))
        except Exception as exc:  # noqa: BLE001 - the caller raises it, as if it had run there
            try:
                replies.send((False, exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                replies.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def worker_pid() -> int:
    """The process a request runs in (a health check)."""
    return os.getpid()


class Pending:
    """`fn(*args)`: sent to the worker at once when there is one, and `result()` waits for its
    reply; without a worker, `result()` runs it here (so it fails where the caller asks for it,
    either way). If the worker dies (killed, out of memory) the work runs here instead (a result
    the worker stored before it died stays in the GX project beside this one)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args
        self.worker, self.ticket, self.done = _WORKER, None, None
        if self.worker is not None:
            try:
                self.ticket = self.worker.submit(fn, *args)
            except (EOFError, OSError):
                self._lost()

    def _lost(self) -> None:
        if _WORKER is self.worker:
            stop_worker()
        self.worker = self.ticket = None

    def result(self):
        if self.done is None:
            value = None
            if self.ticket is not None:
                try:
                    value = (self.worker.wait(self.ticket),)
                except (EOFError, OSError):
                    self._lost()
            self.done = value or (self.fn(*self.args),)
        return self.done[0]


def start_worker(force: bool = False) -> None:
    """Start the GX worker now, unless one runs or (unless `force`) GX is already imported here."""
    global _WORKER
    import sys

    if _WORKER is not None or ("great_expectations" in sys.modules and not force):
        return
    _WORKER = _Worker()


def stop_worker() -> None:
    global _WORKER
    worker, _WORKER = _WORKER, None
    if worker is not None:
        worker.close()
