"""The pack's charts: Vega-Lite specifications rendered to static SVG offline by vl-convert.

Readable in greyscale: values are black markers, intervals are error bars, the target is a
dashed line and the area's value a solid one; ward comparisons differ by marker shape, not
colour. Every chart comes with a text alternative that says what it shows.

The specifications are written here as the JSON Vega-Lite reads (what Altair's `to_dict` made of
the same layers, without building Altair's objects: a second a pack, and its import). Their shape
is fixed by this code, not by the data; the tests check every chart of a pack against the
Vega-Lite JSON schema (tests/integration/test_boardpack.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

import vl_convert as vlc

from orchestration.partnership.boardpack.model import (
    NOT_CALCULATED,
    SHOWN,
    SUPPRESSED,
    IndicatorSection,
    breakdown_label,
)
from orchestration.partnership.boardpack.numbers import fmt_value

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
FONT = "DejaVu Sans, Arial, sans-serif"
INK, GREY, LIGHT = "#111111", "#555555", "#bbbbbb"
WIDTH = 620
SHAPES = {"higher": "triangle-up", "lower": "triangle-down", "similar": "circle", "not_compared": "diamond"}
COMPARISON_WORDS = {"higher": "significantly higher than", "lower": "significantly lower than",
                    "similar": "not significantly different from", "not_compared": "not compared with"}
CONFIG = {
    "view": {"continuousWidth": 300, "continuousHeight": 300, "stroke": None},
    "axis": {"domainColor": GREY, "gridColor": "#e6e6e6", "labelColor": INK, "labelFontSize": 11, "tickColor": GREY,
             "titleColor": INK, "titleFontSize": 11},
    "background": "white",
    "font": FONT,
    "legend": {"labelFontSize": 11, "orient": "bottom", "symbolStrokeColor": INK, "titleFontSize": 11},
}


def _chart(layers: list[dict], width: int, height: int) -> dict:
    return {"config": CONFIG, "layer": layers, "height": height, "width": width, "$schema": SCHEMA}


def _layer(values: list[dict], mark: dict, encoding: dict, *transform: dict) -> dict:
    layer = {"data": {"values": values}, "mark": mark, "encoding": encoding}
    if transform:
        layer["transform"] = list(transform)
    return layer


def _q(field: str, **more) -> dict:
    return {"field": field, **more, "type": "quantitative"}


def to_svg(spec: dict, description: str, cache: Path | None = None) -> str:
    """Static SVG, no scripts, no external references; the description becomes its accessible name.
    `cache`: a folder of SVGs already converted (`_converted`)."""
    svg = _converted(spec, cache)
    svg = re.sub(r"^<svg ", f'<svg role="img" aria-label="{_attr(description)}" focusable="false" ', svg, count=1)
    return svg


# Charts converted and not used again for this long are removed from the cache (`prune_cache`).
CACHE_DAYS = 35


def _converted(spec: dict, cache: Path | None) -> str:
    """vl-convert's SVG of `spec`. With `cache`, kept there under the sha256 of the spec's JSON and
    vl-convert's version: the SVG is a function of these alone, and most nights leave every chart of
    a pack as it was (only the data-quality panel or an unplotted cell changed), while converting
    costs vl-convert's start (a second and a half under load) and a few tenths per chart. Written
    by rename (never half a file); a file is touched when used, so `prune_cache` keeps what is in use."""
    if cache is None:
        return vlc.vegalite_to_svg(spec, allowed_base_urls=[])
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"vl-convert {vlc.__version__}\0{text}".encode()).hexdigest()
    path = Path(cache) / f"{digest}.svg"
    try:
        svg = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        svg = None
    if svg is not None and svg.startswith("<svg") and svg.rstrip().endswith("</svg>"):
        os.utime(path)
        return svg
    svg = vlc.vegalite_to_svg(spec, allowed_base_urls=[])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(svg, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return svg


def prune_cache(cache: Path, days: int = CACHE_DAYS) -> int:
    """Remove the cached charts not used for `days`; how many were removed."""
    limit = time.time() - days * 86400
    removed = 0
    for f in Path(cache).glob("*.svg") if Path(cache).is_dir() else ():
        try:
            if f.stat().st_mtime < limit:
                f.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def trend_spec(section: IndicatorSection) -> dict | None:
    """The area's value per period with 95% intervals, the target, and which periods are withheld."""
    if not section.trend:
        return None
    order = [c.period_label for c in section.trend]
    rows = []
    run = 0
    for c in section.trend:
        if c.state != SHOWN:
            run += 1  # a withheld period breaks the line: no line is drawn through it
        rows.append({"period": c.period_label, "value": c.value, "lower": c.lower_ci, "upper": c.upper_ci,
                     "state": {SHOWN: "shown", SUPPRESSED: "suppressed", NOT_CALCULATED: "not calculated"}[c.state],
                     "segment": run, "series": "Value with 95% confidence interval"})
    x = {"axis": {"labelAngle": -30 if len(order) > 8 else 0}, "field": "period", "sort": order, "title": None,
         "type": "ordinal"}
    shown = "(datum.state === 'shown')"
    y_title = section.unit
    layers = [
        _layer(rows, {"type": "rule", "color": INK, "strokeWidth": 1.2},
               {"x": x, "y": _q("lower", title=y_title), "y2": {"field": "upper"}},
               {"filter": f"({shown} && isValid(datum.lower))"}),
        _layer(rows, {"type": "tick", "color": INK, "size": 10, "thickness": 1.2}, {"x": x, "y": _q("lower")},
               {"filter": f"({shown} && isValid(datum.lower))"}),
        _layer(rows, {"type": "tick", "color": INK, "size": 10, "thickness": 1.2}, {"x": x, "y": _q("upper")},
               {"filter": f"({shown} && isValid(datum.upper))"}),
        _layer(rows, {"type": "line", "color": INK, "strokeWidth": 1.5},
               {"detail": {"field": "segment", "type": "nominal"}, "x": x, "y": _q("value")}, {"filter": shown}),
        _layer(rows, {"type": "point", "color": INK, "filled": True, "shape": "circle", "size": 60},
               {"tooltip": [{"field": "period", "type": "ordinal"}, _q("value"), _q("lower"), _q("upper")],
                "x": x, "y": _q("value", scale={"zero": True}, title=y_title)}, {"filter": shown}),
        _layer(rows, {"type": "text", "align": "left", "angle": 270, "baseline": "middle", "color": GREY, "dy": 0,
                      "fontSize": 10},
               {"text": {"field": "state", "type": "nominal"}, "x": x, "y": {"value": 0}},
               {"filter": f"(!{shown})"},
               {"calculate": "datum.state == 'suppressed' ? 'suppressed ⊘' : 'not calculated'", "as": "state"}),
        _layer(rows, {"type": "rule", "color": LIGHT, "strokeDash": [2, 3]}, {"x": x}, {"filter": f"(!{shown})"}),
    ]
    if section.target is not None:
        t = [{"target": section.target, "label": f"Target {fmt_value(section.target)}"}]
        layers += [_layer(t, {"type": "rule", "color": GREY, "strokeDash": [8, 4], "strokeWidth": 1.5},
                          {"y": _q("target")}),
                   _layer(t, {"type": "text", "align": "right", "baseline": "bottom", "color": GREY, "dy": -3,
                              "fontSize": 10},
                          {"text": {"field": "label", "type": "nominal"}, "x": {"value": WIDTH}, "y": _q("target")})]
    return _chart(layers, WIDTH, 220)


def trend(section: IndicatorSection, cache: Path | None = None) -> tuple[str, str] | None:
    spec = trend_spec(section)
    if spec is None:
        return None
    return to_svg(spec, trend_text(section), cache=cache), trend_text(section)


def trend_text(section: IndicatorSection) -> str:
    shown = [c for c in section.trend if c.state == SHOWN]
    what = f"{section.title}, {section.trend[0].geography_name}, by {section.period_type}"
    if not shown:
        return f"{what}: no value can be shown for any period in this release ({len(section.trend)} periods suppressed or not calculated)."
    first, last = shown[0], shown[-1]
    lo = min(shown, key=lambda c: c.value)
    hi = max(shown, key=lambda c: c.value)
    parts = [f"{what}, {section.trend[0].period_label} to {section.trend[-1].period_label}.",
             f"{first.period_label}: {fmt_value(first.value)}; {last.period_label}: {fmt_value(last.value)} {section.unit}.",
             f"Lowest {fmt_value(lo.value)} ({lo.period_label}), highest {fmt_value(hi.value)} ({hi.period_label})."]
    if section.target is not None:
        parts.append(f"Target {fmt_value(section.target)} ({'lower' if section.direction == 'lower' else 'higher'} is better).")
    withheld = [c.period_label for c in section.trend if c.state == SUPPRESSED]
    uncalc = [c.period_label for c in section.trend if c.state == NOT_CALCULATED]
    if withheld:
        parts.append(f"Suppressed: {', '.join(withheld)}.")
    if uncalc:
        parts.append(f"Not calculated: {', '.join(uncalc)}.")
    return " ".join(parts)


def wards_spec(section: IndicatorSection) -> dict | None:
    """A caterpillar plot: each ward's value and 95% interval, ranked, against the area's value."""
    cmp = section.wards
    shown = [(c, how) for c, how in cmp.wards if c.state == SHOWN]
    if not shown:
        return None
    rows = [{"ward": c.geography_name, "value": c.value, "lower": c.lower_ci, "upper": c.upper_ci,
             "comparison": COMPARISON_WORDS[how].replace(" than", "").replace(" from", "").replace(" with", "")}
            for c, how in shown]
    order = [r["ward"] for r in sorted(rows, key=lambda r: r["value"])]
    domain = [COMPARISON_WORDS[k].replace(" than", "").replace(" from", "").replace(" with", "") for k in SHAPES]
    y = {"field": "ward", "sort": order, "title": None, "type": "nominal"}
    x_title = section.unit
    legend = f"Compared with {section.trend[0].geography_name if section.trend else 'the area'}"
    layers = [
        _layer(rows, {"type": "rule", "color": INK}, {"x": _q("lower", title=x_title), "x2": {"field": "upper"}, "y": y},
               {"filter": "isValid(datum.lower)"}),
        _layer(rows, {"type": "point", "color": INK, "filled": True, "size": 70},
               {"shape": {"field": "comparison", "legend": {"title": legend},
                          "scale": {"domain": domain, "range": list(SHAPES.values())}, "type": "nominal"},
                "x": _q("value", scale={"zero": True}, title=x_title), "y": y}),
    ]
    if cmp.area is not None and cmp.area.state == SHOWN:
        a = [{"v": cmp.area.value, "label": f"{cmp.area.geography_name} {fmt_value(cmp.area.value)}"}]
        layers += [_layer(a, {"type": "rule", "color": INK, "strokeWidth": 1.5}, {"x": _q("v")}),
                   _layer(a, {"type": "text", "align": "left", "baseline": "bottom", "color": INK, "dx": 3, "dy": -4,
                              "fontSize": 10},
                          {"text": {"field": "label", "type": "nominal"}, "x": _q("v"), "y": {"value": 0}})]
    if section.target is not None:
        t = [{"v": section.target, "label": f"Target {fmt_value(section.target)}"}]
        layers += [_layer(t, {"type": "rule", "color": GREY, "strokeDash": [8, 4], "strokeWidth": 1.5}, {"x": _q("v")}),
                   _layer(t, {"type": "text", "align": "left", "baseline": "top", "color": GREY, "dx": 3, "fontSize": 10},
                          {"text": {"field": "label", "type": "nominal"}, "x": _q("v"), "y": {"value": 0}})]
    return _chart(layers, WIDTH - 120, max(120, 22 * len(rows)))


def wards(section: IndicatorSection, cache: Path | None = None) -> tuple[str, str] | None:
    spec = wards_spec(section)
    if spec is None:
        return None
    text = wards_text(section)
    return to_svg(spec, text, cache=cache), text


def wards_text(section: IndicatorSection) -> str:
    cmp = section.wards
    if not cmp.wards:
        return f"{section.title}: the release holds no ward values."
    area = cmp.area
    ref = (f"{area.geography_name} {fmt_value(area.value)}" if area is not None and area.state == SHOWN
           else "the area value (not available)")
    parts = [f"{section.title} by ward, {cmp.period}, compared with {ref}."]
    for key in ("higher", "lower", "similar", "not_compared"):
        names = [c.geography_name for c, how in cmp.wards if how == key]
        if names:
            parts.append(f"{COMPARISON_WORDS[key].capitalize()} {area.geography_name if area else 'the area'}: {', '.join(names)}.")
    sup = [c.geography_name for c, how in cmp.wards if how == SUPPRESSED]
    nc = [c.geography_name for c, how in cmp.wards if how == NOT_CALCULATED]
    if sup:
        parts.append(f"Suppressed ({len(sup)}): {', '.join(sup)}.")
    if nc:
        parts.append(f"Not calculated ({len(nc)}): {', '.join(nc)}.")
    return " ".join(parts)


__all__ = ["trend", "wards", "trend_spec", "wards_spec", "trend_text", "wards_text", "breakdown_label"]
