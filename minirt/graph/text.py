"""Text renderings of the graph: the tree `minirt network graph` prints without -o, and one
container's own plumbing for `minirt inspect --plumbing`.

Runs in: anywhere (pure: a model.Graph in, lines out). Plain ASCII, so it survives any
terminal, pipe or log; a disagreement's line starts with `!!` (red in the SVG).
"""

from minirt.graph.model import Graph, Node, bridge_node_id, container_node_id

BAD = "!!"


def tree(g: Graph) -> str:
    host = g.nodes["host"]
    out = ["host: " + ", ".join(t for t, _b in host.lines if not _b)]
    out += [f"{BAD} {t}" for t, b in host.lines if b]
    sections = []
    for network in g.columns:
        sections.append(_bridge_section(g, network))
    loose = [n for n in g.nodes.values() if n.kind == "stray" and n.column is None]
    if loose:
        sections.append(("not on any bridge", [_stray_line(n) for n in loose]))
    ports = [e for e in g.edges if e.kind == "port"]
    if ports:
        sections.append(("published ports", [_port_line(g, e) for e in ports]))
    for i, (head, items) in enumerate(sections):
        last = i == len(sections) - 1
        out.append(("`-- " if last else "|-- ") + head)
        pad = "    " if last else "|   "
        for j, item in enumerate(items):
            first, *rest = item.split("\n")
            end = j == len(items) - 1
            out.append(pad + ("`-- " if end else "|-- ") + first)
            out += [pad + ("    " if end else "|   ") + r for r in rest]
    out.append("")
    out += problems(g)
    return "\n".join(out) + "\n"


def problems(g: Graph) -> list[str]:
    if not g.problems:
        return ["no disagreements: the kernel matches minirt's records"]
    return [f"disagreements ({len(g.problems)}):"] + [f"  {BAD} {p}" for p in g.problems]


def _bridge_section(g: Graph, network: str) -> tuple[str, list[str]]:
    node = g.nodes[bridge_node_id(network)]
    info = node.info
    flags = "".join(f" [{f}]" for f, on in (("internal", info["internal"]), ("icc=false", not info["icc"])) if on)
    head = f"bridge {node.title} (network {network}) {info['subnet']} gw {info['gateway']}{flags}"
    if info.get("subnet6"):
        head += f", {info['subnet6']}"
    items = [f"{BAD} {t}" for t in node.info.get("problems", [])]
    items += [t for t, b in node.lines if not b and t.startswith("CNI attachment")]
    for e in g.edges:
        if e.kind != "veth" or e.src != node.id:
            continue
        dst = g.nodes[e.dst]
        if dst.kind == "stray":
            items.append(_stray_line(dst))
            continue
        ep = next(x for x in dst.info["endpoints"] if x["network"] == network)
        mark = f"{BAD} " if e.bad else ""
        line = f"{mark}{dst.title} {dst.info['status']}: {ep['eth']} {' '.join(ep['addresses'])}  [{e.label}]"
        if ep["connected"]:
            line += " (network connect)"
        items.append("\n".join([line] + [f"{BAD} {p}" for p in ep["problems"]]))
    return head, items


def _stray_line(n: Node) -> str:
    return f"{BAD} " + "; ".join(n.info.get("problems") or [f"{n.title}: " + "; ".join(t for t, _b in n.lines)])


def _port_line(g: Graph, e) -> str:
    dst = g.nodes[e.dst]
    mark = f"{BAD} " if e.bad else ""
    if dst.kind == "stray":
        return f"{mark}{e.label}: no container ({dst.lines[0][0]})"
    return f"{mark}{e.label} on {dst.title}"


def plumbing(g: Graph | None, rec: dict, status: str) -> str:
    """One container, from its netns out: netns -> ethN (address) <-veth-> host end -> bridge
    (subnet) -> uplink, then its published ports and cgroup. A container on no bridge (--net
    none/host/container:X) has only the first and last parts."""
    from minirt import ids

    node = g.nodes.get(container_node_id(rec["id"])) if g else None
    head = f"{rec.get('name') or '?'} ({ids.short(rec['id'])}): {status}"
    if status == "running" and rec.get("pid"):
        head += f", pid {rec['pid']}"
    out = [head]
    if status == "running" and rec.get("pid"):
        netns = node.info.get("netns") if node else None
        out.append(f"  netns   {netns or '?'}  (/proc/{rec['pid']}/ns/net)")
    mode = (rec.get("config") or {}).get("net") or "bridge"
    if node is None:
        why = "it is not running" if mode == "bridge" else f"--net {mode}"
        out.append(f"  network no veth ({why})")
    else:
        host = g.nodes["host"]
        up = host.info.get("uplink")
        gw = next((t for t, _b in host.lines if t.startswith("default via")), "")
        for ep in node.info["endpoints"]:
            out.append(f"  {ep['eth']:<7} {' '.join(ep['addresses']) or '(no address)'}"
                       + ("  (network connect)" if ep["connected"] else ""))  # fmt: skip
            index = f" ifindex {ep['host_index']}" if ep.get("host_index") else ""
            out.append(f"    <-veth-> {ep.get('host_ifname')} (host end{index})")
            flags = "".join(f", {f}" for f, on in (("internal", ep["internal"]), ("icc=false", not ep["icc"])) if on)
            out.append(f"    -> bridge {ep['bridge']} (network {ep['network']}, {ep['subnet']} "
                       f"gw {ep['gateway']}{flags})")  # fmt: skip
            if ep["internal"]:
                out.append("    -> no uplink: an internal network is not routed out")
            elif up:
                out.append(f"    -> uplink {up}" + (f" ({gw})" if gw else ""))
            else:
                out.append("    -> no uplink (the host has no default route)")
            out += [f"    {BAD} {p}" for p in ep["problems"]]
        for p in node.info["ports"]:
            host_ip = f"[{p['host_ip']}]" if ":" in p["host_ip"] else p["host_ip"]
            addr = f"[{p['address']}]" if ":" in p["address"] else p["address"]
            missing = f"  {BAD} not in the kernel's map" if p.get("missing") else ""
            out.append(f"  port    {host_ip}:{p['host_port']}/{p['proto']} -> {addr}:{p['port']}{missing}")
        per_endpoint = {p for ep in node.info["endpoints"] for p in ep["problems"]}
        others = [t for t in node.info.get("problems", []) if t not in per_endpoint]
        out += [f"  {BAD} {t}" for t in others]
    for path, hierarchies in _cgroup_dirs(rec, node).items():
        out.append(f"  cgroup  {path}" + (f"  ({', '.join(hierarchies)})" if hierarchies else ""))
    return "\n".join(out) + "\n"


def _cgroup_dirs(rec: dict, node: Node | None) -> dict[str, list[str]]:
    """{path: [v1 hierarchies]} from the plan's cgroup step. cgroup v1 has a directory per
    hierarchy, mostly the same path under /sys/fs/cgroup/<hierarchy>/: those are shown once,
    as /sys/fs/cgroup/{a,b,...}/PATH; one placed elsewhere gets a line of its own."""
    dirs = node.info.get("cgroup") if node else None
    if dirs is None:
        from minirt.graph.model import _cgroup

        dirs = _cgroup(rec)
    rel: dict[str, list[str]] = {}
    for hierarchy, path in sorted(dirs.items()):
        prefix = f"/sys/fs/cgroup/{hierarchy}/"
        if len(dirs) > 1 and path.startswith(prefix):
            rel.setdefault(path[len(prefix) :], []).append(hierarchy)
        else:
            rel.setdefault(path, [])
    out: dict[str, list[str]] = {}
    for path, hierarchies in rel.items():
        if not hierarchies:
            out[path] = []
        elif len(hierarchies) == 1:
            out[f"/sys/fs/cgroup/{hierarchies[0]}/{path}"] = []
        else:
            out[f"/sys/fs/cgroup/{{{','.join(hierarchies)}}}/{path}"] = []
    return out
