"""`minirt network graph` and `inspect --plumbing` against the real kernel: two containers on two
networks (one made by `network create`, one container connected to both), one published port;
the SVG is parsed for its nodes and edges. Then the test deletes a host veth by hand (inside
its throwaway host), and adds a map element no container owns: the graph must draw both red
and list them."""

import json
import xml.etree.ElementTree as ET

from tests.integration.test_lifecycle import inspect, ok

SVG = "{http://www.w3.org/2000/svg}"


def _svg(minirt, path, *nets) -> ET.Element:
    out = ok(minirt("network", "graph", "-o", str(path), *nets))
    assert out.startswith(f"{path}: "), out
    return ET.parse(path).getroot()


def _groups(root, cls: str) -> list:
    return [g for g in root.iter(f"{SVG}g") if cls in g.get("class", "").split()]


def _classes(g) -> set:
    return set(g.get("class", "").split())


def test_graph_draws_the_kernel_and_marks_a_deleted_veth(minirt, tmp_path):
    ok(minirt("network", "create", "--subnet", "10.93.0.0/24", "--internal", "gback"))
    ok(minirt("run", "-d", "--name", "ga", "-p", "8080:80", "--", "sleep", "300"))
    ok(minirt("run", "-d", "--name", "gb", "--net", "gback", "--", "sleep", "300"))
    ok(minirt("network", "connect", "gback", "ga"))
    a, b = inspect(minirt, "ga"), inspect(minirt, "gb")
    ida, idb = a["Id"][:12], b["Id"][:12]
    a_ip = a["NetworkSettings"]["IPAddress"]
    a_ip2 = a["NetworkSettings"]["Networks"]["gback"]["IPAddress"]
    # the kernel's own view, to compare the picture with
    links = {link["ifname"]: link for link in minirt.host.json("ip", "-j", "-d", "link")}
    assert links[f"mr{ida}"]["master"] == "minirt0"
    assert links[f"mr{idb}"]["master"] == links[f"mr{ida[:11]}x1"]["master"]

    root = _svg(minirt, tmp_path / "before.svg")
    containers = {g.get("id") for g in _groups(root, "container")}
    assert containers == {f"node-ctr:{ida}", f"node-ctr:{idb}"}
    bridges = {g.get("id"): g for g in _groups(root, "bridge")}
    assert set(bridges) == {"node-bridge:minirt", "node-bridge:gback"}
    texts = " ".join(t.text or "" for t in bridges["node-bridge:gback"].iter(f"{SVG}text"))
    assert "10.93.0.0/24 gw 10.93.0.1" in texts and "internal" in texts
    ports = _groups(root, "port")
    assert [(g.get("data-src"), g.get("data-dst")) for g in ports] == [("host", f"ctr:{ida}")]
    assert f"0.0.0.0:8080/tcp -> {a_ip}:80" in "".join(ports[0].itertext())
    veths = {(g.get("data-src"), g.get("data-dst")) for g in _groups(root, "veth")}
    assert veths == {("bridge:minirt", f"ctr:{ida}"), ("bridge:gback", f"ctr:{ida}"), ("bridge:gback", f"ctr:{idb}")}
    assert not [g for g in root.iter(f"{SVG}g") if "bad" in _classes(g)]
    assert "no disagreements" in "".join(root.find(f".//{SVG}g[@id='disagreements']").itertext())

    # one network only: its bridge and the containers on it, no port (published on minirt)
    only = _svg(minirt, tmp_path / "gback.svg", "gback")
    assert {g.get("id") for g in _groups(only, "bridge")} == {"node-bridge:gback"}
    assert len(_groups(only, "container")) == 2 and not _groups(only, "port")

    tree = ok(minirt("network", "graph"))
    assert f"ga ({ida}) running: eth0 {a_ip}/" in tree and f"[mr{ida} <-> eth0]" in tree
    assert "bridge br-" in tree and "[internal]" in tree and "(network connect)" in tree
    assert f"0.0.0.0:8080/tcp -> {a_ip}:80 on ga" in tree and "no disagreements" in tree

    plumbing = ok(minirt("inspect", "--plumbing", "ga"))
    pid = a["State"]["Pid"]
    assert plumbing.startswith(f"ga ({ida}): running, pid {pid}\n")
    assert f"(/proc/{pid}/ns/net)" in plumbing and "net:[" in plumbing
    assert f"eth0    {a_ip}/" in plumbing
    assert f"<-veth-> mr{ida} (host end ifindex {links[f'mr{ida}']['ifindex']})" in plumbing
    assert "-> bridge minirt0 (network minirt," in plumbing
    assert f"eth1    {a_ip2}/" in plumbing and "no uplink: an internal network is not routed out" in plumbing
    assert f"port    0.0.0.0:8080/tcp -> {a_ip}:80" in plumbing
    assert "cgroup  /sys/fs/cgroup/" in plumbing and "!!" not in plumbing
    assert json.loads(ok(minirt("inspect", "ga")))[0]["Id"] == a["Id"]  # the default stays Docker's JSON

    # someone deletes gb's host veth by hand: the pair goes, the record stays
    minirt.host.run("ip", "link", "del", f"mr{idb}")
    root = _svg(minirt, tmp_path / "after.svg")
    node = root.find(f".//{SVG}g[@id='node-ctr:{idb}']")
    assert "bad" in _classes(node)
    assert [t.get("fill") for t in node.iter(f"{SVG}text") if "bad" in _classes(t)] == ["#d00"]  # the one problem line
    edge = [g for g in _groups(root, "veth") if g.get("data-dst") == f"ctr:{idb}"]
    assert len(edge) == 1 and "bad" in _classes(edge[0]) and edge[0].find(f"{SVG}path").get("stroke") == "#d00"
    assert "bad" not in _classes(root.find(f".//{SVG}g[@id='node-ctr:{ida}']"))
    problems = [t.text for t in root.iter(f"{SVG}text") if "problem" in _classes(t)]
    assert f"veth mr{idb} of gb ({idb}) on gback is gone from the kernel" in problems
    tree = ok(minirt("network", "graph"))
    assert f"!! veth mr{idb} of gb ({idb}) on gback is gone from the kernel" in tree
    assert f"!! veth mr{idb}" in ok(minirt("inspect", "--plumbing", "gb"))

    # and an element nobody publishes (as a crash between publish and record would leave)
    minirt.host.run("nft", "add element inet minirt ports_any { tcp . 9999 : 10.93.0.77 . 80 }")
    root = _svg(minirt, tmp_path / "stray.svg")
    stray = _groups(root, "stray")
    assert [g.get("id") for g in stray] == ["node-element:ports_any:tcp_._9999"] and "bad" in _classes(stray[0])
    port = [g for g in _groups(root, "port") if g.get("data-dst") == "element:ports_any:tcp . 9999"]
    assert len(port) == 1 and "bad" in _classes(port[0])
    problems = [t.text for t in root.iter(f"{SVG}text") if "problem" in _classes(t)]
    assert "element inet minirt ports_any { tcp . 9999 : 10.93.0.77 . 80 }: no running container publishes it" in problems
    minirt.host.run("nft", "delete element inet minirt ports_any { tcp . 9999 }")

    ok(minirt("rm", "-f", "ga", "gb"))
    ok(minirt("network", "rm", "gback"))
    assert "no disagreements" in ok(minirt("network", "graph"))
