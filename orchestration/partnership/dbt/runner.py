"""What dbt needs around it: environment, place seeds, a manifest before Dagster loads, and
which part of the project a night has to build."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import (
    MEMORY_LIMIT_ENV,
    connect,
    memory_limit,
)

PLACE_FILES = ("geography_wards.csv", "geography_lsoas.csv", "geography_postcodes.csv", "address_lookup.csv",
               "population_estimates.csv")


class DbtSetupError(RuntimeError):
    pass


def dbt_env(settings: Settings) -> dict[str, str]:
    """What profiles.yml reads."""
    return {"PARTNERSHIP_WAREHOUSE": str(settings.warehouse_path), MEMORY_LIMIT_ENV: memory_limit()}


def stage_place_seeds(settings: Settings) -> None:
    """Copy the place reference data from the data folder into dbt's seeds/place/.

    dbt writes a compiled copy of each seed beside its own path: a seed path outside the
    project would be overwritten, so the files are copied in rather than pointed at."""
    missing = [f for f in PLACE_FILES if not (settings.reference_dir / f).is_file()]
    if missing:
        raise DbtSetupError(
            f"place reference data missing in {settings.reference_dir}: {missing} "
            "(run `partnership generate` for the demo, or put the partnership's ONS files there)")
    dest = settings.dbt_project_dir / "seeds" / "place"
    dest.mkdir(parents=True, exist_ok=True)
    for name in PLACE_FILES:
        src, dst = settings.reference_dir / name, dest / name
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)


def dbt_executable() -> str:
    """The dbt installed beside this Python, whether or not the environment is activated."""
    return str(Path(sys.executable).with_name("dbt"))


INVOCATIONS_KEPT = 10
"""dagster-dbt gives every dbt invocation its own folder under target/ (compiled SQL, logs,
run_results.json): the newest are kept for debugging and benchmarks, the rest removed, so a
year of nights does not fill the disk."""

_INVOCATION = re.compile(r"^(?:[a-z0-9_]+-)?[0-9a-f]{7}(?:-[0-9a-f]{7})?$")


def prune_invocation_dirs(target: Path, keep: int = INVOCATIONS_KEPT) -> list[Path]:
    """Remove all but the `keep` newest per-invocation folders in dbt's target/; returns those removed."""
    if not target.is_dir():
        return []
    runs = [p for p in target.iterdir() if p.is_dir() and _INVOCATION.match(p.name)]
    runs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    removed = runs[keep:]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


PARSE_MARKER = "partnership_parse_inputs.json"
"""Beside target/manifest.json: the fingerprint of the inputs the manifest was parsed from."""

_NOT_INPUTS = {"target", "logs", "dbt_packages", "dbt_internal_packages"}


def project_fingerprint(settings: Settings, with_env: bool = True) -> str:
    """Everything `dbt parse` reads: every file of the dbt project (models, macros, tests,
    seeds with the staged place seeds, the generated _sources.yml, dbt_project.yml,
    profiles.yml), what the manifest takes from the profile's environment, and the dbt and
    DuckDB versions (stored tables hold values of DuckDB's hash function: person_key). Of the
    warehouse's path the manifest holds only the database name dbt-duckdb derives from it (the
    file's stem): a data folder elsewhere with the same file name reuses the manifest. Without
    it for the build state, which lives in the warehouse and describes its tables wherever the
    file is: a warehouse restored or copied elsewhere does not rebuild everything."""
    project = settings.dbt_project_dir
    h = hashlib.sha256()
    h.update(json.dumps({"dbt-core": version("dbt-core"), "dbt-duckdb": version("dbt-duckdb"),
                         "duckdb": version("duckdb"),
                         "env": {"database": Path(settings.warehouse_path).stem} if with_env else None},
                        sort_keys=True).encode())
    files = []
    for root, dirs, names in os.walk(project):
        here = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (here == project and d in _NOT_INPUTS)]
        files += [here / n for n in names if not n.startswith(".")]
    for p in sorted(files):
        h.update(p.relative_to(project).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _file_sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def manifest_is_current(settings: Settings, fingerprint: str) -> bool:
    """The manifest in target/ was parsed from exactly these inputs, and nothing rewrote it since."""
    target = settings.dbt_project_dir / "target"
    try:
        marker = json.loads((target / PARSE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("fingerprint") == fingerprint
            and marker.get("manifest_sha256") == _file_sha256(target / "manifest.json"))


def dbt_parse(settings: Settings) -> bool:
    """Build the manifest the Dagster definitions are loaded from, unless the one in target/
    was parsed from the same inputs (then a night starts without paying for dbt's start-up and
    its parse). Returns whether dbt parse ran."""
    import fcntl

    project = settings.dbt_project_dir
    (project / "target").mkdir(parents=True, exist_ok=True)
    # Two launches sharing this project (tests, a second data folder) must not interleave a
    # parse and its marker.
    with open(project / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stage_place_seeds(settings)
        fingerprint = project_fingerprint(settings)
        if manifest_is_current(settings, fingerprint):
            return False
        marker = project / "target" / PARSE_MARKER
        marker.unlink(missing_ok=True)
        proc = subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)],
            capture_output=True, text=True, env={**os.environ, **dbt_env(settings)},
        )
        if proc.returncode != 0:
            raise DbtSetupError(f"dbt parse failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fingerprint,
                                   "manifest_sha256": _file_sha256(project / "target" / "manifest.json")}))
        tmp.replace(marker)
        return True


PARTIAL_PARSE = "partial_parse.msgpack"


def keep_parse_state(settings: Settings, invocation_target: Path) -> bool:
    """Keep the parse state a dbt invocation saved (its folder's partial_parse.msgpack) as the
    one the next invocation starts from (dagster-dbt copies target/partial_parse.msgpack into
    each invocation's folder). dbt saves with it the profile it parsed under, the warehouse's
    whole path included, and parses everything again when the profile differs (~4 s at county):
    the state of the last `dbt parse`, made in another data folder, would cost that at every
    night in this one. dbt checks every input against the state before using it, so a state kept
    here is never wrong, at worst not used. Returns whether one was kept."""
    import fcntl

    saved = Path(invocation_target) / PARTIAL_PARSE
    target = settings.dbt_project_dir / "target"
    if not saved.is_file() or saved.resolve().parent == target.resolve():
        return False
    with open(target / ".parse.lock", "w") as lock:  # not while a `dbt parse` writes it
        fcntl.flock(lock, fcntl.LOCK_EX)
        tmp = target / (PARTIAL_PARSE + ".tmp")
        shutil.copyfile(saved, tmp)
        tmp.replace(target / PARTIAL_PARSE)
    return True


# ----------------------------------------------------------------------------- what to build

BUILD_STATE = "ops.dbt_build_state"
"""One row: the project fingerprint and every source's data fingerprint of the last `dbt build`
that succeeded with nothing held back. In the warehouse, so that it always describes the
tables beside it (a restored warehouse restores its state)."""

BUILT_TYPES = ("model", "seed", "snapshot")


@dataclass
class BuildPlan:
    """What tonight's `dbt build` must do. `full`: build everything (no usable record of the
    last build, or the project changed). Otherwise `rebuild` are the nodes downstream of a
    source whose data changed (or whose table is missing), `unchanged` the rest: their inputs
    and code are those of the last successful build, so building them again would write the
    same tables and run the same tests on them."""
    project: str
    sources: dict[str, str]
    full: bool
    reason: str
    changed_sources: list[str] = field(default_factory=list)
    link_runs: int = 0  # the last link run logged when the build was planned (CHANGE_LOGS)
    rebuild: set[str] = field(default_factory=set)
    unchanged: set[str] = field(default_factory=set)

    def build_args(self, manifest: dict) -> list[str]:
        """`dbt build` arguments: a full build rebuilds the incremental models whole too
        (`--full-refresh`: the project changed, e.g. their code or a seed they join, or the
        last build's record is gone) and runs the unit tests; a partial build excludes the
        unchanged nodes, and the unit tests. A partial build means the project is the one of
        the last recorded build, and the first build recorded with this project was a full
        one that passed them: a unit test runs a model's code on the fixed rows its YAML
        gives, so with the same project it gives the same result."""
        if self.full:
            return ["--full-refresh"]
        return [*self.exclude_args(manifest), "--exclude-resource-type", "unit_test"]

    def exclude_args(self, manifest: dict) -> list[str]:
        """dbt selection for a partial build: everything except the unchanged nodes and the
        unchanged sources (so their tests do not run either). With cautious indirect selection
        a test between a rebuilt node and an unchanged one still runs."""
        if self.full:
            return []
        names = sorted(manifest["nodes"][u]["name"] for u in self.unchanged)
        names += sorted(f"source:{manifest['sources'][u]['source_name']}.{manifest['sources'][u]['name']}"
                        for u in manifest["sources"] if u not in self.changed_sources)
        # One value: dagster-dbt reads each --exclude as one argument (dbt splits it on spaces).
        return ["--indirect-selection", "cautious", "--exclude", " ".join(names)]


def _relation(node: dict) -> str:
    name = node.get("identifier") or node.get("alias") or node["name"]
    return f'"{node["schema"]}"."{name}"'


def _row_hash(src: dict) -> str:
    """What a source's fingerprint sums per row: the whole row, or for a source whose meta says
    `fingerprint: keys` (`valid`: a delivery's rows are written once and removed only whole, and
    a rotated pseudonymisation key builds everything) its rows' keys, a fraction of the cost."""
    if ({**(src.get("source_meta") or {}), **(src.get("meta") or {})}).get("fingerprint") == "keys":
        return "hash(t._delivery_id, t._row_number)"
    return "hash(t)"


def source_fingerprints(con, manifest: dict) -> dict[str, str]:
    """Row count and an order-independent sum of row hashes (`_row_hash`) of every source table
    but the change logs (`meta: change_log`): they say which rows of another source changed,
    whose own fingerprint then changes, and are emptied by record_build."""
    out = {}
    for uid, src in sorted(manifest["sources"].items()):
        if (src.get("meta") or {}).get("change_log"):
            continue
        try:
            n, h = con.execute(f"select count(*), coalesce(sum({_row_hash(src)}::hugeint), 0)::varchar "
                               f"from {_relation(src)} t").fetchone()
            out[uid] = f"{n}:{h}"
        except Exception:  # noqa: BLE001 - a missing source table is a changed source
            out[uid] = "missing"
    return out


def downstream(manifest: dict, roots) -> set[str]:
    """Every node (models, seeds, tests, …) downstream of roots, roots excluded."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        for child in manifest["child_map"].get(todo.pop(), []):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def topological(manifest: dict, nodes: set[str]) -> list[str]:
    """`nodes` with every node after the nodes it depends on (through any path in the graph)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(u: str) -> None:  # depth-first on parents; the graph is a DAG of a few hundred nodes
        if u in seen:
            return
        seen.add(u)
        for parent in manifest.get("parent_map", {}).get(u, []):
            visit(parent)
        order.append(u)

    for u in sorted(nodes):
        visit(u)
    return [u for u in order if u in nodes]


def _existing_relations(con) -> set[tuple[str, str]]:
    return {(s.lower(), t.lower()) for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def _key_fingerprint(con) -> str | None:
    try:
        row = con.execute("select value from ops.settings where name = 'key_fingerprint'").fetchall()
    except Exception:  # noqa: BLE001 - a warehouse before its first night
        return None
    return row[0][0] if row else None


def _last_link_run(con, existing: set[tuple[str, str]]) -> int:
    if ("linkage", "person_changes") not in existing:
        return 0
    return con.execute("select coalesce(max(link_run), 0) from linkage.person_changes").fetchall()[0][0]


def last_build_state(con) -> tuple[str, dict[str, str]] | None:
    try:
        row = con.execute(f"select project_fingerprint, sources from {BUILD_STATE}").fetchall()
    except Exception:  # noqa: BLE001 - no record yet
        return None
    if len(row) != 1:
        return None
    try:
        return row[0][0], json.loads(row[0][1])
    except (TypeError, ValueError):
        return None


def plan_build(settings: Settings, manifest: dict, project: str) -> BuildPlan:
    """Compare the warehouse's sources and the project with the last successful build."""
    with connect(settings.warehouse_path, read_only=True) as con:
        sources = source_fingerprints(con, manifest)
        last = last_build_state(con)
        existing = _existing_relations(con)
        key = _key_fingerprint(con)
        link_runs = _last_link_run(con, existing)
    # A rotated pseudonymisation key rewrites pseudonyms of rows already stored (docs/linkage.md):
    # incremental models keep what they stored of unchanged rows, so a rotation builds everything.
    if key:
        project = f"{project}:key={key}"
    plan = BuildPlan(project=project, sources=sources, full=True, reason="", link_runs=link_runs)
    if last is None:
        plan.reason = "no record of a previous build"
        return plan
    if last[0] != project:
        plan.reason = "the dbt project changed since the last build (code, seeds, versions or the pseudonymisation key)"
        return plan
    built = {u for u, n in manifest["nodes"].items() if n["resource_type"] in BUILT_TYPES}
    changed = sorted(u for u, fp in sources.items() if last[1].get(u) != fp)
    roots = set(changed)
    # A node whose table is not there (dropped, or never built) is rebuilt with its descendants.
    roots |= {u for u in built if (manifest["nodes"][u]["schema"].lower(),
                                   (manifest["nodes"][u].get("alias") or manifest["nodes"][u]["name"]).lower())
              not in existing}
    rebuild = (downstream(manifest, roots) | roots) & built
    plan.full = False
    plan.changed_sources = changed
    plan.rebuild = rebuild
    plan.unchanged = built - rebuild
    plan.reason = (f"{len(changed)} source(s) changed since the last build: rebuilding {len(rebuild)} of {len(built)} "
                   "models and seeds with their tests") if rebuild else "no source changed since the last build"
    return plan


CHANGE_LOGS = {"linkage.person_changes": "link_run <= ?", "linkage.household_changes": "link_run <= ?",
               "ops.dbt_changed_people": "true", "ops.dbt_changed_staged_rows": "true"}
"""What a build consumes (the people and households linkage changed, logged by run with one
numbering; the people whose events the build itself rewrote and the staged rows the staging
models wrote or removed, for the models downstream):
emptied once a build that read them succeeded, so a failed build leaves them to the next. Of
linkage's logs only the runs the build saw (BuildPlan.link_runs) are removed."""


def record_build(settings: Settings, plan: BuildPlan) -> None:
    """After a successful build with nothing held back: what it was built from, and the change
    logs it consumed emptied (in one transaction)."""
    with connect(settings.warehouse_path) as con:
        con.execute("begin transaction")
        con.execute("create schema if not exists ops")
        con.execute(f"create or replace table {BUILD_STATE} as select ? as project_fingerprint, ? as sources, "
                    "current_timestamp as recorded_at", [plan.project, json.dumps(plan.sources, sort_keys=True)])
        existing = {f"{s}.{t}" for s, t in _existing_relations(con)}
        for table, consumed in CHANGE_LOGS.items():
            if table in existing:
                con.execute(f"delete from {table} where {consumed}", [plan.link_runs] if "?" in consumed else [])
        con.execute("commit")


def forget_build(settings: Settings) -> None:
    """The next build must be a full one (a build that was held back or failed)."""
    with connect(settings.warehouse_path) as con:
        con.execute(f"drop table if exists {BUILD_STATE}")
