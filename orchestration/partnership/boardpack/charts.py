"""The pack's charts: Altair (Vega-Lite) specifications rendered to static SVG offline by vl-convert.

Readable in greyscale: values are black markers, intervals are error bars, the target is a
dashed line and the area's value a solid one; ward comparisons differ by marker shape, not
colour. Every chart comes with a text alternative that says what it shows.
"""

from __future__ import annotations

import re

import altair as alt
import vl_convert as vlc

from .model import NOT_CALCULATED, SHOWN, SUPPRESSED, IndicatorSection, breakdown_label
from .numbers import fmt_value

FONT = "DejaVu Sans, Arial, sans-serif"
INK, GREY, LIGHT = "#111111", "#555555", "#bbbbbb"
WIDTH = 620
SHAPES = {"higher": "triangle-up", "lower": "triangle-down", "similar": "circle", "not_compared": "diamond"}
COMPARISON_WORDS = {"higher": "significantly higher than", "lower": "significantly lower than",
                    "similar": "not significantly different from", "not_compared": "not compared with"}


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (chart.configure(font=FONT, background="white")
            .configure_axis(labelColor=INK, titleColor=INK, domainColor=GREY, tickColor=GREY, gridColor="#e6e6e6",
                            labelFontSize=11, titleFontSize=11)
            .configure_view(stroke=None)
            .configure_legend(labelFontSize=11, titleFontSize=11, symbolStrokeColor=INK, orient="bottom"))


# Altair checks each spec against the Vega-Lite JSON schema (a third of a pack's render time). The
# specs are built here, their shape fixed by this code, not by the data: the tests render them with
# the check on (tests/integration/test_boardpack.py); a night renders them without it.
VALIDATE = False


def to_svg(chart: alt.TopLevelMixin, description: str) -> str:
    """Static SVG, no scripts, no external references; the description becomes its accessible name."""
    svg = vlc.vegalite_to_svg(chart.to_dict(validate=VALIDATE), allowed_base_urls=[])
    svg = re.sub(r"^<svg ", f'<svg role="img" aria-label="{_attr(description)}" focusable="false" ', svg, count=1)
    return svg


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def trend(section: IndicatorSection) -> tuple[str, str] | None:
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
    data = alt.Data(values=rows)
    x = alt.X("period:O", sort=order, title=None, axis=alt.Axis(labelAngle=-30 if len(order) > 8 else 0))
    shown = alt.datum.state == "shown"
    y_title = section.unit
    base = alt.Chart(data)
    layers = [
        base.mark_rule(color=INK, strokeWidth=1.2).encode(x=x, y=alt.Y("lower:Q", title=y_title), y2="upper:Q")
        .transform_filter(shown & alt.expr.isValid(alt.datum.lower)),
        base.mark_tick(color=INK, thickness=1.2, size=10).encode(x=x, y="lower:Q").transform_filter(shown & alt.expr.isValid(alt.datum.lower)),
        base.mark_tick(color=INK, thickness=1.2, size=10).encode(x=x, y="upper:Q").transform_filter(shown & alt.expr.isValid(alt.datum.upper)),
        base.mark_line(color=INK, strokeWidth=1.5).encode(x=x, y="value:Q", detail="segment:N").transform_filter(shown),
        base.mark_point(filled=True, color=INK, size=60, shape="circle").encode(
            x=x, y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=True)),
            tooltip=["period:O", "value:Q", "lower:Q", "upper:Q"]).transform_filter(shown),
        base.mark_text(color=GREY, angle=270, align="left", baseline="middle", fontSize=10, dy=0)
        .encode(x=x, y=alt.value(0), text=alt.Text("state:N")).transform_filter(~shown)
        .transform_calculate(state="datum.state == 'suppressed' ? 'suppressed ⊘' : 'not calculated'"),
        base.mark_rule(color=LIGHT, strokeDash=[2, 3]).encode(x=x).transform_filter(~shown),
    ]
    if section.target is not None:
        t = alt.Chart(alt.Data(values=[{"target": section.target, "label": f"Target {fmt_value(section.target)}"}]))
        layers += [t.mark_rule(color=GREY, strokeDash=[8, 4], strokeWidth=1.5).encode(y="target:Q"),
                   t.mark_text(color=GREY, align="right", baseline="bottom", dy=-3, fontSize=10)
                   .encode(y="target:Q", x=alt.value(WIDTH), text="label:N")]
    chart = alt.layer(*layers).properties(width=WIDTH, height=220)
    return to_svg(_config(chart), trend_text(section)), trend_text(section)


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


def wards(section: IndicatorSection) -> tuple[str, str] | None:
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
    base = alt.Chart(alt.Data(values=rows))
    y = alt.Y("ward:N", sort=order, title=None)
    x_title = section.unit
    layers = [
        base.mark_rule(color=INK).encode(y=y, x=alt.X("lower:Q", title=x_title), x2="upper:Q")
        .transform_filter(alt.expr.isValid(alt.datum.lower)),
        base.mark_point(filled=True, color=INK, size=70).encode(
            y=y, x=alt.X("value:Q", title=x_title, scale=alt.Scale(zero=True)),
            shape=alt.Shape("comparison:N", scale=alt.Scale(domain=domain, range=list(SHAPES.values())),
                             legend=alt.Legend(title=f"Compared with {section.trend[0].geography_name if section.trend else 'the area'}"))),
    ]
    if cmp.area is not None and cmp.area.state == SHOWN:
        a = alt.Chart(alt.Data(values=[{"v": cmp.area.value, "label": f"{cmp.area.geography_name} {fmt_value(cmp.area.value)}"}]))
        layers += [a.mark_rule(color=INK, strokeWidth=1.5).encode(x="v:Q"),
                   a.mark_text(color=INK, align="left", dx=3, dy=-4, baseline="bottom", fontSize=10)
                   .encode(x="v:Q", y=alt.value(0), text="label:N")]
    if section.target is not None:
        t = alt.Chart(alt.Data(values=[{"v": section.target, "label": f"Target {fmt_value(section.target)}"}]))
        layers += [t.mark_rule(color=GREY, strokeDash=[8, 4], strokeWidth=1.5).encode(x="v:Q"),
                   t.mark_text(color=GREY, align="left", dx=3, baseline="top", fontSize=10)
                   .encode(x="v:Q", y=alt.value(0), text="label:N")]
    chart = alt.layer(*layers).properties(width=WIDTH - 120, height=max(120, 22 * len(rows)))
    text = wards_text(section)
    return to_svg(_config(chart), text), text


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


__all__ = ["trend", "wards", "trend_text", "wards_text", "breakdown_label"]
