"""Lay the graph out and write it as SVG: plain text, written by minirt itself.

Runs in: anywhere (pure: a model.Graph in, a string out).

Layout, top to bottom (one column per network, left to right in the order asked):

    [ host: uplink, default route ]
        |  uplink edges to each bridge; port edges fan out below the host
    [ bridge ] [ bridge ] ...
      |          each veth edge runs down a bus of its own on its column's left, then right
      +-[ container ]-----+   into its container; a connected network's edge turns across first
      |                   |   each port edge comes down a lane on its column's right and enters
      +-[ container ]     |   the container from the right, labelled host IP:port/proto -> port
    [ disagreements: the list, in red ]

Orthogonal routes keep edges out of boxes without a general router (Graphviz's job, which we
do not want to need). Every node is a <g class="node KIND" id="node-..."> holding a rect and
its text; every edge a <g class="edge KIND" id="edge-..." data-src=... data-dst=...> holding a path and its
label; a disagreement adds the class "bad" and a red stroke (#d00), so a test (or a browser's
find) can pick them out with any XML parser. Presentation attributes, not CSS, so converters
without a CSS engine (cairosvg, rsvg) draw the same picture.
"""

from minirt.graph.model import Graph, Node

RED, RED_FILL = "#d00", "#fdd"
FILL = {"host": "#e8eefc", "bridge": "#e6f4e6", "container": "#ffffff", "stray": RED_FILL}
EDGE = {"uplink": "#666666", "veth": "#2e7d32", "port": "#1f5fbf"}
CHAR_W, LINE_H, FONT = 7.2, 15, 12
MARGIN, BUS, LANE, LABEL_ROOM = 20, 8, 9, 190


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _id(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in text)


class _Box:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x: float, y: float, w: float, h: float) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h


def _text_width(n: Node) -> float:
    return max(len(t) for t in [n.title] + [t for t, _b in n.lines]) * CHAR_W + 20


def _height(n: Node, stubs: int = 0) -> float:
    return max(22 + LINE_H * len(n.lines) + 6, 18 + 14 * stubs + 8)


def render(g: Graph) -> str:
    columns = list(g.columns)
    if any(n.column is None for n in g.nodes.values() if n.kind in ("container", "stray")):
        columns.append(None)
    below = {c: [n for n in g.nodes.values() if n.kind in ("container", "stray") and n.column == c] for c in columns}
    veths = [e for e in g.edges if e.kind == "veth"]
    ports = [e for e in g.edges if e.kind == "port"]
    into = {n.id: [e for e in veths if e.dst == n.id] for n in g.nodes.values()}
    ports_of = {n.id: [e for e in ports if e.dst == n.id] for n in g.nodes.values()}

    # columns: widths and x positions
    xs, widths, col_of = {}, {}, {}
    x = MARGIN
    for c in columns:
        nodes = below[c] + ([g.nodes[f"bridge:{c}"]] if c is not None else [])
        buses = sum(len(into[n.id]) for n in below[c])
        lanes = sum(len(ports_of[n.id]) for n in below[c])
        box_w = min(max([230] + [_text_width(n) for n in nodes]), 560)
        xs[c] = x
        label_w = max([len(e.label) * 6.6 + 24 for n in below[c] for e in ports_of[n.id]] + [LABEL_ROOM])
        widths[c] = (BUS * (buses + 1) + 10, box_w, LANE * (lanes + 1) + (label_w if lanes else 30))
        x += sum(widths[c])
        for n in below[c]:
            col_of[n.id] = c
    longest = max([len(p) + 2 for p in g.problems] + [0]) * CHAR_W + 2 * MARGIN
    total_w = max(x + MARGIN - (30 if not ports else 0), 420, longest)

    boxes: dict[str, _Box] = {}
    host = g.nodes["host"]
    hw = max(_text_width(host), 240)
    boxes["host"] = _Box((total_w - hw) / 2, MARGIN + 24, hw, _height(host))
    host_bottom = boxes["host"].y + boxes["host"].h
    bridge_y = host_bottom + 50 + 6 * len(ports)
    for c in g.columns:
        n = g.nodes[f"bridge:{c}"]
        boxes[n.id] = _Box(xs[c] + widths[c][0], bridge_y, widths[c][1], _height(n))
    bridge_bottom = max([b.y + b.h for k, b in boxes.items() if k != "host"] + [bridge_y])
    cross = [e for e in veths if e.src.startswith("bridge:") and g.nodes[e.src].column != col_of.get(e.dst)]
    top = bridge_bottom + 50 + 8 * len(cross)
    bottom = top
    for c in columns:
        y = top
        for n in below[c]:
            labels = len(into[n.id])
            y += 14 * max(labels - 1, 0)  # room for the veth labels stacked above the box
            boxes[n.id] = _Box(xs[c] + widths[c][0], y, widths[c][1], _height(n, len(ports_of[n.id]) + labels))
            y += boxes[n.id].h + 40
        bottom = max(bottom, y)

    out = [f'<g class="title"><text x="{MARGIN}" y="{MARGIN + 4}" font-size="14" font-weight="bold">'
           "minirt network graph</text></g>"]  # fmt: skip
    # edges first, so boxes and labels sit on top of them
    for e in [e for e in g.edges if e.kind == "uplink"]:
        a, b = boxes["host"], boxes[e.dst]
        d = f"M{a.x + a.w / 2:.1f},{host_bottom:.1f} L{b.x + b.w / 2:.1f},{b.y:.1f}"
        mx, my = (a.x + a.w / 2 + b.x + b.w / 2) / 2, (host_bottom + b.y) / 2
        out.append(_edge(e, d, mx + 4, my, "start"))
    bus_i = {c: 0 for c in columns}
    cross_i = 0
    stub_i: dict[str, int] = {}
    for e in veths:
        c = col_of[e.dst]
        src, dst = boxes[e.src], boxes[e.dst]
        bus_x = xs[c] + BUS * (bus_i[c] + 1)
        bus_i[c] += 1
        k = stub_i.get(e.dst, 0)
        stub_i[e.dst] = k + 1
        stub_y = dst.y + 18 + 14 * k
        if e in cross:
            start_x = src.x + src.w - 12 - 6 * cross_i
            turn_y = bridge_bottom + 20 + 8 * cross_i
            cross_i += 1
            d = (f"M{start_x:.1f},{src.y + src.h:.1f} V{turn_y:.1f} H{bus_x:.1f} V{stub_y:.1f} "
                 f"H{dst.x:.1f}")  # fmt: skip
        else:
            d = f"M{src.x + 12:.1f},{src.y + src.h:.1f} H{bus_x:.1f} V{stub_y:.1f} H{dst.x:.1f}"
        out.append(_edge(e, d, dst.x + 4, dst.y - 6 - 14 * k, "start"))
    lane_i = {c: 0 for c in columns}
    for p, e in enumerate(ports):
        c = col_of[e.dst]
        dst = boxes[e.dst]
        lane_x = dst.x + dst.w + LANE * (lane_i[c] + 1)
        lane_i[c] += 1
        k = stub_i.get(e.dst, 0)
        stub_i[e.dst] = k + 1
        stub_y = dst.y + 18 + 14 * k
        hx = boxes["host"].x + boxes["host"].w / 2 + (p - (len(ports) - 1) / 2) * 10
        turn_y = host_bottom + 14 + 6 * p
        d = f"M{hx:.1f},{host_bottom:.1f} V{turn_y:.1f} H{lane_x:.1f} V{stub_y:.1f} H{dst.x + dst.w:.1f}"
        label_x = dst.x + dst.w + LANE * (sum(len(ports_of[n.id]) for n in below[c]) + 1) + 4
        out.append(_edge(e, d, label_x, stub_y + 4, "start"))
    for nid, box in boxes.items():
        out.append(_node(g.nodes[nid], box))
    bottom = _problems(g, out, bottom)
    height = bottom + MARGIN
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {total_w:.0f} {height:.0f}" font-family="DejaVu Sans Mono, monospace" '
            f'font-size="{FONT}">\n<rect x="0" y="0" width="{total_w:.0f}" height="{height:.0f}" fill="#ffffff"/>\n'
            + "\n".join(out) + "\n</svg>\n")  # fmt: skip


def _node(n: Node, b: _Box) -> str:
    bad = n.bad or n.kind == "stray"
    stroke = RED if bad else "#333333"
    fill = RED_FILL if bad and n.kind != "container" else FILL[n.kind]
    cls = f"node {n.kind}" + (" bad" if bad else "")
    parts = [f'<g class="{cls}" id="node-{_id(n.id)}" data-kind="{n.kind}">',
             f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="6" fill="{fill}" '
             f'stroke="{stroke}" stroke-width="{2.5 if bad else 1.2}"/>',
             f'<text class="title" x="{b.x + 10:.1f}" y="{b.y + 17:.1f}" font-weight="bold">'
             f"{_esc(n.title)}</text>"]  # fmt: skip
    for i, (text, line_bad) in enumerate(n.lines):
        y = b.y + 17 + LINE_H * (i + 1)
        attrs = f' class="line bad" fill="{RED}"' if line_bad else ' class="line"'
        parts.append(f'<text{attrs} x="{b.x + 10:.1f}" y="{y:.1f}">{_esc(text)}</text>')
    parts.append("</g>")
    return "\n".join(parts)


def _edge(e, d: str, lx: float, ly: float, anchor: str) -> str:
    color = RED if e.bad else EDGE[e.kind]
    dash = ' stroke-dasharray="6,4"' if e.dashed else ""
    cls = f"edge {e.kind}" + (" bad" if e.bad else "")
    w = len(e.label) * 6.6 + 4
    rx = lx - 2 if anchor == "start" else lx - w / 2
    # a white plate under the label (not paint-order: converters without it hide the text)
    return (f'<g class="{cls}" id="edge-{_id(e.id)}" data-src="{_esc(e.src)}" data-dst="{_esc(e.dst)}">'
            f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{2.5 if e.bad else 1.5}"{dash}/>'
            f'<rect x="{rx:.1f}" y="{ly - 10:.1f}" width="{w:.1f}" height="13" fill="#ffffff" fill-opacity="0.85"/>'
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="11" fill="{color}">'
            f"{_esc(e.label)}</text></g>")  # fmt: skip


def _problems(g: Graph, out: list[str], y: float) -> float:
    if not g.problems:
        out.append(f'<g id="disagreements" class="ok"><text x="{MARGIN}" y="{y + 10:.1f}" fill="#2e7d32">'
                   "no disagreements: the kernel matches minirt's records</text></g>")  # fmt: skip
        return y + 16
    out.append('<g id="disagreements" class="bad">')
    out.append(f'<text x="{MARGIN}" y="{y + 10:.1f}" fill="{RED}" font-weight="bold">'
               f"disagreements ({len(g.problems)}): the kernel and minirt's records differ</text>")  # fmt: skip
    for i, p in enumerate(g.problems):
        out.append(f'<text class="problem" x="{MARGIN + 10}" y="{y + 10 + LINE_H * (i + 1):.1f}" fill="{RED}">'
                   f"{_esc(p)}</text>")  # fmt: skip
    out.append("</g>")
    return y + 10 + LINE_H * (len(g.problems) + 1)
