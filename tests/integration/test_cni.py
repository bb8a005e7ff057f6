"""minirt-cni driven as a container runtime drives it (tests/helpers/cni.py plays cnitool): every verb.

Topology (namespaces the tests create; TEST-NET addresses for the fake upstream only):

    sandbox c1 (10.89.0.x) --veth mc..-- br-... [test host netns] wanh 198.51.100.1 --veth-- wan 198.51.100.2
    sandbox c2 (10.89.0.y) --veth mc..--/

Each test DELs what it ADDed (the runtime fixture DELs what a failing test left), and the minirt
fixture then checks that no veth, lease or published element is left in the test's host.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.helpers.cni import Runtime, Sandbox
from tests.integration.test_nat_wan import WAN_HOST, WAN_PEER, fake_wan

SUBNET = "10.89.0.0/24"
GATEWAY = "10.89.0.1"
ASK = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"hi\\n")
print(s.recv(100).decode().strip())
"""


@pytest.fixture
def runtime(minirt):
    rt = Runtime(minirt.host, minirt.root, {"cniVersion": "1.0.0", "name": "cnitest", "type": "minirt-cni",
                                            "subnet": SUBNET})  # fmt: skip
    yield rt
    rt.cleanup()


@pytest.fixture
def sandboxes():
    made = []

    def make() -> Sandbox:
        s = Sandbox()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def wan(minirt):
    with fake_wan(minirt) as w:
        yield w


def ok(r):
    assert r.rc == 0, r
    return r.json


def ask(ns, host: str, port: int) -> str:
    r = subprocess.run([*ns.prefix(), sys.executable, "-c", ASK, host, str(port)], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else f"failed: {r.stderr.strip().splitlines()[-1:]}"


def ping(sandbox: Sandbox, address: str) -> bool:
    return sandbox.run("ping", "-c", "1", "-W", "2", address, check=False).returncode == 0


def links(minirt) -> dict:
    return {link["ifname"]: link for link in minirt.host.json("ip", "-j", "-d", "link", "show")}


def leases(minirt) -> list[str]:
    d = f"{minirt.root}/networks/cnitest/leases"
    return sorted(x for x in os.listdir(d) if x[0].isdigit()) if os.path.isdir(d) else []


def elements(minirt) -> dict:
    out = {}
    for m in ("ports_any", "ports_ip"):
        r = minirt.host.run("nft", "-j", "list", "map", "inet", "minirt", m, check=False)
        if r.returncode == 0:
            for obj in json.loads(r.stdout)["nftables"]:
                for key, value in obj.get("map", {}).get("elem", []):
                    out[(m, json.dumps(key))] = json.dumps(value)
    return out


def host_veth(result: dict) -> str:
    return next(i["name"] for i in result["interfaces"] if i["name"].startswith("mc"))


def wait_gone(minirt, name: str) -> None:
    deadline = time.monotonic() + 5
    while name in links(minirt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name not in links(minirt)


def test_add_two_sandboxes_that_ping_each_other(minirt, runtime, sandboxes):
    c1, c2 = sandboxes(), sandboxes()
    r1, r2 = ok(runtime.add("c1", c1)), ok(runtime.add("c2", c2))
    # the Result (1.0.0): [bridge, host veth, container veth in the sandbox], the address on it
    assert r1["cniVersion"] == "1.0.0"
    bridge, veth, eth0 = r1["interfaces"]
    assert bridge["name"].startswith("br-") and "sandbox" not in bridge and "sandbox" not in veth
    assert eth0 == {"name": "eth0", "mac": eth0["mac"], "sandbox": c1.netns}
    assert r1["ips"] == [{"address": r1["ips"][0]["address"], "gateway": GATEWAY, "interface": 2}]
    assert "version" not in r1["ips"][0]
    assert r1["routes"] == [{"dst": "0.0.0.0/0", "gw": GATEWAY}]
    a1, a2 = r1["ips"][0]["address"].split("/")[0], r2["ips"][0]["address"].split("/")[0]
    assert a1 != a2 and a1.startswith("10.89.0.") and r1["ips"][0]["address"].endswith("/24")
    # the kernel agrees: the peer is in the sandbox with the address and the default route
    addrs = c1.json("ip", "-j", "addr", "show", "eth0")[0]
    assert addrs["address"] == eth0["mac"] and {"local": a1, "prefixlen": 24} in [
        {"local": a["local"], "prefixlen": a["prefixlen"]} for a in addrs["addr_info"]]
    assert c1.json("ip", "-j", "route", "show", "default")[0]["gateway"] == GATEWAY
    host = links(minirt)
    assert host[veth["name"]]["master"] == bridge["name"] and host[veth["name"]]["address"] == veth["mac"]
    assert leases(minirt) == sorted([a1, a2])
    # traffic between the two sandboxes through the bridge, and to the gateway
    assert ping(c1, a2) and ping(c2, a1) and ping(c1, GATEWAY)
    for cid in ("c1", "c2"):
        ok(runtime.delete(cid, (c1 if cid == "c1" else c2).netns))
    assert leases(minirt) == [] and not [n for n in links(minirt) if n.startswith("mc")]
    assert c1.run("ip", "link", "show", "eth0", check=False).returncode != 0


def test_masquerade_seen_from_wan_and_mtu_of_the_uplink(minirt, wan, runtime, sandboxes):
    c1 = sandboxes()
    r = ok(runtime.add("c1", c1))
    assert c1.run("cat", "/sys/class/net/eth0/mtu").stdout.strip() == "1400"  # wanh's: the uplink
    assert ask(c1, WAN_PEER, 8080) == f"from {WAN_HOST}"  # masqueraded to the host's wan address
    ok(runtime.delete("c1", c1.netns))
    # ipMasq false: wan sees the sandbox's own address (given a route back); nothing is attached,
    # so the next ADD re-makes the network with the new setting
    runtime.config = runtime.conf(ipMasq=False)
    r = ok(runtime.add("c1", c1))
    own = r["ips"][0]["address"].split("/")[0]
    wan.run("ip", "route", "add", SUBNET, "via", WAN_HOST)
    assert ask(c1, WAN_PEER, 8080) == f"from {own}"
    ok(runtime.delete("c1", c1.netns))


def test_check_passes_then_fails_when_the_address_is_gone(minirt, runtime, sandboxes):
    c1 = sandboxes()
    ok(runtime.add("c1", c1, config=runtime.conf(runtimeConfig={"portMappings": [
        {"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]})))  # fmt: skip
    r = runtime.check("c1", c1)
    assert r.rc == 0 and r.stdout == "", r
    address = runtime.added[("c1", "eth0")][1]["ips"][0]["address"]
    c1.run("ip", "addr", "del", address, "dev", "eth0")
    r = runtime.check("c1", c1)
    assert r.rc == 1 and r.code == 100 and f"address {address} is missing" in r.json["details"], r
    c1.run("ip", "addr", "add", address, "dev", "eth0")
    c1.run("ip", "route", "add", "default", "via", GATEWAY)  # went with the address
    assert runtime.check("c1", c1).rc == 0
    minirt.host.run("nft", "flush", "map", "inet", "minirt", "ports_any")
    r = runtime.check("c1", c1)
    assert r.code == 100 and "port element ports_any" in r.json["details"], r
    ok(runtime.delete("c1", c1.netns))
    r = runtime.call("CHECK", "c1", c1.netns, "eth0", runtime.conf(prevResult={"interfaces": [], "ips": []}))
    assert r.code == 3, r  # no such attachment any more


def test_port_mappings_reachable_from_wan_and_host(minirt, wan, runtime, sandboxes):
    c1 = sandboxes()
    conf = runtime.conf(capabilities={"portMappings": True}, runtimeConfig={"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 9090, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]})  # fmt: skip
    r = ok(runtime.add("c1", c1, config=conf))
    own = r["ips"][0]["address"].split("/")[0]
    server = subprocess.Popen([*c1.prefix(), sys.executable, f"{REPO}/tests/helpers/servers.py", "tcp", "80"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout.readline().strip() == "listening"
        # DNATed, and the client keeps its address, as with Docker's DNAT: the hairpin rule
        # masquerades only a source inside the subnet (a container reaching its own network)
        assert ask(wan, WAN_HOST, 8080) == f"from {WAN_PEER}"
        assert ask(minirt.host, "127.0.0.1", 8080).startswith("from ")  # output-hook DNAT, no proxy
        assert ask(minirt.host, WAN_HOST, 8080).startswith("from ")
        assert ask(minirt.host, "127.0.0.1", 9090).startswith("from ")
        assert ask(wan, WAN_HOST, 9090).startswith("failed")  # bound to 127.0.0.1: not from outside
        assert elements(minirt)[("ports_any", '{"concat": ["tcp", 8080]}')] == json.dumps({"concat": [own, 80]})
        ok(runtime.delete("c1", c1.netns))
        assert elements(minirt) == {}
        assert ask(wan, WAN_HOST, 8080).startswith("failed")
    finally:
        server.kill()
        server.wait()


def test_a_host_port_of_another_attachment_is_refused_and_nothing_is_left(minirt, runtime, sandboxes):
    c1, c2 = sandboxes(), sandboxes()
    conf = runtime.conf(runtimeConfig={"portMappings": [{"hostPort": 8082, "containerPort": 80}]})
    ok(runtime.add("c1", c1, config=conf))
    before = elements(minirt)
    r = runtime.add("c2", c2, config=conf)
    assert r.rc == 1 and r.code == 101, r
    assert elements(minirt) == before and len(leases(minirt)) == 1
    assert c2.run("ip", "link", "show", "eth0", check=False).returncode != 0
    assert not os.path.exists(f"{minirt.root}/networks/cnitest/cni/c2:eth0.json")
    ok(runtime.delete("c1", c1.netns))


@pytest.mark.parametrize("point", ["cni-after-lease", "cni-after-veth", "cni-after-address", "cni-after-publish"])
def test_a_failed_add_leaves_nothing(minirt, runtime, sandboxes, point):
    c1 = sandboxes()
    conf = runtime.conf(runtimeConfig={"portMappings": [{"hostPort": 8083, "containerPort": 80}]})
    r = runtime.add("c1", c1, config=conf, env={"MINIRT_FAULT": f"fail:{point}"})
    assert r.rc == 1 and r.code == 999 and point in r.json["msg"], r
    assert leases(minirt) == [] and elements(minirt) == {}
    assert not [n for n in links(minirt) if n.startswith("mc")]
    assert c1.run("ip", "link", "show", "eth0", check=False).returncode != 0
    assert os.listdir(f"{minirt.root}/networks/cnitest/cni") == []
    ok(runtime.add("c1", c1, config=conf))  # and the attachment can be made afterwards
    ok(runtime.delete("c1", c1.netns))


def test_del_is_idempotent_and_needs_no_netns(minirt, runtime, sandboxes):
    c1, c2, c3 = sandboxes(), sandboxes(), sandboxes()
    conf = runtime.conf(runtimeConfig={"portMappings": [{"hostPort": 8084, "containerPort": 80}]})
    ok(runtime.add("c1", c1, config=conf))
    r = runtime.delete("c1", c1.netns, config=runtime.with_prev("c1"))
    assert r.rc == 0 and r.stdout == ""
    assert runtime.delete("c1", c1.netns, config=conf).rc == 0  # again: nothing left, still success
    assert runtime.delete("c1", config=runtime.conf()).rc == 0  # and without CNI_NETNS or prevResult
    # the sandbox is gone before DEL: no CNI_NETNS, or a path that no longer exists
    r2 = ok(runtime.add("c2", c2, config=conf))
    ok(runtime.add("c3", c3))
    c2.close()
    c3.close()
    ok(runtime.delete("c2", config=runtime.with_prev("c2")))
    ok(runtime.delete("c3", c3.netns))
    wait_gone(minirt, host_veth(r2))
    assert leases(minirt) == [] and elements(minirt) == {}
    # state partly gone: the record lost, DEL still finds the veth (named from the key), the
    # lease (keyed by container and ifname) and the element (prevResult + runtimeConfig)
    c4 = sandboxes()
    r4 = ok(runtime.add("c4", c4, config=conf))
    os.unlink(f"{minirt.root}/networks/cnitest/cni/c4:eth0.json")
    ok(runtime.delete("c4", c4.netns, config=runtime.with_prev("c4")))
    wait_gone(minirt, host_veth(r4))
    assert leases(minirt) == [] and elements(minirt) == {}


def test_two_attachments_of_one_container(minirt, runtime, sandboxes):
    """The key is (container ID, ifname): a second interface (a name no compiled message slot
    holds) in the same sandbox, without a second default route; DEL of one keeps the other."""
    c1 = sandboxes()
    ok(runtime.add("c1", c1))
    r = ok(runtime.add("c1", c1, ifname="net-second", config=runtime.conf(isDefaultGateway=False)))
    assert "routes" not in r and r["interfaces"][2]["name"] == "net-second"
    assert len(leases(minirt)) == 2
    ok(runtime.delete("c1", c1.netns, ifname="net-second"))
    assert len(leases(minirt)) == 1 and runtime.check("c1", c1).rc == 0
    ok(runtime.delete("c1", c1.netns))


def test_gc_removes_every_attachment_not_listed(minirt, runtime, sandboxes):
    boxes = {cid: sandboxes() for cid in ("a", "b", "c")}
    results = {}
    for i, (cid, box) in enumerate(boxes.items()):
        conf = runtime.conf(cniVersion="1.1.0", runtimeConfig={"portMappings": [{"hostPort": 8090 + i,
                                                                                 "containerPort": 80}]})  # fmt: skip
        results[cid] = ok(runtime.add(cid, box, config=conf))
    os.unlink(f"{minirt.root}/networks/cnitest/cni/c:eth0.json")  # c: only its lease, veth and element say so
    gc = runtime.conf(cniVersion="1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth0"}]})
    r = runtime.call("GC", config=gc)
    assert r.rc == 0 and r.stdout == "", r
    for cid in ("a", "c"):
        wait_gone(minirt, host_veth(results[cid]))
        runtime.added.pop((cid, "eth0"))
    b_address = results["b"]["ips"][0]["address"].split("/")[0]
    assert leases(minirt) == [b_address]
    assert list(elements(minirt)) == [("ports_any", '{"concat": ["tcp", 8091]}')]
    assert runtime.check("b", boxes["b"]).rc == 0
    ok(runtime.delete("b", boxes["b"].netns))
    # GC is a 1.1.0 verb, and needs the list
    assert runtime.call("GC", config={**gc, "cniVersion": "1.0.0"}).code == 1
    assert runtime.call("GC", config=runtime.conf(cniVersion="1.1.0")).code == 7


def test_minirt_gc_in_a_shared_root_keeps_cni_attachments(minirt, runtime, sandboxes):
    c1 = sandboxes()
    r = ok(runtime.add("c1", c1, config=runtime.conf(runtimeConfig={"portMappings": [
        {"hostPort": 8085, "containerPort": 80}]})))  # fmt: skip
    before = (leases(minirt), elements(minirt))
    gc = minirt("gc")
    assert gc.returncode == 0, gc.stderr
    assert (leases(minirt), elements(minirt)) == before and host_veth(r) in links(minirt)
    assert runtime.check("c1", c1).rc == 0
    assert minirt("network", "rm", "cnitest").returncode != 0  # in use by the attachment
    ok(runtime.delete("c1", c1.netns))


def test_version_status_and_040_results(minirt, runtime, sandboxes):
    r = ok(runtime.call("VERSION", stdin=b'{"cniVersion": "0.4.0"}'))
    assert r == {"cniVersion": "0.4.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
    status = runtime.conf(cniVersion="1.1.0")
    r = runtime.call("STATUS", config=status)
    assert r.rc == 0 and r.stdout == "", r
    assert runtime.call("STATUS", config=runtime.conf()).code == 1  # STATUS came with 1.1.0
    # a link that is not a bridge holds the bridge's name: ADD could not work
    minirt.host.run("ip", "link", "add", "brnotabridge", "type", "veth", "peer", "name", "brnotabridgep")
    try:
        r = runtime.call("STATUS", config={**status, "bridge": "brnotabridge"})
        assert r.rc == 1 and r.code == 50 and "not a bridge" in r.json["msg"], r
    finally:
        minirt.host.run("ip", "link", "del", "brnotabridge")
    # 0.4.0: ips carry their version; CHECK with that prevResult works
    c1 = sandboxes()
    r = ok(runtime.add("c1", c1, config=runtime.conf(cniVersion="0.4.0")))
    assert r["cniVersion"] == "0.4.0" and r["ips"][0]["version"] == "4"
    assert runtime.check("c1", c1).rc == 0
    ok(runtime.delete("c1", c1.netns))


def test_errors(minirt, runtime, sandboxes):
    c1 = sandboxes()
    r = runtime.call("ADD", "c1", c1.netns, "eth0", stdin=b"{not json")
    assert (r.rc, r.code) == (1, 6) and r.json["cniVersion"] == "1.1.0" and r.stderr.startswith("minirt-cni: "), r
    r = runtime.call("ADD", "c1", c1.netns, "eth0", runtime.conf(cniVersion="9.9.9"))
    assert r.code == 1 and "9.9.9" in r.json["details"], r
    assert runtime.call("", "c1", c1.netns, "eth0").code == 4
    assert runtime.call("ADD", "c1", c1.netns, "eth/0").code == 4
    assert runtime.call("ADD", "c1", "", "eth0").code == 4  # CNI_NETNS is required for ADD
    assert runtime.call("ADD", "c1", "/nonexistent/netns", "eth0").code == 4
    r = runtime.call("ADD", "c1", c1.netns, "eth0", runtime.conf(ipam={"type": "host-local"}))
    assert r.code == 2 and "ipam" in r.json["msg"], r
    assert runtime.call("ADD", "c1", c1.netns, "eth0", {"cniVersion": "1.0.0", "type": "minirt-cni"}).code == 7
    # an interface of that name in the sandbox already (SPEC.md: ADD MUST fail), and ADD twice
    c1.run("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p")  # no dummy module here
    r = runtime.add("c1", c1, ifname="eth9")
    assert r.code == 101 and "already exists" in r.json["msg"], r
    ok(runtime.add("c1", c1))
    r = runtime.call("ADD", "c1", c1.netns, "eth0", runtime.conf())
    assert r.code == 101, r
    assert runtime.check("c1", c1).rc == 0  # the first attachment is intact
    ok(runtime.delete("c1", c1.netns))
    assert leases(minirt) == []


def test_parallel_adds_get_distinct_addresses(minirt, runtime, sandboxes):
    """SPEC.md: "Plugins must handle being executed concurrently across different containers":
    the first ADDs of a network race to make it (networks lock) and to lease (the network's lock)."""
    from concurrent.futures import ThreadPoolExecutor

    boxes = {f"p{i}": sandboxes() for i in range(8)}
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda item: runtime.add(item[0], item[1]), boxes.items()))
    addresses = [ok(r)["ips"][0]["address"] for r in replies]
    assert len(set(addresses)) == 8 and len(leases(minirt)) == 8
    with ThreadPoolExecutor(8) as pool:
        assert all(r.rc == 0 for r in pool.map(lambda item: runtime.delete(item[0], item[1].netns), boxes.items()))
    assert leases(minirt) == []
