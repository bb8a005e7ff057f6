"""Dual-stack user-defined networks (`network create --ipv6`): v6 addresses, routes, ping,
ip6 masquerade towards a fake upstream, and published ports reached over IPv6.

Topology (all inside namespaces the test creates; documentation prefix for the fake wan, ULAs
for the container network):

    container fd00:77::x --veth-- br-… fd00:77::1 [test host netns] wanh 2001:db8:1::1 --veth-- wanp 2001:db8:1::2 [wan]
                                                                 ::/0 via 2001:db8:1::2
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.test_lifecycle import inspect, ok, wait_for
from tests.integration.test_nat_wan import WAN6_HOST, WAN6_PEER, WAN_HOST, WAN_PEER, fake_wan
from tests.integration.test_ports import GET

WAN4_HOST, WAN4_PEER = WAN_HOST, WAN_PEER
SUBNET6 = "fd00:77::/64"
HTTP = "httpd -f -p 80 -h /var/www"

UDP6 = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"\\x00\\x01x", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(100)[0][4:].decode().split()[0])
"""


def fetch(ns, host: str, port: int, proto: str = "tcp") -> str:
    code = GET if proto == "tcp" else UDP6
    r = subprocess.run([*ns.prefix(), sys.executable, "-c", code, host, str(port)], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else f"failed: {r.stderr.strip().splitlines()[-1:]}"


@pytest.fixture
def wan6(minirt):
    """The fake upstream, dual-stack; servers on :: answer with the source address they saw."""
    with fake_wan(minirt, v6=True) as w:
        yield w


def _net(minirt, name: str) -> dict:
    return json.loads(ok(minirt("network", "inspect", name)))[0]


def _addrs6(minirt, pid: str) -> list[dict]:
    out = subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-j", "-6", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [a for link in json.loads(out) for a in link["addr_info"] if a.get("scope") == "global"]


def test_create_records_and_inspect(minirt):
    ok(minirt("network", "create", "--ipv6", "--subnet", SUBNET6, "--subnet", "10.77.0.0/24", "dual"))
    n = _net(minirt, "dual")
    assert n["EnableIPv6"] is True
    assert n["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"},
                                   {"Subnet": SUBNET6, "Gateway": "fd00:77::1"}]  # fmt: skip
    bridge = n["Options"]["bridge"]
    addrs = minirt.host.json("ip", "-j", "-6", "addr", "show", "dev", bridge)[0]["addr_info"]
    gw = [a for a in addrs if a["local"] == "fd00:77::1"]
    assert gw and gw[0]["prefixlen"] == 64 and "tentative" not in gw[0]
    assert minirt.host.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout.strip() == "1"
    ls = ok(minirt("network", "ls"))
    assert SUBNET6 in ls
    # --ipv6 alone: a ULA /64 is picked; v4-only networks stay v4-only
    ok(minirt("network", "create", "--ipv6", "auto6"))
    sub = _net(minirt, "auto6")["IPAM"]["Config"][1]["Subnet"]
    assert sub.startswith("fd") and sub.endswith("::/64")
    ok(minirt("network", "create", "plain"))
    assert _net(minirt, "plain")["EnableIPv6"] is False
    # overlapping v6 subnets are refused
    r = minirt("network", "create", "--subnet", "fd00:77::/64", "clash")
    assert r.returncode != 0 and "overlaps" in r.stderr
    assert "clash" not in ok(minirt("network", "ls", "-q")).split()  # refused before a record is kept
    ok(minirt("network", "rm", "dual", "auto6", "plain"))


def test_v6_ping_masquerade_and_published_ports(minirt, wan6):
    ok(minirt("network", "create", "--ipv6", "--subnet", SUBNET6, "dual"))
    ok(minirt("run", "-d", "--net", "dual", "--name", "web", "-p", "8080:80", "-p", f"{WAN4_HOST}:9091:80",
              "-p", f"[{WAN6_HOST}]:8082:80", "-p", "5353:9999/udp", "--", *HTTP.split()))  # fmt: skip
    ns = inspect(minirt, "web")["NetworkSettings"]
    addr6 = ns["GlobalIPv6Address"]
    assert addr6.startswith("fd00:77::") and ns["GlobalIPv6PrefixLen"] == 64 and ns["IPv6Gateway"] == "fd00:77::1"
    pid = str(inspect(minirt, "web")["State"]["Pid"])
    # kernel state in the container: the address (no DAD: not tentative) and the v6 default route
    addrs = _addrs6(minirt, pid)
    assert [(a["local"], a["prefixlen"]) for a in addrs] == [(addr6, 64)] and "tentative" not in addrs[0]
    routes = json.loads(subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-j", "-6", "route", "show", "default"],
                                       capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert routes[0]["gateway"] == "fd00:77::1"
    assert addr6 in ok(minirt("exec", "web", "cat", "/etc/hosts"))
    cid = inspect(minirt, "web")["Id"]
    assert ok(minirt("port", "web")).splitlines()[:3] == [
        "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080", f"80/tcp -> {WAN4_HOST}:9091"]
    assert f"80/tcp -> [{WAN6_HOST}]:8082" in ok(minirt("port", "web"))
    assert ns["Ports"]["80/tcp"][:2] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}]
    assert _net(minirt, "dual")["Containers"][cid]["IPv6Address"] == f"{addr6}/64"

    # two containers ping each other over IPv6
    r = minirt("run", "--rm", "--net", "dual", "--", "ping6", "-c", "1", "-W", "3", addr6)
    assert r.returncode == 0, r.stdout + r.stderr
    # container -> wan over IPv6 is masqueraded to the host's wan address
    r = minirt("run", "--rm", "--net", "dual", "--", "sh", "-c", f"echo hi | nc {WAN6_PEER} 8080")
    assert r.returncode == 0 and f"from {WAN6_HOST}" in r.stdout, r.stdout + r.stderr

    # published ports over IPv6, from another host: TCP (all addresses, and the v6-bound one) and UDP
    udp = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, f"{REPO}/tests/helpers/servers.py", "udp",
                            "9999", "6"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert udp.stdout.readline().strip() == "listening"
        wait_for(lambda: fetch(wan6, WAN6_HOST, 8080) == "ok", what="httpd over v6")
        assert fetch(wan6, WAN6_HOST, 8082) == "ok"
        assert fetch(wan6, WAN6_HOST, 5353, "udp") == "from"
    finally:
        udp.kill()
        udp.wait()
    # and over IPv4 as before
    assert fetch(wan6, WAN4_HOST, 8080) == "ok"
    assert fetch(wan6, WAN4_HOST, 9091) == "ok"
    # a port bound to an IPv4 address is not reachable over IPv6, nor a v6-bound one over v4
    assert fetch(wan6, WAN6_HOST, 9091).startswith("failed")
    assert fetch(wan6, WAN4_HOST, 8082).startswith("failed")
    # the container's own v6 address is not reachable from outside unless published
    wan6.run("ip", "-6", "route", "add", SUBNET6, "via", WAN6_HOST)
    assert fetch(wan6, addr6, 80).startswith("failed")
    # from the host itself to its own v6 address (output hook)
    assert fetch(minirt.host, WAN6_HOST, 8080) == "ok"
    # hairpin over IPv6: another container, and the same one, through the host's v6 address
    r = minirt("run", "--rm", "--net", "dual", "--", "wget", "-qO-", f"http://[{WAN6_HOST}]:8080/")
    assert "minirt" in r.stdout, r.stderr
    r = minirt("exec", "web", "wget", "-qO-", f"http://[{WAN6_HOST}]:8080/")
    assert "minirt" in r.stdout, r.stderr
    # [::1] is not DNATed (no proxy): refused by the reservation socket, not hanging
    assert fetch(minirt.host, "::1", 8080).startswith("failed")

    ok(minirt("rm", "-f", "web"))
    # teardown leaves no v6 lease, map element or address
    assert [x for x in os.listdir(f"{minirt.root}/networks/dual/leases6") if ":" in x] == []
    for m in ("ports6_any", "ports6_ip"):
        listed = minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", m)["nftables"][1]["map"]
        assert "elem" not in listed, listed
    assert fetch(wan6, WAN6_HOST, 8080).startswith("failed")
    ok(minirt("network", "rm", "dual"))
    out = minirt.host.run("ip", "-6", "addr").stdout
    assert "fd00:77::" not in out


def test_v6_port_needs_a_dual_stack_network(minirt):
    r = minirt("run", "--rm", "-p", f"[{WAN6_HOST}]:8082:80", "--", "true")
    assert r.returncode != 0 and "IPv6" in r.stderr
    r = minirt("run", "--rm", "-p", "[::1]:8082:80", "--", "true")
    assert r.returncode != 0 and "::1" in r.stderr


def test_internal_dual_stack_network_has_no_v6_way_out(minirt, wan6):
    ok(minirt("network", "create", "--internal", "--ipv6", "--subnet", "fd00:78::/64", "lab6"))
    ok(minirt("run", "-d", "--net", "lab6", "--name", "lab6c", "--", "sleep", "30"))
    pid = str(inspect(minirt, "lab6c")["State"]["Pid"])
    assert _addrs6(minirt, pid)[0]["local"].startswith("fd00:78::")
    routes = subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-j", "-6", "route", "show", "default"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert json.loads(routes or "[]") == []
    # the gateway answers on the bridge; the wan does not (no route, and the chain drops)
    ok(minirt("exec", "lab6c", "ping6", "-c", "1", "-W", "3", "fd00:78::1"))
    r = minirt("exec", "lab6c", "sh", "-c", f"echo hi | nc -w 2 {WAN6_PEER} 8080")
    assert "from" not in r.stdout
    table = (minirt.host.run("nft", "list", "chain", "inet", "minirt", "net-lab6-nat").stdout)
    assert "masquerade" not in table
    ok(minirt("rm", "-f", "lab6c"))
    ok(minirt("network", "rm", "lab6"))


def test_reload_restores_v6_masquerade_after_a_flush(minirt, wan6):
    ok(minirt("network", "create", "--ipv6", "--subnet", SUBNET6, "dual"))
    ok(minirt("run", "--rm", "--net", "dual", "--", "true"))
    minirt.host.run("nft", "flush", "ruleset")
    ok(minirt("network", "reload"))
    r = minirt("run", "--rm", "--net", "dual", "--", "sh", "-c", f"echo hi | nc {WAN6_PEER} 8080")
    assert r.returncode == 0 and f"from {WAN6_HOST}" in r.stdout, r.stdout + r.stderr
    ok(minirt("network", "rm", "dual"))


HOLD6 = """
import signal, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(1)
print("listening", flush=True)
signal.pause()  # until the test kills it
"""


def test_v6_port_held_by_a_host_process_is_refused(minirt):
    ok(minirt("network", "create", "--ipv6", "--subnet", SUBNET6, "dual"))
    holder = subprocess.Popen([*minirt.host.prefix(), sys.executable, "-c", HOLD6, "8090"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "listening"
        r = minirt("run", "--rm", "--net", "dual", "-p", "8090:80", "--", "true")
        assert r.returncode != 0 and "[::]:8090/tcp is already in use" in r.stderr, r.stderr
        # the IPv4-only default network does not hold the port on :: and is not refused
        ok(minirt("run", "--rm", "-p", "8090:80", "--", "true"))
    finally:
        holder.kill()
        holder.wait()
    ok(minirt("run", "--rm", "--net", "dual", "-p", "8090:80", "--", "true"))
    ok(minirt("network", "rm", "dual"))


@pytest.mark.parametrize("fault", ["fail:after-lease", "fail:after-address", "fail:after-publish",
                                   "kill:after-address", "kill:after-publish"])  # fmt: skip
def test_rollback_and_sentinel_release_v6(minirt, fault):
    """A failure (rollback) or minirt killed (the sentinel) at a dual-stack step leaves no v4 or
    v6 lease and no v4 or v6 port element."""
    ok(minirt("network", "create", "--ipv6", "--subnet", SUBNET6, "dual"))
    r = minirt("run", "--rm", "--net", "dual", "-p", "8080:80", "--", "true", env={"MINIRT_FAULT": fault})
    assert r.returncode != 0
    d = f"{minirt.root}/networks/dual"

    def clean():
        left = [x for x in os.listdir(f"{d}/leases6") if ":" in x and x[0] != "."]
        left += [x for x in os.listdir(f"{d}/leases") if x[0].isdigit()]
        for m in ("ports_any", "ports6_any"):
            listed = minirt.host.run("nft", "-j", "list", "map", "inet", "minirt", m, check=False)
            if listed.returncode == 0 and "elem" in json.loads(listed.stdout)["nftables"][1]["map"]:
                left.append(m)
        return not left

    wait_for(clean, what="leases and port elements released")
    if minirt.containers():
        minirt("rm", "-f", *minirt.containers())
    ok(minirt("network", "rm", "dual"))
