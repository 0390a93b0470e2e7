"""The figures of `make bench`: names of its results and figure blocks, the targets, stage times
from a night's event log, and the Markdown section of docs/benchmarks.md (between its
`benchmarks.run` markers).

Kept apart from `benchmarks.run`, which measures: this module only reads results and writes text.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from orchestration.partnership.settings import PROJECT_ROOT

KEY = "benchmark-key-" + "0123456789abcdef" * 3
DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"


# The county night is measured at tens of millions of event rows; the county preset's own
# rates give 2.56 M delivered rows (docs/benchmarks.md, Volume), 16 copies of its nightly history 25.6 M.
DEFAULT_COPIES = {"county": 16}


def default_copies(preset: str) -> int:
    return DEFAULT_COPIES.get(preset, 1)


def copies_suffix(copies: int) -> str:
    """What tells a replicated run's results file, docs block and night folder from the preset's own."""
    return "" if copies <= 1 else f"-x{copies}"


def results_name(copies: int) -> str:
    return f"results{copies_suffix(copies)}.json"


def figures_key(r: dict) -> str:
    """Which figures block of the page a run fills: its preset, and how many copies of the history."""
    return r["preset"] + copies_suffix(r.get("replicate", 1))


def markers(preset: str) -> tuple[str, str]:
    """Each preset's figures have their own place on the page."""
    return f"<!-- benchmarks.run: {preset} figures begin -->", f"<!-- benchmarks.run: {preset} figures end -->"
# The partnership's targets for one 2-core machine: the incremental night is held to 30 s at a
# preset's own volume and 45 s with its history landed many times over (25.6 M rows at county).
TARGETS = {"full_night_s": 480, "peak_gib": 6.0, "incremental_s": 30, "incremental_replicated_s": 45,
           "validation_ratio": 1.5, "overhead_ratio": 1.3}
FALLS_01_MODEL = "model.partnership.int_indicator_falls_01"


def stages(night: dict) -> dict[str, float]:
    groups = {"register deliveries": 0.0, "ingest + validate": 0.0, "linkage": 0.0, "dbt build": 0.0,
              "releases": 0.0, "board packs": 0.0, "other steps": 0.0}
    for key, s in night["steps"].items():
        if key == "ops__deliveries":
            g = "register deliveries"
        elif key.startswith("valid__"):
            g = "ingest + validate"
        elif key.startswith("linkage"):
            g = "linkage"
        elif key.startswith("partnership_dbt_models"):
            g = "dbt build"
        elif key.startswith("releases__"):
            g = "releases"
        elif key.startswith("board_packs__"):
            g = "board packs"
        else:
            g = "other steps"
        groups[g] += s["seconds"]
    spans = sorted((s["start"], s["start"] + s["seconds"]) for s in night["steps"].values())
    gaps = sum(max(b[0] - a[1], 0.0) for a, b in zip(spans, spans[1:]))
    accounted = night["setup_seconds"] + sum(groups.values()) + gaps
    # The whole night is the process's wall time, measured by the parent: it also holds the
    # process's imports before the night's own clock starts, the run's end and the process's exit.
    return {"setup (dbt parse, definitions)": night["setup_seconds"], **groups, "Dagster between steps": gaps,
            "process start and end (imports, run end, exit)": max(night["wall_seconds"] - accounted, 0.0)}


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def machine() -> dict:
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    pkgs = ["dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "duckdb", "polars", "pandera", "great-expectations", "splink"]
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1), "cpu": cpu, "os": platform.platform(),
            "python": platform.python_version(), "versions": {p: version(p) for p in pkgs}}


VALIDATION_PHASES = ("validate", "batch suite wait")  # read, row rules, split; then the GX batch suite's verdict
INGEST_PHASES = ("archive", "validate", "write", "batch suite wait", "commit", "reports", "data docs wait", "checkpoint")


def ingest_phases(r: dict) -> str:
    """The full night's ingest steps by phase (a paragraph), when the night recorded them."""
    per = r["full"].get("ingest_seconds") or {}
    if not per:
        return ""
    total = {p: sum(x.get(p, 0.0) for x in per.values()) for p in INGEST_PHASES}
    steps = r["full"]["stages"]["ingest + validate"]
    rest = steps - sum(total.values())
    phases = ", ".join(f"{p} {v:.1f}" for p, v in total.items())
    valid = sum(total[p] for p in VALIDATION_PHASES)
    return (f"The full night's ingest steps ({steps:.1f} s) by phase, summed over the {len(per)} extracts (s): {phases}; "
            f"the rest ({rest:.1f} s) is the step's own work around them (connection, pending deliveries, Dagster's "
            f"records). Contract validation (validate: read, row rules and split; and the wait for the batch "
            f"suite's verdict, which runs in the GX worker while the rows are written) is {valid:.1f} s: "
            f"**{r['ratios']['contract_validation_vs_raw_load']:.2f}x** the raw DuckDB load of the same files "
            f"(the target's measure, as for the 5M-row extract below); archiving, pseudonymising and writing four "
            f"tables in one transaction, reports and Data Docs are the ingest's other work.\n\n")


def evaluate(r: dict) -> list[dict]:
    full, inc = r["full"], r["incremental"]
    checks = [
        (f"full night ({r['preset']} preset" + (f", history x{r['replicate']}" if r.get("replicate", 1) > 1 else "") + ")",
         full["wall_seconds"], TARGETS["full_night_s"], "s"),
        ("peak memory (full night, process tree)", full["peak_tree_gib"], TARGETS["peak_gib"], "GiB"),
        ("incremental night", inc["wall_seconds"],
         TARGETS["incremental_replicated_s" if r.get("replicate", 1) > 1 else "incremental_s"], "s"),
        # Judged as for the 5M-row extract (benchmarks/validation.py): the contract validation of
        # the night's deliveries (read, row rules, split, batch suite), from each ingest step's own
        # phase timings. Results of older runs without them: the whole ingest steps.
        ("contract validation / raw DuckDB load" if "contract_validation_vs_raw_load" in r["ratios"]
         else "validation / raw DuckDB load",
         r["ratios"].get("contract_validation_vs_raw_load", r["ratios"]["validation_vs_raw_load"]),
         TARGETS["validation_ratio"], "x"),
        ("pipeline / baseline, shared stages", r["ratios"]["shared_stages"], TARGETS["overhead_ratio"], "x"),
    ]
    return [{"target": name, "measured": value, "limit": limit, "unit": unit, "met": value <= limit,
             "over_by": None if value <= limit else value / limit} for name, value, limit, unit in checks]


def table(r: dict) -> str:
    full, inc, base = r["full"], r["incremental"], r["baseline"]
    fs, is_ = full["stages"], inc["stages"]
    b_load = sum(e["load"] for e in base["extracts"].values())
    b_chk = sum(e["checks"] for e in base["extracts"].values())
    base_for = {"ingest + validate": b_load + b_chk, "dbt build": base["falls_01_seconds"]}
    lines = ["| stage | full night (s) | incremental night (s) | baseline (s) | full / baseline |",
             "|---|---:|---:|---:|---:|"]
    for name in fs:
        b = base_for.get(name)
        lines.append(f"| {name} | {fs[name]:.1f} | {is_.get(name, 0):.1f} | {'' if b is None else f'{b:.1f}'} | "
                     f"{'' if b is None else f'{ratio(fs[name], b):.1f}x'} |")
    lines.append(f"| **whole night** | **{full['wall_seconds']:.1f}** | **{inc['wall_seconds']:.1f}** | "
                 f"**{base['total_seconds']:.1f}** | **{ratio(full['wall_seconds'], base['total_seconds']):.1f}x** |")
    lines.append(f"| peak memory, process tree (GiB) | {full['peak_tree_gib']:.2f} | {inc['peak_tree_gib']:.2f} | "
                 f"{base['peak_tree_gib']:.2f} | |")
    lines.append(f"| peak memory, largest process (GiB) | {full['peak_process_gib']:.2f} | {inc['peak_process_gib']:.2f} | "
                 f"{base['peak_process_gib']:.2f} | |")
    return "\n".join(lines)


def extract_table(r: dict) -> str:
    full, inc, base = r["full"], r["incremental"], r["baseline"]
    lines = ["| extract | rows read | pipeline: ingest + validate (s) | incremental (s) | baseline: load (s) | baseline: checks (s) | pipeline / load |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for cid, b in sorted(base["extracts"].items()):
        step = f"valid__{cid}"
        p = full["steps"].get(step, {}).get("seconds", 0.0)
        i = inc["steps"].get(step, {}).get("seconds", 0.0)
        lines.append(f"| {cid} | {r['counts']['pipeline'].get(cid, {}).get('rows_read', 0):,} | {p:.1f} | {i:.1f} | "
                     f"{b['load']:.2f} | {b['checks']:.2f} | {ratio(p, b['load']):.1f}x |")
    return "\n".join(lines)


def dbt_commands(log: Path) -> list[tuple[str, float]]:
    """(dbt command, seconds) from the night's log: Dagster logs each dbt command's start and end
    (dbt's global options, such as `--log-level-file info`, come before the command)."""
    pat = re.compile(r"^(\S+ \S+) \S+ - dagster - .* - (Running|Finished) dbt command: `\S*dbt (?:--\S+ \S+ )*([a-z ]+?)(?: --.*)?`")
    started: dict[str, datetime] = {}
    out = []
    if not Path(log).exists():
        return out
    for line in Path(log).read_text(errors="replace").splitlines():
        m = pat.match(line)
        if not m:
            continue
        at = datetime.fromisoformat(m.group(1))
        if m.group(2) == "Running":
            started[m.group(3)] = at
        elif m.group(3) in started:
            out.append((m.group(3), (at - started.pop(m.group(3))).total_seconds()))
    return out


def top_dbt(night: dict, n: int = 8) -> str:
    nodes = sorted(night["dbt_nodes"].items(), key=lambda kv: -kv[1]["seconds"])[:n]
    total = sum(v["seconds"] for v in night["dbt_nodes"].values())
    kinds: dict[str, list[float]] = {}
    for k, v in night["dbt_nodes"].items():
        kinds.setdefault(k.split(".")[0], []).append(v["seconds"])
    cmds = dbt_commands(night["log"])
    step = night["stages"]["dbt build"]
    lines = [f"The dbt step ({step:.1f} s): " + "; ".join(f"`dbt {c}` {sec:.1f} s" for c, sec in cmds)
             + f"; the rest ({step - sum(sec for _, sec in cmds):.1f} s) is the asset's own work around them "
               "(place seeds, hold-back checks, starting dbt, Dagster recording dbt's events).",
             f"Inside `dbt build`: {len(night['dbt_nodes'])} nodes, execution times summing to {total:.1f} s ("
             + ", ".join(f"{len(v)} {k}s {sum(v):.1f} s" for k, v in sorted(kinds.items())) + "); slowest:", ""]
    lines += [f"- `{k.split('.', 2)[-1]}` ({k.split('.')[0]}): {v['seconds']:.1f} s" for k, v in nodes]
    return "\n".join(lines)


def markdown(r: dict, command: str) -> str:
    m, gen = r["machine"], r["generated"]
    counts = gen["manifest"]["counts"]
    rows = sum(counts["rows_per_extract"].values())
    ok = "\n".join(f"| {e['target']} | {e['measured']:.2f} {e['unit']} | ≤ {e['limit']} {e['unit']} | "
                   + ("met" if e["met"] else f"missed: {e['over_by']:.2f}x the target") + " |" for e in r["targets"])
    inc = r["incremental_proof"]
    cc = r["counts"]
    mism = [c for c in cc["baseline"] if cc["baseline"][c] != cc["pipeline"].get(c)]
    f1 = r["falls_01_check"]
    begin, end = markers(figures_key(r))
    load = ("The cores were shared with other work: the 1-minute load average, averaged over each run, was "
            f"{r['full']['mean_load']:.1f} (full night), {r['incremental']['mean_load']:.1f} (incremental night) and "
            f"{r['baseline']['mean_load']:.1f} (baseline); above {m['cores']}, work queued for a core."
            if "mean_load" in r["full"] else "The cores were shared with other work (load not recorded by this run).")
    qc = r.get("quarantine_check")
    qline = (f" (row by row: {qc['quarantined_rows_compared']:,} quarantined rows compared, {qc['rows_differing']} differ in"
             " row or rules broken)") if qc else ""
    return f"""{begin}
Measured {r['measured_at']} with `{command}`, {r['preset']} preset, seed {r['seed']}.

**Machine:** {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB memory, {m['os']}, Python {m['python']};
{', '.join(f'{k} {v}' for k, v in m['versions'].items())}. {load}

**Volume:** {counts['people']:,} people ({counts['residents_at_as_of']:,} residents), {counts['wards']} wards, {counts['addresses']:,}
addresses; {counts['files']} files generated ({rows:,} delivered rows over two years, {counts['events']:,} person events,
{counts['falls_phof_admissions']:,} FALLS-01 admissions) in {gen['seconds']:.0f} s (peak {gen['peak_tree_gib']:.1f} GiB).{replicas(r)}
The full night read {r['full']['rows_read']:,} rows from {r['full']['deliveries']} deliveries; the incremental night
{inc['new_rows_read']:,} rows from {inc['new_deliveries']} new deliveries.

| target | measured | limit | |
|---|---:|---:|---|
{ok}

{table(r)}

Per extract (full night; the incremental night's figures are for the new deliveries only):

{extract_table(r)}

{ingest_phases(r)}Ratios: validation (ingest + validate steps) / raw DuckDB load of the same files
{r['ratios']['validation_vs_raw_load']:.2f}x; / baseline load + SQL row checks {r['ratios']['ingest_vs_baseline_ingest']:.2f}x;
dbt FALLS-01 models and seeds ({r['ratios']['falls_01_dbt_seconds']:.1f} s, sum of node times) / baseline FALLS-01 SQL
{r['ratios']['falls_01_vs_baseline']:.2f}x; shared stages (ingest, validate, FALLS-01) together {r['ratios']['shared_stages']:.2f}x;
whole night / whole baseline {r['ratios']['night_vs_baseline']:.2f}x.

Incremental night: {inc['old_deliveries']} deliveries already processed, {inc['old_deliveries_changed']} of them changed
(status, processed_at, row counts, rows in raw); {inc['new_deliveries']} new deliveries, which are
{'exactly' if inc['new_are_the_new_files'] else 'NOT exactly'} the {inc['new_files']} new files (statuses: {', '.join(inc['new_statuses'])}).

Same work on both sides: rows read and quarantined per extract {'agree for every extract' if not mism else f'differ for {mism}'}{qline};
FALLS-01: {f1['mart_rows']:,} mart rows compared, {f1['numerator_mismatches']} numerator, {f1['value_mismatches']} value and
{f1['ci_mismatches']} confidence-limit mismatches, {f1['missing_in_baseline']} missing in the baseline.

{top_dbt(r['full'])}

Linkage's own steps (s), full night: {', '.join(f'{k} {v:.1f}' for k, v in (r['full'].get('linkage_seconds') or {}).items()) or 'not reported'};
incremental night: {', '.join(f'{k} {v:.1f}' for k, v in (r['incremental'].get('linkage_seconds') or {}).items()) or 'not reported'}.
{end}"""


def replicas(r: dict) -> str:
    added = r.get("replicated_rows") or {}
    if not added:
        return ""
    return (f"\nWith `--replicate {r['replicate']}`: {r['replicate'] - 1} more copies of each nightly extract's history "
            f"(keys suffixed; the same people), {sum(added.values()):,} rows added "
            f"({', '.join(f'{c} {n:,}' for c, n in sorted(added.items()))}).")


def write_docs(section: str, preset: str) -> None:
    begin, end = markers(preset)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n### Figures: {preset} preset (written by `make bench`)\n\n" + section + "\n"
    DOCS.write_text(text)
