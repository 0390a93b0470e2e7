"""Which part of the dbt project a night builds: everything without a record or after a project
change; otherwise what is downstream of changed (or missing) tables, and nothing else."""

from __future__ import annotations

from types import SimpleNamespace

import duckdb
import pytest

import orchestration.partnership.dbt.runner as r

pytestmark = pytest.mark.dbt_free

MANIFEST = {
    "sources": {
        "source.p.valid.a": {"source_name": "valid", "name": "a", "schema": "valid", "identifier": "a"},
        "source.p.valid.b": {"source_name": "valid", "name": "b", "schema": "valid", "identifier": "b"},
    },
    "nodes": {
        "model.p.stg_a": {"resource_type": "model", "name": "stg_a", "schema": "staging", "alias": "stg_a"},
        "model.p.stg_b": {"resource_type": "model", "name": "stg_b", "schema": "staging", "alias": "stg_b"},
        "model.p.int_ab": {"resource_type": "model", "name": "int_ab", "schema": "intermediate", "alias": "int_ab"},
        "seed.p.seed_s": {"resource_type": "seed", "name": "seed_s", "schema": "reference", "alias": "seed_s"},
        "model.p.dim_s": {"resource_type": "model", "name": "dim_s", "schema": "marts", "alias": "dim_s"},
        "test.p.not_null_stg_a": {"resource_type": "test", "name": "not_null_stg_a", "schema": "staging"},
        "test.p.rel_int_ab_dim_s": {"resource_type": "test", "name": "rel_int_ab_dim_s", "schema": "intermediate"},
    },
    "child_map": {
        "source.p.valid.a": ["model.p.stg_a"],
        "source.p.valid.b": ["model.p.stg_b"],
        "model.p.stg_a": ["model.p.int_ab", "test.p.not_null_stg_a"],
        "model.p.stg_b": ["model.p.int_ab"],
        "model.p.int_ab": ["test.p.rel_int_ab_dim_s"],
        "seed.p.seed_s": ["model.p.dim_s"],
        "model.p.dim_s": ["test.p.rel_int_ab_dim_s"],
    },
}


@pytest.fixture
def settings(tmp_path):
    wh = tmp_path / "w.duckdb"
    with duckdb.connect(str(wh)) as con:
        for schema in ("valid", "staging", "intermediate", "reference", "marts", "ops"):
            con.execute(f"create schema {schema}")
        con.execute("create table valid.a as select range as id, 'x' || range as v from range(5)")
        con.execute("create table valid.b as select range as id from range(3)")
        for rel in ("staging.stg_a", "staging.stg_b", "intermediate.int_ab", "reference.seed_s", "marts.dim_s"):
            con.execute(f"create table {rel} (x int)")
    return SimpleNamespace(warehouse_path=wh)


def _plan(settings, project="p1"):
    return r.plan_build(settings, MANIFEST, project)


def test_without_a_record_everything_is_built(settings):
    plan = _plan(settings)
    assert plan.full and plan.exclude_args(MANIFEST) == []


def test_with_nothing_changed_nothing_is_rebuilt(settings):
    r.record_build(settings, _plan(settings))
    plan = _plan(settings)
    assert not plan.full and plan.rebuild == set() and plan.changed_sources == []
    assert plan.unchanged == {u for u, n in MANIFEST["nodes"].items() if n["resource_type"] in ("model", "seed")}


def test_a_changed_project_builds_everything(settings):
    r.record_build(settings, _plan(settings))
    plan = _plan(settings, project="p2")
    # Incremental models are rebuilt whole too: their code or a seed they join may have changed.
    assert plan.full and plan.build_args(MANIFEST) == ["--full-refresh"]


def test_a_rotated_pseudonymisation_key_builds_everything(settings):
    # A rotation rewrites stored pseudonyms in place, which incremental models do not re-read.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create table ops.settings (name varchar, value varchar)")
        con.execute("insert into ops.settings values ('key_fingerprint', 'old')")
    r.record_build(settings, _plan(settings))
    assert not _plan(settings).full
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("update ops.settings set value = 'new' where name = 'key_fingerprint'")
    assert _plan(settings).full


@pytest.mark.parametrize("change", [
    "insert into valid.a values (99, 'new')",
    "update valid.a set v = 'corrected' where id = 2",   # same row count, different content
    "delete from valid.a where id = 4",
])
def test_a_changed_source_rebuilds_exactly_what_is_downstream_of_it(settings, change):
    r.record_build(settings, _plan(settings))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(change)
    plan = _plan(settings)
    assert not plan.full
    assert plan.changed_sources == ["source.p.valid.a"]
    assert plan.rebuild == {"model.p.stg_a", "model.p.int_ab"}
    assert plan.unchanged == {"model.p.stg_b", "seed.p.seed_s", "model.p.dim_s"}
    args = plan.build_args(MANIFEST)
    # Unchanged nodes and the unchanged source are excluded; cautious selection keeps the test
    # between a rebuilt model and a kept one.
    assert args[:2] == ["--indirect-selection", "cautious"]
    assert args[2] == "--exclude" and len(args) == 6
    assert set(args[3].split(" ")) == {"stg_b", "seed_s", "dim_s", "source:valid.b"}
    assert args[4:] == ["--exclude-resource-type", "unit_test"]


@pytest.mark.parametrize("change", [
    "insert into valid.a values (3, 1, 'x')",                                   # a delivery's row arrives
    "delete from valid.a where _delivery_id = 2",                               # a delivery purged
    "delete from valid.a where _delivery_id = 2; insert into valid.a values (3, 0, 'p'), (3, 1, 'q')",  # as many rows, another delivery
])
def test_a_source_fingerprinted_by_its_keys_sees_every_delivery_arrive_or_leave(settings, change):
    # `valid` (meta fingerprint: keys): a delivery's rows are written once and leave only whole.
    manifest = {**MANIFEST, "sources": {u: {**s, "source_meta": {"fingerprint": "keys"}} for u, s in MANIFEST["sources"].items()}}
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("""create or replace table valid.a as
                       select (range // 2 + 1)::bigint as _delivery_id, (range % 2)::bigint as _row_number, 'x' || range as v
                       from range(4)""")
    r.record_build(settings, r.plan_build(settings, manifest, "p1"))
    assert r.plan_build(settings, manifest, "p1").rebuild == set()
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(change)
    plan = r.plan_build(settings, manifest, "p1")
    assert plan.changed_sources == ["source.p.valid.a"] and plan.rebuild == {"model.p.stg_a", "model.p.int_ab"}


def test_unit_tests_run_in_a_full_build_and_again_after_a_project_change_not_in_a_partial_one(settings):
    # dbt build runs unit tests unless told otherwise: a full build's arguments do not exclude them.
    first = _plan(settings)
    assert first.full and "unit_test" not in first.build_args(MANIFEST)
    r.record_build(settings, first)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("insert into valid.b values (8)")
    partial = _plan(settings)
    # Same project as the recorded build: its unit tests gave their result on that project.
    assert not partial.full and partial.rebuild
    assert partial.build_args(MANIFEST)[-2:] == ["--exclude-resource-type", "unit_test"]
    r.record_build(settings, partial)
    changed = _plan(settings, project="p2")
    assert changed.full and "--exclude-resource-type" not in changed.build_args(MANIFEST)


def test_a_missing_table_is_rebuilt_with_what_depends_on_it(settings):
    r.record_build(settings, _plan(settings))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("drop table reference.seed_s")
    plan = _plan(settings)
    assert plan.rebuild == {"seed.p.seed_s", "model.p.dim_s"}


def test_a_missing_source_table_counts_as_changed(settings):
    r.record_build(settings, _plan(settings))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("drop table valid.b")
    plan = _plan(settings)
    assert plan.changed_sources == ["source.p.valid.b"]
    assert plan.rebuild == {"model.p.stg_b", "model.p.int_ab"}


def test_the_record_is_the_last_successful_build_and_only_one_row(settings):
    r.record_build(settings, _plan(settings))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("insert into valid.b values (7)")
    r.record_build(settings, _plan(settings))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute(f"select count(*) from {r.BUILD_STATE}").fetchone()[0] == 1
    assert _plan(settings).rebuild == set()


def test_a_build_that_succeeded_empties_the_change_logs_it_read_and_only_those_runs(settings):
    manifest = {**MANIFEST, "sources": {**MANIFEST["sources"], "source.p.linkage.person_changes": {
        "source_name": "linkage", "name": "person_changes", "schema": "linkage", "identifier": "person_changes",
        "meta": {"change_log": True}}}}
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema linkage")
        con.execute("create table linkage.person_changes as select 1::bigint as link_run, 'LP1' as person_id")
        con.execute("create table ops.dbt_changed_people as select 'LP1' as person_id")
    r.record_build(settings, r.plan_build(settings, manifest, "p1"))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("insert into linkage.person_changes values (2, 'LP2'), (2, 'LP3')")
    # A log's rows are not data: a night that only logged people rebuilds nothing for it.
    plan = r.plan_build(settings, manifest, "p1")
    assert plan.rebuild == set() and plan.link_runs == 2
    with duckdb.connect(str(settings.warehouse_path)) as con:  # a run logged after the plan is kept
        con.execute("insert into linkage.person_changes values (3, 'LP4')")
    r.record_build(settings, plan)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select * from linkage.person_changes").fetchall() == [(3, "LP4")]
        assert con.execute("select count(*) from ops.dbt_changed_people").fetchone()[0] == 0


# ----------------------------------------------------------------------------- parse inputs

@pytest.fixture
def project(tmp_path):
    p = tmp_path / "dbt_project"
    for rel, text in {"dbt_project.yml": "name: p\n", "models/staging/_sources.yml": "version: 2\n",
                      "models/m.sql": "select 1\n", "seeds/place/address_lookup.csv": "a\n1\n"}.items():
        (p / rel).parent.mkdir(parents=True, exist_ok=True)
        (p / rel).write_text(text)
    (p / "target").mkdir()
    (p / "target" / "manifest.json").write_text("{}")
    return SimpleNamespace(dbt_project_dir=p, warehouse_path=tmp_path / "w.duckdb")


def _mark(s):
    fp = r.project_fingerprint(s)
    (s.dbt_project_dir / "target" / r.PARSE_MARKER).write_text(
        r.json.dumps({"fingerprint": fp, "manifest_sha256": r._file_sha256(s.dbt_project_dir / "target" / "manifest.json")}))
    return fp


@pytest.mark.parametrize("rel", ["models/staging/_sources.yml", "seeds/place/address_lookup.csv", "models/m.sql",
                                 "dbt_project.yml"])
def test_any_changed_input_makes_the_manifest_stale(project, rel):
    _mark(project)
    assert r.manifest_is_current(project, r.project_fingerprint(project))
    (project.dbt_project_dir / rel).write_text("changed\n")
    assert not r.manifest_is_current(project, r.project_fingerprint(project))


def test_a_new_file_another_warehouse_or_a_rewritten_manifest_make_it_stale(project, tmp_path):
    fp = _mark(project)
    (project.dbt_project_dir / "models" / "new.sql").write_text("select 2\n")
    assert r.project_fingerprint(project) != fp
    (project.dbt_project_dir / "models" / "new.sql").unlink()
    assert r.project_fingerprint(project) == fp
    assert r.project_fingerprint(SimpleNamespace(dbt_project_dir=project.dbt_project_dir,
                                                 warehouse_path=tmp_path / "other.duckdb")) != fp
    (project.dbt_project_dir / "target" / "manifest.json").write_text('{"other": 1}')
    assert not r.manifest_is_current(project, fp)


def test_another_duckdb_version_is_another_project(project, monkeypatch):
    # Stored tables hold values of DuckDB's hash function (key_hash, person_key): another
    # version may hash differently, so its first build must be a full one.
    fp = r.project_fingerprint(project, with_env=False)
    real = r.version
    monkeypatch.setattr(r, "version", lambda name: "0.0.1" if name == "duckdb" else real(name))
    assert r.project_fingerprint(project, with_env=False) != fp


def test_what_dbt_writes_itself_is_not_an_input(project):
    fp = _mark(project)
    (project.dbt_project_dir / "target" / "run_results.json").write_text("{}")
    (project.dbt_project_dir / "logs").mkdir()
    (project.dbt_project_dir / "logs" / "dbt.log").write_text("x")
    assert r.project_fingerprint(project) == fp


def test_kept_nodes_are_reported_after_what_they_depend_on():
    manifest = {**MANIFEST, "parent_map": {
        "model.p.stg_a": ["source.p.valid.a"], "model.p.stg_b": ["source.p.valid.b"],
        "model.p.int_ab": ["model.p.stg_a", "model.p.stg_b"], "model.p.dim_s": ["seed.p.seed_s"],
        "seed.p.seed_s": [], "source.p.valid.a": [], "source.p.valid.b": []}}
    order = r.topological(manifest, {"model.p.int_ab", "model.p.stg_b", "model.p.dim_s", "seed.p.seed_s", "model.p.stg_a"})
    assert sorted(order) == sorted({"model.p.int_ab", "model.p.stg_b", "model.p.dim_s", "seed.p.seed_s", "model.p.stg_a"})
    assert order.index("model.p.stg_a") < order.index("model.p.int_ab") > order.index("model.p.stg_b")
    assert order.index("seed.p.seed_s") < order.index("model.p.dim_s")


def test_only_the_newest_dbt_invocation_folders_are_kept(tmp_path):
    import os

    from orchestration.partnership.dbt.runner import prune_invocation_dirs

    target = tmp_path / "target"
    names = [f"partnership_dbt_models-{i:07x}-abcdef{i % 10}" for i in range(12)] + [f"{i:07x}" for i in range(100, 103)]
    for n, name in enumerate(names):
        (target / name).mkdir(parents=True)
        (target / name / "run_results.json").write_text("{}")
        os.utime(target / name, (1_000_000 + n, 1_000_000 + n))
    for keep in ("manifest.json", "partial_parse.msgpack"):
        (target / keep).write_text("x")
    (target / "compiled").mkdir()
    (target / "run").mkdir()
    removed = prune_invocation_dirs(target, keep=4)
    assert sorted(p.name for p in removed) == sorted(names[:-4])
    assert sorted(p.name for p in target.iterdir()) == sorted(names[-4:] + ["manifest.json", "partial_parse.msgpack",
                                                                               "compiled", "run"])


def test_the_build_state_does_not_depend_on_where_the_warehouse_is(project, tmp_path):
    # A warehouse copied or restored to another path keeps its build state (it describes the
    # tables beside it), and the manifest (it holds only the database name, the file's stem).
    moved = SimpleNamespace(dbt_project_dir=project.dbt_project_dir, warehouse_path=tmp_path / "moved" / "w.duckdb")
    assert r.project_fingerprint(moved, with_env=False) == r.project_fingerprint(project, with_env=False)
    assert r.project_fingerprint(moved) == r.project_fingerprint(project)
    before = r.project_fingerprint(moved, with_env=False)
    (project.dbt_project_dir / "models" / "m.sql").write_text("select 2\n")
    assert r.project_fingerprint(moved, with_env=False) != before
