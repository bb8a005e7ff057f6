"""The tutorial end to end against a fake upstream: a `wan` namespace plays the internet.

Topology (all inside namespaces this test creates; nothing can leave the machine: the test's
"host" namespace has no link to the real network at all):

    container (172.x) --veth-- minirt0 [test host netns] wanh 198.51.100.1 --veth-- wanp 198.51.100.2 [wan netns]
                                                     default route via 198.51.100.2

Servers in `wan` answer each client with the source address they saw, so the test reads the
masquerade result from the far side, as the tutorial's tcpdump would.
"""

import contextlib
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, HostNS

WAN_HOST, WAN_PEER = "198.51.100.1", "198.51.100.2"


WAN6_HOST, WAN6_PEER = "2001:db8:1::1", "2001:db8:1::2"


@contextlib.contextmanager
def fake_wan(minirt, v6: bool = False):
    """The `wan` namespace joined to the test's host by a veth (MTU 1400), the host's default
    route through it, and TCP 8080 / UDP 9090 servers there; with v6, dual-stack (2001:db8:1::/64,
    servers on ::)."""
    w = HostNS()  # the wan "internet" namespace
    servers = []
    try:
        h = minirt.host
        h.run("ip", "link", "add", "wanh", "mtu", "1400", "type", "veth", "peer", "name", "wanp", "mtu", "1400",
              "netns", str(w.pid))  # fmt: skip
        h.run("ip", "addr", "add", f"{WAN_HOST}/24", "dev", "wanh")
        w.run("ip", "addr", "add", f"{WAN_PEER}/24", "dev", "wanp")
        if v6:
            h.run("ip", "-6", "addr", "add", f"{WAN6_HOST}/64", "dev", "wanh", "nodad")
            w.run("ip", "-6", "addr", "add", f"{WAN6_PEER}/64", "dev", "wanp", "nodad")
        h.run("ip", "link", "set", "wanh", "up")
        w.run("ip", "link", "set", "wanp", "up")
        h.run("ip", "route", "add", "default", "via", WAN_PEER, "dev", "wanh")
        if v6:
            h.run("ip", "-6", "route", "add", "default", "via", WAN6_PEER, "dev", "wanh")
        family = ["6"] if v6 else []
        for proto, port in (("tcp", 8080), ("udp", 9090)):
            p = subprocess.Popen(
                [*w.prefix(), sys.executable, f"{REPO}/tests/helpers/servers.py", proto, str(port), *family],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            servers.append(p)
            assert p.stdout.readline().strip() == "listening"
        yield w
    finally:
        for p in servers:
            p.kill()
            p.wait()
        w.close()


@pytest.fixture
def wan(minirt):
    with fake_wan(minirt) as w:
        yield w


def ask(minirt, proto: str) -> str:
    if proto == "tcp":
        cmd = f"echo hi | nc {WAN_PEER} 8080"
    else:
        cmd = f"tftp -g -r x -l /tmp/answer {WAN_PEER} 9090 && cat /tmp/answer"
    r = minirt("run", "--rm", "--", "sh", "-c", f"{cmd}; ip -4 -o addr show eth0")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    seen = next(line.split()[1] for line in lines if line.startswith("from "))
    own = next(line.split()[3].split("/")[0] for line in lines if "eth0" in line)
    return seen, own


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_masquerade_then_direct(minirt, wan, proto):
    seen, own = ask(minirt, proto)
    assert seen == WAN_HOST  # masqueraded to the host's wan-side address
    # The rule is in minirt's table, and only there.
    table = minirt.host.json("nft", "-j", "list", "table", "inet", "minirt")["nftables"]
    assert any("masquerade" in json.dumps(o) for o in table if "rule" in o)
    # Without masquerade (and a route back in wan), wan sees the container's own address.
    minirt.host.run("nft", "flush", "chain", "inet", "minirt", "net-minirt-nat")
    net = json.load(open(f"{minirt.root}/networks/minirt/network.json"))
    wan.run("ip", "route", "add", net["subnet"], "via", WAN_HOST)
    seen, own = ask(minirt, proto)
    assert seen == own and seen != WAN_HOST


def test_mtu_follows_the_wan_uplink(minirt, wan):
    r = minirt("run", "--rm", "--", "cat", "/sys/class/net/eth0/mtu")
    assert r.stdout.strip() == "1400"


def test_foreign_tables_are_left_alone(minirt, wan):
    h = minirt.host
    h.run("nft", "add", "table", "inet", "userfw")
    h.run("nft", "add", "chain", "inet", "userfw", "input", "{ type filter hook input priority 0; policy accept; }")
    h.run("nft", "add", "rule", "inet", "userfw", "input", "tcp", "dport", "2222", "counter", "accept")
    before = h.run("nft", "list", "table", "inet", "userfw").stdout
    seen, _ = ask(minirt, "tcp")
    assert seen == WAN_HOST
    assert minirt("network", "rm", "minirt").returncode == 0
    assert h.run("nft", "list", "table", "inet", "userfw").stdout == before
