"""--explain prints a change only when the kernel made it (netlink.py): against the real kernel,
inside each test's own throwaway host netns."""

import json


def _explained(r) -> list[str]:
    assert r.returncode == 0, r.stderr
    return [x[2:] for x in r.stderr.splitlines() if x.startswith("+ ")]


def test_reload_of_an_intact_network_prints_no_ip_change_and_a_repair_prints_only_the_repair(minirt):
    assert minirt("run", "--rm", "--", "true").returncode == 0
    with open(f"{minirt.root}/networks/minirt/network.json") as f:
        net = json.load(f)
    plen = net["subnet"].split("/")[1]
    # everything is there: ensure_bridge meets EEXIST, add_address EEXIST: no `ip` line at all
    lines = _explained(minirt("network", "reload", "--explain"))
    assert [x for x in lines if x.startswith("ip ")] == [], lines
    # take the gateway address away and the bridge down: a reload puts back exactly that
    minirt.host.run("ip", "addr", "del", f"{net['gateway']}/{plen}", "dev", "minirt0")
    minirt.host.run("ip", "link", "set", "minirt0", "down")
    lines = _explained(minirt("network", "reload", "--explain"))
    assert [x for x in lines if x.startswith("ip ")] == [
        "ip link set minirt0 up",
        f"ip addr add {net['gateway']}/{plen} dev minirt0",
    ], lines


def test_network_rm_of_a_vanished_bridge_prints_no_ip_link_del(minirt):
    r = minirt("network", "create", "--explain", "--subnet", "10.94.0.0/24", "--ipv6", "--subnet", "fd00:94::/64", "n1")
    lines = _explained(r)
    bridge = json.loads(minirt("network", "inspect", "n1").stdout)[0]["Options"]["bridge"]
    assert f"ip link add {bridge} mtu" in "\n".join(lines) and "up type bridge" in "\n".join(lines)
    assert f"ip addr add 10.94.0.1/24 dev {bridge}" in lines
    assert f"ip -6 addr add fd00:94::1/64 dev {bridge} nodad" in lines
    minirt.host.run("ip", "link", "del", bridge)
    lines = _explained(minirt("network", "rm", "--explain", "n1"))
    assert not [x for x in lines if x.startswith("ip link del")], lines
    r = minirt("network", "create", "--subnet", "10.95.0.0/24", "n2")
    assert r.returncode == 0, r.stderr
    bridge2 = json.loads(minirt("network", "inspect", "n2").stdout)[0]["Options"]["bridge"]
    lines = _explained(minirt("network", "rm", "--explain", "n2"))
    assert [x for x in lines if x.startswith("ip ")] == [f"ip link del {bridge2}"], lines
