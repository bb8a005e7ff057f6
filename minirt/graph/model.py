"""The topology graph: built from the kernel's facts, checked against minirt's records.

Runs in: anywhere (pure: facts.py's dict in, a Graph out; no I/O), so the unit tests build it
from synthetic facts.

What is drawn is what the kernel has: the host (its uplink, the default route's device), each
network's bridge, each container's veth pair (host end, master, peer in the container's netns,
its addresses) and each published-port element of `inet minirt` (an edge from the host to the
container the element points at). The records say what *should* be there; every place where
the two disagree is a Problem, drawn in red and listed:

    bridge        a network record whose bridge is missing, not a bridge, down, or lacks the
                  gateway address
    veth          a live container's veth that is gone, enslaved elsewhere, or whose peer is not
                  its ethN; an `mr` veth no live record names (left by a crash: `minirt gc`)
    address       ethN without the record's address; a lease that does not name the container
    element       a published port no container claims, or claims with another value; a port a
                  container's plan claims that the kernel's map lacks
    container     a record that says running whose owner and init are gone ("dead")

Nothing here decides what to remove: `minirt gc` does that, from the same two sources
(reconcile.py), with its own rules about what belongs to this state root. Likewise only
elements pointing into this root's subnets and `mr` veths on its bridges (or on none) are
judged, so a second MINIRT_ROOT sharing the netns is not reported as broken.
"""

import re

from minirt import ids
from minirt.errors import NoSuchObject

_VETH = re.compile(r"mr[0-9a-f]{12}|mr[0-9a-f]{11}x[1-9]")  # reconcile.py's: ours by name
SHOWN = ("running", "created", "dead")  # statuses that hold plumbing; exited ones hold none


class Node:
    """kind: host, bridge, container, stray. lines: [(text, bad)], bad lines drawn in red.
    column: the network whose column it sits in (svg.py). info: what text.py's plumbing needs."""

    __slots__ = ("id", "kind", "title", "lines", "column", "info")

    def __init__(self, nid: str, kind: str, title: str, column: str | None = None) -> None:
        self.id, self.kind, self.title, self.column = nid, kind, title, column
        self.lines: list[tuple[str, bool]] = []
        self.info: dict = {}

    @property
    def bad(self) -> bool:
        return any(b for _t, b in self.lines)

    def add(self, text: str, bad: bool = False) -> None:
        self.lines.append((text, bad))


class Edge:
    """kind: uplink (host - bridge), veth (bridge - container), port (host - container)."""

    __slots__ = ("id", "kind", "src", "dst", "label", "bad", "dashed")

    def __init__(self, kind: str, src: str, dst: str, label: str, bad: bool = False, dashed: bool = False) -> None:
        self.id = f"{kind}:{src}->{dst}:{label}"
        self.kind, self.src, self.dst, self.label, self.bad, self.dashed = kind, src, dst, label, bad, dashed


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.problems: list[str] = []
        self.columns: list[str] = []  # network names, left to right (svg.py)

    def node(self, n: Node) -> Node:
        self.nodes[n.id] = n
        return n

    def problem(self, where: Node | Edge | None, text: str, short: str | None = None) -> None:
        """Record a disagreement; it turns `where` red (a node gets `short`, or the text, as a
        red line; the list has the whole text)."""
        self.problems.append(text)
        if isinstance(where, Node):
            where.add(short or text, True)
            where.info.setdefault("problems", []).append(text)
        elif isinstance(where, Edge):
            where.bad = True

    def by_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]


def container_node_id(cid: str) -> str:
    return f"ctr:{ids.short(cid)}"


def bridge_node_id(network: str) -> str:
    return f"bridge:{network}"


def endpoints(rec: dict) -> list[dict]:
    """A container's attachments: its first network (record "network", eth0) and those of
    `network connect` (record "connected"), each as {network, eth, host_ifname, bridge,
    address, prefixlen, address6, connected}."""
    out = []
    net = rec.get("network") or {}
    if net.get("network"):
        out.append({**net, "eth": "eth0", "connected": False})
    for e in rec.get("connected") or []:
        out.append({**e, "connected": True})
    return out


def claimed_elements(rec: dict) -> list[tuple[str, str, str, str]]:
    """(map, key, value, network) of each published element the container's plan claims."""
    from minirt import teardown

    out = []
    for st in teardown.plan_of(rec):
        if st.get("undo") == "ports":
            out += [(m, k, v, st.get("network")) for m, k, v in st.get("elements") or []]
    return out


def parse_element(m: str, key: str, value: str) -> dict:
    """"tcp . 8080" / "10.0.0.1 . tcp . 8080" and "10.88.0.2 . 80" -> host_ip, proto, host_port,
    address, port (firewall/ports.py writes them so)."""
    parts = [p.strip() for p in key.split(" . ")]
    if m.endswith("_ip") and len(parts) == 3:
        host_ip, proto, port = parts
    else:
        host_ip, (proto, port) = ("::" if m.startswith("ports6") else "0.0.0.0"), (parts + ["?", "?"])[:2]
    address, _, cport = value.rpartition(" . ")
    return {"host_ip": host_ip, "proto": proto, "host_port": port, "address": address.strip(), "port": cport.strip()}


def port_label(p: dict) -> str:
    """host IP:port/proto -> container address:port, as `docker port` writes each side."""
    host = f"[{p['host_ip']}]" if ":" in p["host_ip"] else p["host_ip"]
    addr = f"[{p['address']}]" if ":" in p["address"] else p["address"]
    return f"{host}:{p['host_port']}/{p['proto']} -> {addr}:{p['port']}"


def _in(subnet: str | None, address: str) -> bool:
    from minirt.net import inet

    if not subnet:
        return False
    try:
        return inet.contains(subnet, address)
    except ValueError:
        return False


def build(facts: dict, only: list[str] | None = None) -> Graph:
    """The graph of the networks named in `only` (all when empty) and what hangs off them."""
    g = Graph()
    links = {link["name"]: link for link in facts.get("links") or []}
    nets = {n["name"]: n for n in facts.get("networks") or []}
    for name in only or []:
        if name not in nets:
            raise NoSuchObject(f"network {name!r}: no such network")
    # the default network first (most containers are on it), then by name
    selected = sorted((n for n in nets if not only or n in only), key=lambda n: (n != "minirt", n))
    g.columns = list(selected)
    _host(g, facts, links)
    for name in selected:
        _bridge(g, nets[name], links)

    # containers: every record that holds plumbing, on at least one selected network
    shown: dict[str, dict] = {}  # cid -> container facts
    veth_owner: dict[str, str] = {}  # host ifname -> cid, from every record (exited ones too)
    for c in facts.get("containers") or []:
        rec = c["record"]
        for e in endpoints(rec):
            if e.get("host_ifname"):
                veth_owner.setdefault(e["host_ifname"], rec["id"])
        eps = [e for e in endpoints(rec) if e["network"] in selected]
        if c["status"] in SHOWN and eps:
            shown[rec["id"]] = c
            _container(g, c, eps, nets, links)
    _leases(g, nets, selected, shown)
    _stray_veths(g, links, nets, selected, shown, veth_owner)
    _ports(g, facts, nets, selected, shown)
    return g


def _host(g: Graph, facts: dict, links: dict) -> None:
    host = g.node(Node("host", "host", "host"))
    up = facts.get("uplink")
    if up:
        link = links.get(up["name"]) or {}
        addrs = " ".join(a for a in link.get("addresses") or [] if ":" not in a)
        host.add(f"uplink {up['name']} {addrs}".rstrip())
        if up.get("gateway"):
            host.add(f"default via {up['gateway']}")
        host.info["uplink"] = up["name"]
    else:
        host.add("no default route (no uplink)")
    nft = facts.get("nft", "ok")
    if nft not in ("ok", "not read (no network)"):
        g.problem(host, f"nft: {nft}")


def _bridge(g: Graph, net: dict, links: dict) -> None:
    name, bridge = net["name"], net["bridge"]
    node = g.node(Node(bridge_node_id(name), "bridge", bridge, column=name))
    node.info.update(network=name, bridge=bridge, subnet=net["subnet"], gateway=net["gateway"],
                     subnet6=net.get("subnet6"), internal=bool(net.get("internal")),
                     icc=net.get("icc", True))  # fmt: skip
    node.add(f"network {name}")
    node.add(f"{net['subnet']} gw {net['gateway']}")
    if net.get("subnet6"):
        node.add(f"{net['subnet6']} gw {net.get('gateway6')}")
    if net.get("internal"):
        node.add("internal: no route out, no masquerade")
    if not net.get("icc", True):
        node.add("icc=false: containers isolated")
    link = links.get(bridge)
    if link is None:
        g.problem(node, f"bridge {bridge} of network {name} is missing from the kernel", "missing from the kernel")
    elif link.get("kind") != "bridge":
        g.problem(node, f"{bridge} of network {name} is a {link.get('kind') or 'device'}, not a bridge", "not a bridge")
    else:
        if not link.get("up"):
            g.problem(node, f"bridge {bridge} of network {name} is down", "down")
        have = [a.split("/")[0] for a in link.get("addresses") or []]
        if net.get("is_gateway", True) and net["gateway"] not in have:
            g.problem(node, f"bridge {bridge} lacks network {name}'s gateway address {net['gateway']}",
                      f"lacks gateway {net['gateway']}")
    label = "internal: not routed out" if net.get("internal") else "routed + masquerade" if net.get(
        "masquerade", True) else "routed"  # fmt: skip
    g.edges.append(Edge("uplink", "host", node.id, label, dashed=bool(net.get("internal"))))


def _container(g: Graph, c: dict, eps: list[dict], nets: dict, links: dict) -> None:
    rec, status = c["record"], c["status"]
    cid = rec["id"]
    node = g.node(Node(container_node_id(cid), "container", f"{rec.get('name') or '?'} ({ids.short(cid)})",
                       column=eps[0]["network"]))  # fmt: skip
    node.info.update(id=cid, name=rec.get("name"), status=status, pid=rec.get("pid"), endpoints=[], ports=[],
                     netns=(c.get("netns") or {}).get("inode"), cgroup=_cgroup(rec))  # fmt: skip
    node.add(f"{status}" + (f", pid {rec['pid']}" if status == "running" and rec.get("pid") else ""))
    if status == "dead":
        g.problem(node, f"container {node.title}: dead, its owner and init are gone "
                        "(`minirt gc` finishes its teardown)", "dead: run `minirt gc`")  # fmt: skip
    netns = {link["name"]: link for link in (c.get("netns") or {}).get("links") or []}
    by_index = {link["index"]: link for link in netns.values()}
    for e in eps:
        net = nets[e["network"]]
        addrs = [f"{e['address']}/{e.get('prefixlen', '')}".rstrip("/")] if e.get("address") else []
        if e.get("address6"):
            addrs.append(f"{e['address6']}/{e.get('prefixlen6', '')}".rstrip("/"))
        where = f"{e['eth']} {' '.join(addrs)}" + (f" on {e['network']} (network connect)" if e["connected"] else "")
        node.add(where)
        edge = Edge("veth", bridge_node_id(e["network"]), node.id, f"{e.get('host_ifname')} <-> {e['eth']}",
                    dashed=e["connected"])  # fmt: skip
        g.edges.append(edge)
        ep = {**e, "addresses": addrs, "bridge": net["bridge"], "subnet": net["subnet"], "gateway": net["gateway"],
              "internal": bool(net.get("internal")), "icc": net.get("icc", True), "problems": []}  # fmt: skip
        node.info["endpoints"].append(ep)

        def bad(text: str, short: str, ep=ep, edge=edge) -> None:
            ep["problems"].append(text)
            g.problem(node, text, short)
            edge.bad = True

        host = links.get(e.get("host_ifname") or "")
        if status == "dead":
            if host is not None:
                edge.bad = True
            continue  # its veth goes with its netns; the "dead" line says what to do
        if host is None:
            bad(f"veth {e.get('host_ifname')} of {node.title} on {e['network']} is gone from the kernel",
                f"{e['eth']}: host veth {e.get('host_ifname')} is gone")
            continue
        ep["host_index"] = host["index"]
        if host.get("master") != net["bridge"]:
            master = host.get("master") or "no bridge"
            bad(f"veth {host['name']} of {node.title} is on {master}, not on {net['bridge']}",
                f"{e['eth']}: {host['name']} is on {master}, not {net['bridge']}")
        if c.get("netns") is None:
            continue  # not running: nothing to look into
        peer = by_index.get(host.get("peer_index"))
        inside = netns.get(e["eth"])
        if inside is None:
            bad(f"{e['eth']} of {node.title} is missing from its netns", f"{e['eth']}: missing from the netns")
            continue
        if peer is None or peer["name"] != e["eth"] or inside.get("peer_index") != host["index"]:
            bad(f"veth {host['name']}'s peer is not {e['eth']} in {node.title}'s netns",
                f"{e['eth']}: not {host['name']}'s peer")
        have = inside.get("addresses") or []
        for a in addrs:
            if a not in have:
                bad(f"{e['eth']} of {node.title} lacks its address {a} (has {', '.join(have) or 'none'})",
                    f"{e['eth']}: lacks {a}")


def _cgroup(rec: dict) -> dict:
    from minirt import teardown

    for st in teardown.plan_of(rec):
        if st.get("undo") == "cgroup":
            return dict(st.get("dirs") or {})
    return {}


def _leases(g: Graph, nets: dict, selected: list[str], shown: dict) -> None:
    """Each lease names a shown container that has that address there; CNI's are listed as is."""
    for name in selected:
        node = g.nodes[bridge_node_id(name)]
        net = nets[name]
        for key in ("leases", "leases6"):
            for addr, owner in sorted((net.get(key) or {}).items()):
                cid = owner.get("container") or ""
                if owner.get("via") == "cni":
                    node.add(f"CNI attachment {ids.short(cid)} {addr}")
                    continue
                c = shown.get(cid)
                eps = [e for e in endpoints(c["record"]) if e["network"] == name] if c else []
                if not eps:
                    g.problem(node, f"lease {name}/{addr} names {ids.short(cid) or '?'}, which holds no plumbing",
                              f"lease {addr}: {ids.short(cid) or '?'} is not running")
                elif addr not in (eps[0].get("address"), eps[0].get("address6")):
                    g.problem(node, f"lease {name}/{addr} names {ids.short(cid)}, whose address there is "
                                    f"{eps[0].get('address')}",
                              f"lease {addr}: not {ids.short(cid)}'s address")  # fmt: skip
        for cid, c in shown.items():
            for e in endpoints(c["record"]):
                if e["network"] == name and e.get("address") and (net.get("leases") or {}).get(
                        e["address"], {}).get("container") != cid:  # fmt: skip
                    g.problem(g.nodes[container_node_id(cid)], f"{e['address']} of {ids.short(cid)} on {name}: no "
                              "lease names this container", f"{e['address']}: no lease")  # fmt: skip


def _stray_veths(g: Graph, links: dict, nets: dict, selected: list[str], shown: dict, owner: dict) -> None:
    """`mr` veths that no shown container names, on one of our bridges or on none."""
    claimed = {e.get("host_ifname") for c in shown.values() for e in endpoints(c["record"])}
    bridges = {nets[n]["bridge"]: n for n in nets}
    for name, link in sorted(links.items()):
        if not _VETH.fullmatch(name) or name in claimed:
            continue
        master = link.get("master")
        if master is not None and master not in bridges:
            continue  # another state root's bridge: not ours to judge
        network = bridges.get(master)
        if (network not in selected) if network is not None else len(selected) < len(nets):
            continue  # on a network not asked for; an unattached one only in the whole picture
        node = g.node(Node(f"veth:{name}", "stray", f"veth {name}", column=network))
        who = owner.get(name)
        why = f"its container {ids.short(who)} is not running" if who else "no container record names it"
        g.problem(node, f"veth {name} on {master or 'no bridge'}: {why}", why)
        if network is not None:
            g.edges.append(Edge("veth", bridge_node_id(network), node.id, f"{name} <-> ?", bad=True))


def _ports(g: Graph, facts: dict, nets: dict, selected: list[str], shown: dict) -> None:
    kernel = {(m, k): v for m, k, v in facts.get("elements") or []}
    claims: dict[tuple[str, str], tuple[str, str, str]] = {}  # (map, key) -> (value, cid, network)
    for cid, c in shown.items():
        for m, k, v, network in claimed_elements(c["record"]):
            claims[(m, k)] = (v, cid, network)
    subnets = {n: [nets[n]["subnet"], nets[n].get("subnet6")] for n in nets}

    def network_of(address: str) -> str | None:
        return next((n for n, sns in subnets.items() if any(_in(sn, address) for sn in sns)), None)

    for (m, k), v in sorted(kernel.items()):
        p = parse_element(m, k, v)
        claim = claims.get((m, k))
        network = claim[2] if claim else network_of(p["address"])
        if network is None or network not in selected:
            continue  # another state root's element, or a network not asked for
        if claim:
            cid = claim[1]
            node = g.nodes[container_node_id(cid)]
            node.info["ports"].append({**p, "network": network})
            edge = Edge("port", "host", node.id, port_label(p))
            g.edges.append(edge)
            if claim[0] != v:
                g.problem(edge, f"published port {port_label(p)}: the kernel maps it to {v}, "
                                f"{node.title}'s record to {claim[0]}")  # fmt: skip
                node.add(f"port {port_label(p)} maps to {v}", True)
            continue
        stray = g.node(Node(f"element:{m}:{k}", "stray", "published port, no container", column=network))
        stray.add(f"{m} {{ {k} : {v} }}", True)
        g.problems.append(f"element inet minirt {m} {{ {k} : {v} }}: no running container publishes it")
        g.edges.append(Edge("port", "host", stray.id, port_label(p), bad=True))
    for (m, k), (v, cid, network) in sorted(claims.items()):
        if (m, k) in kernel or network not in selected:
            continue
        p = parse_element(m, k, v)
        node = g.nodes[container_node_id(cid)]
        node.info["ports"].append({**p, "network": network, "missing": True})
        edge = Edge("port", "host", node.id, port_label(p), bad=True)
        g.edges.append(edge)
        if shown[cid]["status"] != "dead":
            g.problem(node, f"published port {port_label(p)} of {node.title} is missing from the nft map {m}",
                      f"port {port_label(p)}: not in {m}")
