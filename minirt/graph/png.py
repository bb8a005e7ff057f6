"""PNG output, only through a well-kept converter that is already installed.

Runs in: `minirt network graph -o FILE.png`.

minirt writes SVG itself (svg.py) and depends on nothing for it. For PNG it uses, in order:
cairosvg (pip install cairosvg; it rasterises our own SVG, so the picture is the same), or
Graphviz's `dot` (apt install graphviz), which lays out a DOT description of the same model
itself (to_dot below: same nodes, edges and red marks, Graphviz's layout). With neither, -o
FILE.png is one clear error naming both; nothing is installed behind the user's back.
"""

from minirt.errors import ConfigError
from minirt.graph.model import Graph

RED = "#dd0000"


def write_png(g: Graph, svg_text: str, path: str, have_cairosvg=None, dot_path=None) -> str:
    """Write `path`; returns which converter did it. have_cairosvg / dot_path: what is
    installed (found here when None)."""
    if have_cairosvg is None:
        try:
            import cairosvg

            have_cairosvg = cairosvg is not None
        except (ImportError, OSError):  # OSError: cairocffi without libcairo
            have_cairosvg = False
    if have_cairosvg:
        import cairosvg

        cairosvg.svg2png(bytestring=svg_text.encode(), write_to=path)
        return "cairosvg"
    if dot_path is None:
        import shutil

        dot_path = shutil.which("dot")
    if dot_path:
        import subprocess

        r = subprocess.run([dot_path, "-Tpng", "-o", path], input=to_dot(g), capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            raise ConfigError(f"graph: dot -Tpng failed: {r.stderr.strip() or r.returncode}")
        return "graphviz"
    raise ConfigError("graph: PNG needs cairosvg (pip install cairosvg) or Graphviz (apt install graphviz); "
                      "neither is installed. Use -o FILE.svg, which minirt writes itself")  # fmt: skip


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'  # labels use DOT's own \\n and \\l escapes


def to_dot(g: Graph) -> str:
    """The model as Graphviz DOT: a box per node (bad lines and nodes red), an edge per edge."""
    out = ["digraph minirt {", '  rankdir=TB; node [shape=box, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']  # fmt: skip
    for n in g.nodes.values():
        label = "\\n".join([n.title] + [("!! " if b else "") + t for t, b in n.lines])
        color = f", color={_q(RED)}, fontcolor={_q(RED)}, penwidth=2" if n.bad or n.kind == "stray" else ""
        out.append(f"  {_q(n.id)} [label={_q(label)}{color}];")
    for e in g.edges:
        style = ", style=dashed" if e.dashed else ""
        color = f", color={_q(RED)}, fontcolor={_q(RED)}, penwidth=2" if e.bad else ""
        out.append(f"  {_q(e.src)} -> {_q(e.dst)} [label={_q(e.label)}{style}{color}];")
    if g.problems:
        text = "\\l".join(["disagreements:"] + g.problems) + "\\l"
        out.append(f"  problems [shape=note, label={_q(text)}, color={_q(RED)}, fontcolor={_q(RED)}];")
    out.append("}")
    return "\n".join(out) + "\n"
