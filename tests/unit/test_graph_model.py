"""minirt/graph: the model built from synthetic kernel facts and records (every kind of
disagreement found), the SVG writer's output parsed with xml.etree (nodes, edges, red marks),
the text tree, the plumbing text, and the PNG fallbacks. Pure: no root, no kernel."""

import copy
import xml.etree.ElementTree as ET

import pytest

from minirt.errors import ConfigError, NoSuchObject
from minirt.graph import model, png, svg, text

SVG = "{http://www.w3.org/2000/svg}"
A = "3f2a9c1e0d4f" + "a" * 52
B = "0b1c2d3e4f50" + "b" * 52
GONE = "777777777777" + "c" * 52
ELEMENT = ["ports_any", "tcp . 8080", "10.88.0.2 . 80"]


def link(index, name, kind=None, master=None, peer=None, addrs=(), up=True):
    return {"index": index, "name": name, "kind": kind, "master": master, "peer_index": peer, "up": up,
            "mac": "02:00:00:00:00:01", "addresses": list(addrs)}  # fmt: skip


def record(cid, name, network, address, prefixlen, bridge, connected=(), ports=()):
    rec = {"id": cid, "name": name, "status": "running", "pid": 4242,
           "config": {"net": "bridge", "network": network},
           "network": {"network": network, "address": address, "prefixlen": prefixlen, "gateway": "x",
                       "host_ifname": f"mr{cid[:12]}", "bridge": bridge},
           "connected": list(connected),
           "teardown": [{"undo": "cgroup", "version": 2, "dirs": {"unified": f"/sys/fs/cgroup/minirt/{cid}"}},
                        {"undo": "lease", "network": network},
                        {"undo": "veth", "network": network, "ifname": f"mr{cid[:12]}"}]}  # fmt: skip
    if ports:
        rec["teardown"].append({"undo": "ports", "network": network, "firewall": "nftables", "elements": list(ports)})
    for e in connected:
        rec["teardown"] += [{"undo": "lease", "network": e["network"]},
                            {"undo": "veth", "network": e["network"], "ifname": e["host_ifname"]}]  # fmt: skip
    return rec


def facts() -> dict:
    """Host: uplink eth0; minirt0 (default network) and br-back (internal, icc=false). A on
    minirt with 8080 published, connected to back as eth1; B on back."""
    ax1 = f"mr{A[:11]}x1"
    a = record(A, "web", "minirt", "10.88.0.2", 16, "minirt0", ports=[ELEMENT], connected=[
        {"network": "back", "eth": "eth1", "host_ifname": ax1, "address": "10.89.0.2", "prefixlen": 24,
         "bridge": "br-back"}])  # fmt: skip
    b = record(B, "db", "back", "10.89.0.3", 24, "br-back")
    return {
        "links": [
            link(1, "lo", addrs=["127.0.0.1/8"]),
            link(2, "eth0", addrs=["192.0.2.10/24"]),
            link(3, "minirt0", "bridge", addrs=["10.88.0.1/16"]),
            link(4, "br-back", "bridge", addrs=["10.89.0.1/24"]),
            link(5, f"mr{A[:12]}", "veth", "minirt0", peer=2),
            link(6, ax1, "veth", "br-back", peer=3),
            link(7, f"mr{B[:12]}", "veth", "br-back", peer=2),
        ],
        "uplink": {"name": "eth0", "gateway": "192.0.2.1"},
        "elements": [ELEMENT],
        "nft": "ok",
        "networks": [
            {"name": "minirt", "bridge": "minirt0", "subnet": "10.88.0.0/16", "gateway": "10.88.0.1",
             "leases": {"10.88.0.2": {"container": A}}},
            {"name": "back", "bridge": "br-back", "subnet": "10.89.0.0/24", "gateway": "10.89.0.1",
             "internal": True, "icc": False,
             "leases": {"10.89.0.2": {"container": A}, "10.89.0.3": {"container": B}}},
        ],  # fmt: skip
        "containers": [
            {"record": a, "status": "running", "netns": {"inode": "net:[4026532001]", "links": [
                link(1, "lo"), link(2, "eth0", "veth", peer=5, addrs=["10.88.0.2/16"]),
                link(3, "eth1", "veth", peer=6, addrs=["10.89.0.2/24"])]}},
            {"record": b, "status": "running", "netns": {"inode": "net:[4026532002]", "links": [
                link(1, "lo"), link(2, "eth0", "veth", peer=7, addrs=["10.89.0.3/24"])]}},
        ],  # fmt: skip
    }


def by_name(f: dict, name: str) -> dict:
    return next(x for x in f["links"] if x["name"] == name)


def test_a_healthy_host_has_every_node_and_edge_and_no_disagreement():
    g = model.build(facts())
    assert g.problems == []
    assert {n.id for n in g.nodes.values()} == {"host", "bridge:minirt", "bridge:back", f"ctr:{A[:12]}",
                                                f"ctr:{B[:12]}"}  # fmt: skip
    edges = sorted((e.kind, e.src, e.dst, e.dashed) for e in g.edges)
    assert edges == [
        ("port", "host", f"ctr:{A[:12]}", False),
        ("uplink", "host", "bridge:back", True),  # internal: drawn dashed
        ("uplink", "host", "bridge:minirt", False),
        ("veth", "bridge:back", f"ctr:{B[:12]}", False),
        ("veth", "bridge:back", f"ctr:{A[:12]}", True),  # network connect: dashed
        ("veth", "bridge:minirt", f"ctr:{A[:12]}", False),
    ]
    port = next(e for e in g.edges if e.kind == "port")
    assert port.label == "0.0.0.0:8080/tcp -> 10.88.0.2:80"
    back = g.nodes["bridge:back"]
    assert ("internal: no route out, no masquerade", False) in back.lines
    assert ("icc=false: containers isolated", False) in back.lines
    assert g.nodes["host"].lines == [("uplink eth0 192.0.2.10/24", False), ("default via 192.0.2.1", False)]
    web = g.nodes[f"ctr:{A[:12]}"]
    assert web.title == f"web ({A[:12]})" and ("eth1 10.89.0.2/24 on back (network connect)", False) in web.lines


def test_a_deleted_host_veth_is_a_red_container_and_edge():
    f = facts()
    f["links"].remove(by_name(f, f"mr{B[:12]}"))
    g = model.build(f)
    assert g.problems == [f"veth mr{B[:12]} of db ({B[:12]}) on back is gone from the kernel"]
    assert g.nodes[f"ctr:{B[:12]}"].bad and not g.nodes[f"ctr:{A[:12]}"].bad
    assert [e.bad for e in g.edges if e.dst == f"ctr:{B[:12]}"] == [True]


def test_veth_problems_master_peer_and_address():
    f = facts()
    by_name(f, f"mr{A[:12]}")["master"] = "br-back"
    inside = f["containers"][1]["netns"]["links"][1]
    inside["addresses"] = []
    inside["peer_index"] = 99
    g = model.build(f)
    assert g.problems == [
        f"veth mr{A[:12]} of web ({A[:12]}) is on br-back, not on minirt0",
        f"veth mr{B[:12]}'s peer is not eth0 in db ({B[:12]})'s netns",
        f"eth0 of db ({B[:12]}) lacks its address 10.89.0.3/24 (has none)",
    ]
    assert ("eth0: lacks 10.89.0.3/24", True) in g.nodes[f"ctr:{B[:12]}"].lines


def test_a_veth_no_record_names_is_stray_and_red():
    f = facts()
    f["links"].append(link(8, "mr0123456789ab", "veth", "minirt0", peer=2))
    f["links"].append(link(9, f"mr{GONE[:12]}", "veth", "br-back", peer=2))
    f["links"].append(link(10, "mr999999999999", "veth", "docker0", peer=2))  # another root's bridge
    f["links"].append(link(11, "vethabc", "veth", "minirt0", peer=2))  # not named like ours
    exited = record(GONE, "old", "back", "10.89.0.9", 24, "br-back")
    f["containers"].append({"record": exited, "status": "exited", "netns": None})
    g = model.build(f)
    assert g.problems == [
        "veth mr0123456789ab on minirt0: no container record names it",
        f"veth mr{GONE[:12]} on br-back: its container {GONE[:12]} is not running",
    ]
    stray = g.nodes["veth:mr0123456789ab"]
    assert stray.kind == "stray" and stray.column == "minirt" and stray.bad
    assert [e.bad for e in g.edges if e.dst == stray.id] == [True]
    assert f"ctr:{GONE[:12]}" not in g.nodes  # exited: no plumbing to draw


def test_elements_with_no_container_another_value_or_missing():
    f = facts()
    f["elements"] = [["ports_any", "tcp . 9090", "10.88.0.9 . 80"],  # nobody publishes it
                     ["ports_ip", "127.0.0.1 . udp . 53", "192.168.7.7 . 53"]]  # another root's subnet
    g = model.build(f)
    assert g.problems == [
        "element inet minirt ports_any { tcp . 9090 : 10.88.0.9 . 80 }: no running container publishes it",
        f"published port 0.0.0.0:8080/tcp -> 10.88.0.2:80 of web ({A[:12]}) is missing from the nft map ports_any",
    ]
    stray = g.nodes["element:ports_any:tcp . 9090"]
    assert stray.kind == "stray" and stray.column == "minirt"
    assert sorted((e.dst, e.bad) for e in g.edges if e.kind == "port") == [
        (f"ctr:{A[:12]}", True), ("element:ports_any:tcp . 9090", True)]  # fmt: skip

    f["elements"] = [["ports_any", "tcp . 8080", "10.88.0.7 . 80"]]  # the key maps elsewhere
    g = model.build(f)
    assert g.problems == ["published port 0.0.0.0:8080/tcp -> 10.88.0.7:80: the kernel maps it to 10.88.0.7 . 80, "
                          f"web ({A[:12]})'s record to 10.88.0.2 . 80"]  # fmt: skip
    assert [e.bad for e in g.edges if e.kind == "port"] == [True]


def test_bridge_problems_leases_and_dead_containers():
    f = facts()
    f["links"].remove(by_name(f, "br-back"))
    by_name(f, "minirt0")["addresses"] = []
    f["networks"][0]["leases"]["10.88.0.5"] = {"container": GONE}
    f["networks"][0]["leases"]["10.88.0.6"] = {"container": "cni-x", "via": "cni"}
    f["containers"][1]["status"] = "dead"
    f["containers"][1]["netns"] = None
    g = model.build(f)
    assert g.problems == [
        "bridge minirt0 lacks network minirt's gateway address 10.88.0.1",
        "bridge br-back of network back is missing from the kernel",
        f"container db ({B[:12]}): dead, its owner and init are gone (`minirt gc` finishes its teardown)",
        f"lease minirt/10.88.0.5 names {GONE[:12]}, which holds no plumbing",
    ]
    assert ("CNI attachment cni-x 10.88.0.6", False) in g.nodes["bridge:minirt"].lines
    assert g.nodes["bridge:back"].bad and g.nodes[f"ctr:{B[:12]}"].bad


def test_unreadable_nft_is_a_host_problem():
    f = facts()
    f["nft"] = "cannot list inet minirt: Operation not permitted"
    g = model.build(f)
    assert g.nodes["host"].bad and g.problems == ["nft: cannot list inet minirt: Operation not permitted"]


def test_only_the_networks_asked_for():
    g = model.build(facts(), ["back"])
    assert g.columns == ["back"] and "bridge:minirt" not in g.nodes
    assert {n.id for n in g.by_kind("container")} == {f"ctr:{A[:12]}", f"ctr:{B[:12]}"}
    assert not [e for e in g.edges if e.kind == "port"]  # published on minirt
    assert g.nodes[f"ctr:{A[:12]}"].column == "back"
    with pytest.raises(NoSuchObject, match="'nosuch': no such network"):
        model.build(facts(), ["nosuch"])


def test_parse_element_keys():
    assert model.parse_element("ports_ip", "127.0.0.1 . tcp . 8080", "10.88.0.2 . 80") == {
        "host_ip": "127.0.0.1", "proto": "tcp", "host_port": "8080", "address": "10.88.0.2", "port": "80"}  # fmt: skip
    p = model.parse_element("ports6_any", "udp . 53", "fd00::2 . 53")
    assert model.port_label(p) == "[::]:53/udp -> [fd00::2]:53"


def _svg(g) -> ET.Element:
    return ET.fromstring(svg.render(g))  # well-formed XML, or this raises


def _groups(root, cls):
    return [x for x in root.iter(f"{SVG}g") if cls in x.get("class", "").split()]


def test_svg_nodes_edges_and_no_red_when_healthy():
    root = _svg(model.build(facts()))
    assert root.tag == f"{SVG}svg" and float(root.get("width")) > 400
    assert {x.get("id") for x in _groups(root, "node")} == {
        "node-host", "node-bridge:minirt", "node-bridge:back", f"node-ctr:{A[:12]}", f"node-ctr:{B[:12]}"}  # fmt: skip
    ports = _groups(root, "port")
    assert [(x.get("data-src"), x.get("data-dst")) for x in ports] == [("host", f"ctr:{A[:12]}")]
    assert ports[0].find(f"{SVG}text").text == "0.0.0.0:8080/tcp -> 10.88.0.2:80"
    assert ports[0].get("id") == f"edge-port:host-_ctr:{A[:12]}:0.0.0.0:8080_tcp_-__10.88.0.2:80"
    ids = [x.get("id") for x in root.iter(f"{SVG}g") if x.get("id")]
    assert len(ids) == len(set(ids))
    assert len(_groups(root, "veth")) == 3 and len(_groups(root, "uplink")) == 2
    assert not [x for x in root.iter() if "bad" in x.get("class", "").split() or x.get("stroke") == svg.RED]
    assert "no disagreements" in "".join(root.find(f".//{SVG}g[@id='disagreements']").itertext())
    for x in _groups(root, "node"):  # every box has a rect with its text inside it
        rect = x.find(f"{SVG}rect")
        for t in x.iter(f"{SVG}text"):
            assert float(rect.get("y")) < float(t.get("y")) < float(rect.get("y")) + float(rect.get("height"))


def test_svg_marks_disagreements_red_and_lists_them():
    f = facts()
    f["links"].remove(by_name(f, f"mr{B[:12]}"))
    f["elements"].append(["ports_any", "tcp . 9090", "10.88.0.9 . 80"])
    root = _svg(model.build(f))
    db = root.find(f".//{SVG}g[@id='node-ctr:{B[:12]}']")
    assert "bad" in db.get("class").split() and db.find(f"{SVG}rect").get("stroke") == svg.RED
    red = [t.text for t in db.iter(f"{SVG}text") if t.get("fill") == svg.RED]
    assert red == [f"eth0: host veth mr{B[:12]} is gone"]
    veth = [x for x in _groups(root, "veth") if x.get("data-dst") == f"ctr:{B[:12]}"][0]
    assert "bad" in veth.get("class").split() and veth.find(f"{SVG}path").get("stroke") == svg.RED
    stray = root.find(f".//{SVG}g[@id='node-element:ports_any:tcp_._9090']")
    assert "stray" in stray.get("class").split() and "bad" in stray.get("class").split()
    problems = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "problem"]
    assert len(problems) == 2 and problems[1].startswith("element inet minirt ports_any { tcp . 9090")
    assert "disagreements (2)" in root.find(f".//{SVG}g[@id='disagreements']").find(f"{SVG}text").text


def test_svg_escapes_text():
    f = facts()
    f["containers"][0]["record"]["name"] = "a<b&c"
    root = _svg(model.build(f))
    assert root.find(f".//{SVG}g[@id='node-ctr:{A[:12]}']").find(f"{SVG}text").text == f"a<b&c ({A[:12]})"


def test_text_tree():
    f = facts()
    f["links"].remove(by_name(f, f"mr{B[:12]}"))
    out = text.tree(model.build(f))
    assert out.splitlines()[:6] == [
        "host: uplink eth0 192.0.2.10/24, default via 192.0.2.1",
        "|-- bridge minirt0 (network minirt) 10.88.0.0/16 gw 10.88.0.1",
        f"|   `-- web ({A[:12]}) running: eth0 10.88.0.2/16  [mr{A[:12]} <-> eth0]",
        "|-- bridge br-back (network back) 10.89.0.0/24 gw 10.89.0.1 [internal] [icc=false]",
        f"|   |-- web ({A[:12]}) running: eth1 10.89.0.2/24  [mr{A[:11]}x1 <-> eth1] (network connect)",
        f"|   `-- !! db ({B[:12]}) running: eth0 10.89.0.3/24  [mr{B[:12]} <-> eth0]",
    ]
    assert f"|       !! veth mr{B[:12]} of db ({B[:12]}) on back is gone from the kernel" in out
    assert f"    `-- 0.0.0.0:8080/tcp -> 10.88.0.2:80 on web ({A[:12]})" in out
    assert out.endswith(f"disagreements (1):\n  !! veth mr{B[:12]} of db ({B[:12]}) on back is gone from the kernel\n")
    assert text.tree(model.build(facts())).endswith("no disagreements: the kernel matches minirt's records\n")


def test_plumbing_text():
    f = facts()
    g = model.build(f)
    out = text.plumbing(g, f["containers"][0]["record"], "running")
    assert out == (
        f"web ({A[:12]}): running, pid 4242\n"
        "  netns   net:[4026532001]  (/proc/4242/ns/net)\n"
        "  eth0    10.88.0.2/16\n"
        f"    <-veth-> mr{A[:12]} (host end ifindex 5)\n"
        "    -> bridge minirt0 (network minirt, 10.88.0.0/16 gw 10.88.0.1)\n"
        "    -> uplink eth0 (default via 192.0.2.1)\n"
        "  eth1    10.89.0.2/24  (network connect)\n"
        f"    <-veth-> mr{A[:11]}x1 (host end ifindex 6)\n"
        "    -> bridge br-back (network back, 10.89.0.0/24 gw 10.89.0.1, internal, icc=false)\n"
        "    -> no uplink: an internal network is not routed out\n"
        "  port    0.0.0.0:8080/tcp -> 10.88.0.2:80\n"
        f"  cgroup  /sys/fs/cgroup/minirt/{A}\n"
    )
    dirs = {"memory": f"/sys/fs/cgroup/memory/m/{GONE}", "pids": f"/sys/fs/cgroup/pids/m/{GONE}"}
    none = {"id": GONE, "name": "lonely", "pid": 9, "config": {"net": "none"},
            "teardown": [{"undo": "cgroup", "version": 1, "dirs": dirs}]}
    assert text.plumbing(g, none, "exited") == (f"lonely ({GONE[:12]}): exited\n  network no veth (--net none)\n"
                                                f"  cgroup  /sys/fs/cgroup/{{memory,pids}}/m/{GONE}\n")  # fmt: skip


def test_png_needs_a_converter_and_dot_is_the_same_model(tmp_path):
    f = facts()
    f["links"].remove(by_name(f, f"mr{B[:12]}"))
    g = model.build(f)
    with pytest.raises(ConfigError, match="PNG needs cairosvg .* or Graphviz"):
        png.write_png(g, svg.render(g), str(tmp_path / "x.png"), have_cairosvg=False, dot_path="")
    assert not (tmp_path / "x.png").exists()
    dot = png.to_dot(g)
    assert dot.startswith("digraph minirt {") and dot.rstrip().endswith("}")
    assert f'"bridge:back" -> "ctr:{B[:12]}" [label="mr{B[:12]} <-> eth0", color="#dd0000"' in dot
    assert '"host" -> "ctr:' in dot and "disagreements:" in dot


def test_graph_command_refuses_other_file_kinds(capsys):
    from minirt import cli

    assert cli.main(["network", "graph", "-o", "x.jpg"]) == 125
    assert capsys.readouterr().err == "minirt: network graph: -o x.jpg: the file name must end in .svg or .png\n"


def test_graph_modules_stay_off_the_run_path():
    import subprocess
    import sys

    code = ("import sys, minirt.cli, minirt.commands.run, minirt.commands.inspect, minirt.commands.network; "
            "print(sorted(m for m in sys.modules if m.startswith('minirt.graph')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_facts_are_not_mutated():
    f = facts()
    before = copy.deepcopy(f)
    model.build(f)
    assert f == before


def test_an_empty_host_and_a_veth_on_no_bridge():
    empty = {"links": [], "uplink": None, "elements": [], "nft": "not read (no network)", "networks": [],
             "containers": []}  # fmt: skip
    g = model.build(empty)
    assert text.tree(g) == "host: no default route (no uplink)\n\nno disagreements: the kernel matches minirt's records\n"
    assert ET.fromstring(svg.render(g)).find(f".//{SVG}g[@id='node-host']") is not None
    f = facts()
    f["links"].append(link(9, "mr0123456789ab", "veth", None, peer=2))
    g = model.build(f)
    assert g.nodes["veth:mr0123456789ab"].column is None
    assert "|-- not on any bridge\n|   `-- !! veth mr0123456789ab on no bridge: no container record names it\n" in text.tree(g)
    root = _svg(g)
    assert "bad" in root.find(f".//{SVG}g[@id='node-veth:mr0123456789ab']").get("class").split()
    assert model.build(f, ["back"]).problems == []  # not on a network asked for
