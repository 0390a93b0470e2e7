"""The batch suites' Data Docs site: each stored result gets its page once, in the data folder it belongs to."""

from __future__ import annotations

import re
import shutil

import orchestration.partnership.validation.batch as gx_batch


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


def _unstamped(page) -> str:
    """A page without what differs at every rendering (element ids, build times)."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", page.read_text())
    return re.sub(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+Z?|\?d=[0-9T.]+Z", "<time>", text)


def test_pages_rendered_from_compiled_templates_kept_in_memory_are_the_pages_compiled_afresh(demo_night, tmp_path):
    settings, _ = demo_night
    gx_dir = tmp_path / "gx"
    shutil.copytree(settings.reports_dir / "gx", gx_dir)
    page = sorted(_pages(gx_dir))[0]
    gx_batch._context(gx_dir)
    gx_batch._TEMPLATE_CODE.clear()  # every template compiled afresh for this build ...
    page.unlink()
    gx_batch.build_docs(gx_dir)
    fresh = _unstamped(page)
    assert gx_batch._TEMPLATE_CODE
    page.unlink()
    gx_batch.build_docs(gx_dir)  # ... and taken from memory for this one
    assert _unstamped(page) == fresh
    custom = (gx_dir / "gx" / "plugins" / "custom_data_docs" / "styles" / "data_docs_custom_styles.css").read_text()
    assert custom.strip() and custom.strip() in page.read_text()  # the project's own styles, included as GX includes them
