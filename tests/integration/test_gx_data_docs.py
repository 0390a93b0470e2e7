"""The batch suites' Data Docs site: each stored result gets its page once, in the data folder it belongs to."""

from __future__ import annotations

import shutil

from orchestration.partnership import gx_batch


def _pages(gx_dir):
    return {p: p.stat().st_mtime_ns for p in (gx_dir / "data_docs" / "validations").rglob("*.html")}


def test_a_moved_gx_project_renders_only_missing_pages_into_its_own_folder(demo_night, tmp_path):
    settings, _ = demo_night
    original = settings.reports_dir / "gx"
    before = _pages(original)
    moved = tmp_path / "restored" / "gx"
    shutil.copytree(original, moved)
    results = gx_batch._context(moved).validation_results_store.list_keys()
    assert len(results) == len(before) > 0  # the night rendered one page per stored result

    copied = _pages(moved)
    gone = sorted(copied)[: 2]
    for p in gone:
        p.unlink()
    gx_batch.build_docs(moved)
    after = _pages(moved)
    assert set(after) == set(copied)  # the two missing pages are back
    assert all(after[p] == copied[p] for p in copied if p not in gone)  # the others were not rendered again
    assert _pages(original) == before  # nothing written into the folder it was copied from
    assert "restored" in (moved / "gx" / "great_expectations.yml").read_text()

    gx_batch.build_docs(moved, everything=True)
    assert set(_pages(moved)) == set(copied)
