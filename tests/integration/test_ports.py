"""Published ports through nftables maps: every path a user tries, TCP and UDP, with real servers."""

import json
import subprocess
import sys

from tests.conftest import BOTH_BR_NETFILTER, REPO
from tests.integration.test_lifecycle import inspect, ok, wait_for
from tests.integration.test_nat_wan import WAN_HOST, WAN_PEER, wan  # noqa: F401 - fixture

HTTP = "httpd -f -p 80 -h /var/www"
GET = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print("ok" if b"minirt" in data else "bad")
"""
UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"\\x00\\x01x", (sys.argv[1], int(sys.argv[2])))  # servers.py answers a TFTP-style read request
print(s.recvfrom(100)[0][4:].decode().split()[0])
"""


def fetch(ns, host: str, port: int, proto: str = "tcp") -> str:
    code = GET if proto == "tcp" else UDP
    r = subprocess.run([*ns.prefix(), sys.executable, "-c", code, host, str(port)], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else f"failed: {r.stderr.strip().splitlines()[-1:]}"


@BOTH_BR_NETFILTER
def test_published_ports_from_everywhere(minirt, wan, br_netfilter):  # noqa: F811
    ok(minirt("run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:9090:80", "-p", "5353:9999/udp", "--",
              *HTTP.split()))  # fmt: skip
    ip = inspect(minirt, "web")["NetworkSettings"]["IPAddress"]
    # busybox has no UDP server: a tiny one runs in the container's network namespace
    pid = str(inspect(minirt, "web")["State"]["Pid"])
    udp = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, f"{REPO}/tests/helpers/servers.py", "udp", "9999"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert udp.stdout.readline().strip() == "listening"
    assert inspect(minirt, "web")["NetworkSettings"]["Ports"]["80/tcp"] == [
        {"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "9090"}]
    assert ok(minirt("port", "web")).splitlines()[0] == "80/tcp -> 0.0.0.0:8080"
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 8080) == "ok", what="httpd")
    # from another host (wan -> the host's wan address), TCP and UDP
    assert fetch(wan, WAN_HOST, 8080) == "ok"
    assert fetch(wan, WAN_HOST, 5353, "udp") == "from"
    udp.kill()
    udp.wait()
    # from the host itself, without a proxy process: 127.0.0.1 and its own address
    assert fetch(minirt.host, "127.0.0.1", 8080) == "ok"
    assert fetch(minirt.host, WAN_HOST, 8080) == "ok"
    assert fetch(minirt.host, "127.0.0.1", 9090) == "ok"
    # a port bound to 127.0.0.1 is not reachable from other hosts (moby#45610)
    assert fetch(wan, WAN_HOST, 9090).startswith("failed")
    # the container's own address is not reachable from outside unless published (Docker 28)
    net = json.load(open(f"{minirt.root}/networks/minirt/network.json"))
    wan.run("ip", "route", "add", net["subnet"], "via", WAN_HOST)
    assert fetch(wan, ip, 80).startswith("failed")
    # hairpin: another container, and the same container, through the host's address
    r = minirt("run", "--rm", "--", "wget", "-qO-", f"http://{WAN_HOST}:8080/")
    assert "minirt" in r.stdout, r.stderr
    r = minirt("exec", "web", "wget", "-qO-", f"http://{WAN_HOST}:8080/")
    assert "minirt" in r.stdout, r.stderr
    # one map element per port, no rule per port
    rules_before = _rule_count(minirt)
    ok(minirt("run", "-d", "--name", "web2", "-p", "8081-8083:80-82", "--", "sleep", "30"))
    assert _rule_count(minirt) == rules_before
    ok(minirt("rm", "-f", "web", "web2"))
    elements = minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", "ports_any")["nftables"][1]["map"]
    assert "elem" not in elements  # unpublished on removal
    assert fetch(wan, WAN_HOST, 8080).startswith("failed")


def _rule_count(minirt) -> int:
    table = minirt.host.json("nft", "-j", "list", "table", "inet", "minirt")["nftables"]
    return sum(1 for o in table if "rule" in o)


def test_conflicts_are_refused_before_anything_is_set_up(minirt):
    ok(minirt("run", "-d", "--name", "aa", "-p", "8080:80", "--", "sleep", "30"))
    r = minirt("run", "--rm", "--name", "bb", "-p", "8080:80", "--", "true")
    assert (r.returncode, r.stderr) == (125, "minirt: port 0.0.0.0:8080/tcp is already in use (by another container or a host process)\n")
    # a host process listening on a port
    holder = subprocess.Popen([*minirt.host.prefix(), sys.executable, "-c",
                               "import signal,socket; s=socket.socket(); s.bind(('0.0.0.0', 7070)); s.listen(); print('up', flush=True); signal.pause()"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "up"
        r = minirt("run", "--rm", "-p", "7070:80", "--", "true")
        assert r.returncode == 125 and "7070/tcp is already in use" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    assert [c for c in minirt.containers()] and len(minirt.containers()) == 1
    r = minirt("run", "--rm", "--net", "none", "-p", "80", "--", "true")
    assert (r.returncode, r.stderr) == (125, "minirt: -p needs a bridge network (got --net none)\n")
    r = minirt("run", "--rm", "-p", "99999", "--", "true")
    assert r.returncode == 125 and "out of range" in r.stderr
    ok(minirt("rm", "-f", "aa"))


def test_ephemeral_port_and_restart_keeps_it(minirt):
    ok(minirt("run", "-d", "--name", "ee", "-p", "80", "--", "sleep", "30"))
    port = int(ok(minirt("port", "ee")).split(":")[-1])
    assert port > 1024
    ok(minirt("stop", "-t", "0", "ee"))
    ok(minirt("start", "ee"))
    assert int(ok(minirt("port", "ee")).split(":")[-1]) == port
    ok(minirt("rm", "-f", "ee"))


def test_scale_500_ports_on_50_containers(minirt, wan):  # noqa: F811
    """Only map elements grow with the number of published ports: the rule count after 50
    containers x 10 ports is the rule count after one, and the last port connects."""
    rules = None
    names = [f"s{i:02d}" for i in range(50)]
    for i, name in enumerate(names):
        base = 20000 + 10 * i
        cmd = ["sleep", "300"] if name != names[-1] else ["httpd", "-f", "-p", "89", "-h", "/var/www"]
        ok(minirt("run", "-d", "--name", name, "-p", f"{base}-{base + 9}:80-89", "--", *cmd))
        if rules is None:
            rules = _rule_count(minirt)
    assert _rule_count(minirt) == rules
    elements = minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", "ports_any")["nftables"][1]["map"]["elem"]
    assert len(elements) == 500
    wait_for(lambda: fetch(wan, WAN_HOST, 20499) == "ok", what="httpd behind the 500th port")
    assert fetch(minirt.host, "127.0.0.1", 20499) == "ok"
    ok(minirt("rm", "-f", *names))
    assert "elem" not in minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", "ports_any")["nftables"][1]["map"]


def test_loopback_bound_port_is_not_reachable_by_a_neighbour_routing_127_0_0_1(minirt, wan):  # noqa: F811
    """moby#45610: a neighbour routes 127.0.0.1 to the host; without minirt's remote-loopback
    drop the packet would be DNATed to the container before the martian check (Docker <= 27)."""
    ok(minirt("run", "-d", "--name", "lo-web", "-p", "127.0.0.1:9191:80", "--", *HTTP.split()))
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 9191) == "ok", what="httpd")
    # wan gives up its own loopback so that 127.0.0.1 leaves through its uplink, and accepts
    # the answer from 127.0.0.1 (route_localnet): the attack needs both
    setup = ("sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.wanp.route_localnet=1; "
             "ip route del local 127.0.0.0/8 dev lo table local; ip route del local 127.0.0.1 dev lo table local; "
             f"ip addr del 127.0.0.1/8 dev lo; ip route add 127.0.0.1/32 via {WAN_HOST} src {WAN_PEER}")  # fmt: skip
    wan.run("sh", "-c", setup)
    assert fetch(wan, "127.0.0.1", 9191).startswith("failed")
    # the same path with the drop removed reaches the container: the test can tell
    minirt.host.run("nft", "flush", "chain", "inet", "minirt", "prerouting")
    minirt.host.run("nft", "add", "rule", "inet", "minirt", "prerouting", "fib", "daddr", "type", "local", "jump", "ports")
    assert fetch(wan, "127.0.0.1", 9191) == "ok"
    ok(minirt("rm", "-f", "lo-web"))


def test_concurrent_publishers_keep_the_maps_consistent(minirt):
    """20 containers publishing at once (one nft transaction each), 4 of them racing another for
    the same host port: every distinct port ends up with exactly one element, the losers are
    refused with nothing left, and removing them all at once leaves the maps empty."""
    names = [f"p{i:02d}" for i in range(20)]
    port = {n: 21000 + (i % 16) for i, n in enumerate(names)}  # p16..p19 race p00..p03
    procs = {n: minirt.popen("run", "-d", "--name", n, "-p", f"{port[n]}:80", "--", "sleep", "120") for n in names}
    codes = {n: p.wait(timeout=120) for n, p in procs.items()}
    errors = {}
    for n, p in procs.items():
        p.stdout.close()
        errors[n] = p.stderr.read().strip()
        p.stderr.close()
    winners = [n for n in names if codes[n] == 0]
    assert sorted({port[n] for n in winners}) == list(range(21000, 21016)) and len(winners) == 16, (codes, errors)
    assert all(codes[n] == 125 for n in names if n not in winners)
    m = minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", "ports_any")["nftables"][1]["map"]
    got = {e[0]["concat"][1]: e[1]["concat"][0] for e in m["elem"]}
    want = {port[n]: inspect(minirt, n)["NetworkSettings"]["IPAddress"] for n in winners}
    assert got == want  # each port DNATs to the container that won it
    rms = [minirt.popen("rm", "-f", n) for n in winners]
    assert [p.wait(timeout=60) for p in rms] == [0] * len(rms)
    for p in rms:
        p.stdout.close()
        p.stderr.close()
    m = minirt.host.json("nft", "-j", "list", "map", "inet", "minirt", "ports_any")["nftables"][1]["map"]
    assert "elem" not in m
    assert minirt.containers() == []
