"""Board packs: the indicator refresh a partnership board receives, built only from a release.

`build.build_pack(release_dir, protocol)` writes `board_pack.html` (self-contained) and
`board_pack.pdf` (the same page printed by headless Chromium) into the release folder.
`quality` computes, at release time, the data-quality facts the pack shows.
Heavy imports (vl-convert, Playwright) live in the modules that need them.
"""
