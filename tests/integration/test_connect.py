"""`minirt network connect/disconnect`: an interface added to and removed from a running container,
checked from the kernel's side (links and addresses in the container's netns, leases, pings)."""

import json
import os

from tests.integration.test_lifecycle import inspect, ok


def _addrs(minirt, pid: int) -> dict:
    links = minirt.host.json("nsenter", "-t", str(pid), "-n", "ip", "-j", "-4", "addr")
    return {link["ifname"]: [a["local"] for a in link.get("addr_info", [])] for link in links}


def _leases(minirt, net: str) -> list[str]:
    d = f"{minirt.root}/networks/{net}/leases"
    return sorted(f for f in os.listdir(d) if f[0].isdigit()) if os.path.isdir(d) else []  # not last_reserved


def _veths(minirt) -> list[str]:
    return sorted(link["ifname"] for link in minirt.host.json("ip", "-j", "link") if link["ifname"].startswith("mr"))


def test_connect_ping_disconnect_reconnect_and_rm(minirt):
    ok(minirt("network", "create", "--subnet", "10.91.0.0/24", "n1"))
    ok(minirt("network", "create", "--subnet", "10.92.0.0/24", "n2"))
    ok(minirt("run", "-d", "--name", "ca", "--net", "n1", "--", "sleep", "300"))
    ok(minirt("run", "-d", "--name", "cb", "--net", "n2", "--", "sleep", "300"))
    a, b = inspect(minirt, "ca"), inspect(minirt, "cb")
    pid, b_ip = a["State"]["Pid"], b["NetworkSettings"]["IPAddress"]
    # networks are isolated until a is connected to n2
    assert minirt("exec", "ca", "ping", "-c", "1", "-W", "1", b_ip).returncode != 0

    r = minirt("network", "connect", "--explain", "--alias", "aa", "n2", "ca")
    assert r.returncode == 0, r.stderr
    assert "peer name eth1" in r.stdout + r.stderr
    addrs = _addrs(minirt, pid)
    assert addrs["eth0"][0].startswith("10.91.0.") and addrs["eth1"][0].startswith("10.92.0.")
    routes = minirt.host.json("nsenter", "-t", str(pid), "-n", "ip", "-j", "route")
    assert [r["gateway"] for r in routes if r["dst"] == "default"] == ["10.91.0.1"]  # still via the first
    r = minirt("exec", "ca", "ping", "-c", "1", "-W", "2", b_ip)
    assert r.returncode == 0, r.stdout + r.stderr
    # n2's names now include ca and its alias there (the responder reads the record live)
    for name in ("ca", "aa"):
        r = minirt("exec", "cb", "nslookup", name)
        assert addrs["eth1"][0] in r.stdout, r.stdout + r.stderr
    nets = inspect(minirt, "ca")["NetworkSettings"]["Networks"]
    assert list(nets) == ["n1", "n2"] and nets["n2"]["Interface"] == "eth1" and nets["n2"]["Aliases"] == ["aa"]
    assert nets["n2"]["IPAddress"] == addrs["eth1"][0]
    contained = json.loads(ok(minirt("network", "inspect", "n2")))[0]["Containers"]
    assert len(contained) == 2
    r = minirt("network", "rm", "n2")
    assert r.returncode == 125 and "in use" in r.stderr

    # refused: twice, unknown network, not-connected disconnect, first network, --net none
    r = minirt("network", "connect", "n2", "ca")
    assert (r.returncode, r.stderr) == (125, "minirt: container ca: is already connected to network 'n2'\n")
    r = minirt("network", "connect", "nosuch", "ca")
    assert r.returncode == 125 and "nosuch" in r.stderr
    r = minirt("network", "disconnect", "n2", "cb")
    assert r.returncode == 125 and "first network" in r.stderr
    ok(minirt("run", "-d", "--name", "lonely", "--net", "none", "--", "sleep", "300"))
    r = minirt("network", "connect", "n2", "lonely")
    assert r.returncode == 125 and "only bridge containers" in r.stderr

    ok(minirt("network", "disconnect", "n2", "ca"))
    assert "eth1" not in _addrs(minirt, pid)
    assert len(_leases(minirt, "n2")) == 1  # b's only
    assert minirt("exec", "ca", "ping", "-c", "1", "-W", "1", b_ip).returncode != 0
    r = minirt("network", "disconnect", "n2", "ca")
    assert (r.returncode, r.stderr) == (125, "minirt: container ca: is not connected to network 'n2'\n")

    ok(minirt("network", "connect", "n2", "ca"))  # again: eth1 again
    assert "eth1" in _addrs(minirt, pid)
    ok(minirt("rm", "-f", "ca", "cb", "lonely"))
    assert _leases(minirt, "n1") == [] and _leases(minirt, "n2") == []
    ok(minirt("network", "rm", "n1", "n2"))


def test_connected_leases_released_when_the_container_exits(minirt):
    ok(minirt("network", "create", "--subnet", "10.93.0.0/24", "m1"))
    p = minirt.popen("run", "--name", "fg", "--net", "m1", "--", "sleep", "300")
    try:
        from tests.integration.test_lifecycle import wait_for

        wait_for(lambda: "fg" in ok(minirt("ps")), what="fg running")
        ok(minirt("network", "connect", "minirt", "fg"))
        assert len(_leases(minirt, "minirt")) == 1
        ok(minirt("kill", "fg"))
        p.wait(timeout=30)
    finally:
        p.kill()
        p.wait()
    assert _leases(minirt, "minirt") == [] and _leases(minirt, "m1") == []
    assert "connected" not in json.load(open(f"{minirt.root}/containers/{minirt.containers()[0]}/state.json"))
    ok(minirt("rm", "fg"))
    ok(minirt("network", "rm", "m1"))


def test_a_failed_connect_leaves_nothing(minirt):
    ok(minirt("network", "create", "--subnet", "10.94.0.0/24", "f1"))
    ok(minirt("network", "create", "--subnet", "10.95.0.0/24", "f2"))
    ok(minirt("run", "-d", "--name", "cc", "--net", "f1", "--", "sleep", "300"))
    pid = inspect(minirt, "cc")["State"]["Pid"]
    veths = _veths(minirt)
    for point in ("connect-after-lease", "connect-after-veth", "connect-after-address"):
        r = minirt("network", "connect", "f2", "cc", env={"MINIRT_FAULT": f"fail:{point}"})
        assert r.returncode == 125, (point, r.stderr)
        assert _leases(minirt, "f2") == [], point
        assert "eth1" not in _addrs(minirt, pid), point
        assert _veths(minirt) == veths, point
        assert "connected" not in inspect(minirt, "cc") and list(inspect(minirt, "cc")["NetworkSettings"]["Networks"]) == ["f1"]
    ok(minirt("rm", "-f", "cc"))
    ok(minirt("network", "rm", "f1", "f2"))
