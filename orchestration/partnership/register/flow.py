"""The data-flow picture of an agreement, as inline SVG drawn from its protocol file.

Each controller and the extracts it supplies, into the secure zone, out as the tables and
columns that leave, to the recipient, with the level of the data. Text only in <text> (so it is
text in the PDF too), no script, no image, nothing fetched.
"""

from __future__ import annotations

import textwrap
from xml.sax.saxutils import escape

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.releases.protocols import Protocol

WIDTH = 820
LINE = 11  # px between text lines
COLS = {"controllers": (0, 230), "zone": (262, 128), "tables": (422, 250), "recipient": (704, 116)}
LEVEL_COLOUR = {"aggregate": "#1b7a3e", "pseudonymised": "#9a6700", "identifiable": "#b42318"}


def party_names(protocol: Protocol) -> dict[str, str]:
    return {p["id"]: p["name"] for p in protocol.doc["parties"]}


def _text(x: float, y: float, lines: list[str], cls: str = "", weight: str = "normal") -> str:
    spans = "".join(f'<tspan x="{x}" dy="{0 if i == 0 else LINE}">{escape(t)}</tspan>' for i, t in enumerate(lines))
    return f'<text x="{x}" y="{y}" class="{cls}" font-weight="{weight}">{spans}</text>'


def _wrap(text: str, width_px: float) -> list[str]:
    return textwrap.wrap(text, max(8, int(width_px / 5.6)), break_on_hyphens=False) or [""]


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<path d="M{x1},{y1} C{(x1 + x2) / 2},{y1} {(x1 + x2) / 2},{y2} {x2 - 6},{y2}" class="edge" marker-end="url(#arrow)"/>'


def flow_svg(protocol: Protocol, contracts: dict[str, Contract], items: dict[str, list[str]]) -> str:
    """The picture. `items`: the data items signed (contract -> columns), which name the extracts."""
    names = party_names(protocol)
    blocks = []  # (column, lines, bold first line)
    left = []
    for agency in protocol.doc["controllers"]:
        extracts = [contracts[c].title.split(" — ", 1)[-1] if c in contracts else c.split("__", 1)[1].replace("_", " ")
                    for c in sorted(items) if c.split("__", 1)[0] == agency]
        lines = _wrap(names.get(agency, agency), COLS["controllers"][1] - 12)
        body = [ln for e in extracts for ln in _wrap("• " + e, COLS["controllers"][1] - 16)] or ["(no extract feeds it now)"]
        left.append((lines, body))
    right = []
    for out in protocol.outputs:
        head = _wrap(f"{out['table']} ({out['source']})", COLS["tables"][1] - 12)
        body = _wrap(", ".join(out["columns"]), COLS["tables"][1] - 12)
        right.append((head, body))

    def heights(group):
        return [(len(h) + len(b)) * LINE + 14 for h, b in group]

    gap = 10
    left_h, right_h = heights(left), heights(right)
    total = max(sum(left_h) + gap * (len(left) - 1), sum(right_h) + gap * (len(right) - 1), 120)
    top = 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {total + top + 8}" role="img" '
        f'aria-label="Data flow of {escape(protocol.id)}" class="flow">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        '<style>text{font-family:"DejaVu Sans",sans-serif;font-size:9.5px;fill:#111}.h{font-size:10px;fill:#444}'
        '.box{fill:#fff;stroke:#555;stroke-width:1}.zone{fill:#eef3f8;stroke:#2f5d8a;stroke-width:1.5}'
        '.edge{fill:none;stroke:#555;stroke-width:1}.lv{fill:#fff;font-weight:bold}</style>',
    ]
    for key, title in (("controllers", "Controllers and their extracts"), ("zone", "Secure zone"),
                       ("tables", "Tables and columns that leave"), ("recipient", "Recipient")):
        parts.append(_text(COLS[key][0], 12, [title], "h", "bold"))

    zx, zw = COLS["zone"]
    parts.append(f'<rect x="{zx}" y="{top}" width="{zw}" height="{total}" rx="6" class="zone"/>')
    zone_lines = ["Partnership", "warehouse", "", "validated against", "each contract;", "people linked;",
                  f"level: {protocol.level}"]
    parts.append(_text(zx + 8, top + total / 2 - 3 * LINE, zone_lines))

    def column(group, hs, key):
        x, w = COLS[key]
        y = top + (total - (sum(hs) + gap * (len(group) - 1))) / 2
        mids = []
        for (head, body), h in zip(group, hs):
            parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h - 4}" rx="4" class="box"/>')
            parts.append(_text(x + 6, y + 13, head, "", "bold"))
            parts.append(_text(x + 6, y + 13 + len(head) * LINE, body))
            mids.append(y + (h - 4) / 2)
            y += h + gap
        return mids

    for mid in column(left, left_h, "controllers"):
        parts.append(_arrow(COLS["controllers"][0] + COLS["controllers"][1], mid, zx, mid))
    table_mids = column(right, right_h, "tables")
    for mid in table_mids:
        parts.append(_arrow(zx + zw, mid, COLS["tables"][0], mid))

    rx, rw = COLS["recipient"]
    r_lines = _wrap(protocol.doc["recipient"]["name"], rw - 12)
    rh = len(r_lines) * LINE + 36
    ry = top + (total - rh) / 2
    parts.append(f'<rect x="{rx}" y="{ry}" width="{rw}" height="{rh}" rx="4" class="box"/>')
    parts.append(_text(rx + 6, ry + 14, r_lines, "", "bold"))
    colour = LEVEL_COLOUR[protocol.level]
    parts.append(f'<rect x="{rx + 6}" y="{ry + rh - 20}" width="{rw - 12}" height="14" rx="3" fill="{colour}"/>')
    parts.append(f'<text x="{rx + rw / 2}" y="{ry + rh - 10}" text-anchor="middle" class="lv">{escape(protocol.level)}</text>')
    for mid in table_mids:
        parts.append(_arrow(COLS["tables"][0] + COLS["tables"][1], mid, rx, ry + rh / 2))
    parts.append("</svg>")
    return "\n".join(parts)
