"""User-defined bridge networks: their own bridge, subnet and IPAM; isolation; --internal."""

import json

from tests.conftest import BOTH_BR_NETFILTER
from tests.integration.test_lifecycle import inspect, ok, wait_for
from tests.integration.test_ports import HTTP, fetch
from tests.integration.test_nat_wan import WAN_PEER, wan  # noqa: F401 - fixture


@BOTH_BR_NETFILTER
def test_create_inspect_isolation_and_rm(minirt, br_netfilter):
    ok(minirt("network", "create", "--subnet", "10.77.0.0/24", "backend"))
    ok(minirt("network", "create", "frontend"))
    nets = json.loads(ok(minirt("network", "inspect", "backend", "frontend")))
    assert nets[0]["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
    br = nets[0]["Options"]["bridge"]
    assert br.startswith("br-") and len(br) == 15
    assert minirt.host.json("ip", "-j", "-d", "link", "show", br)[0]["linkinfo"]["info_kind"] == "bridge"
    front_subnet = nets[1]["IPAM"]["Config"][0]["Subnet"]
    assert front_subnet != "10.77.0.0/24"

    ok(minirt("run", "-d", "--name", "db", "--net", "backend", "--", "sleep", "60"))
    ok(minirt("run", "-d", "--name", "web", "--net", "frontend", "--", "sleep", "60"))
    db_ip = inspect(minirt, "db")["NetworkSettings"]["IPAddress"]
    web_ip = inspect(minirt, "web")["NetworkSettings"]["IPAddress"]
    assert db_ip.startswith("10.77.0.")
    # same network: reachable; other network: dropped by minirt's chains
    r = minirt("run", "--rm", "--net", "backend", "--", "ping", "-c", "1", "-W", "2", db_ip)
    assert r.returncode == 0, r.stdout + r.stderr
    r = minirt("run", "--rm", "--net", "backend", "--", "ping", "-c", "1", "-W", "1", web_ip)
    assert r.returncode != 0
    r = minirt("run", "--rm", "--net", "frontend", "--", "ping", "-c", "1", "-W", "1", db_ip)
    assert r.returncode != 0
    contained = json.loads(ok(minirt("network", "inspect", "backend")))[0]["Containers"]
    assert [v["IPv4Address"] for v in contained.values()] == [f"{db_ip}/24"]

    r = minirt("network", "rm", "backend")
    assert r.returncode == 125 and "in use by container" in r.stderr
    ok(minirt("rm", "-f", "db", "web"))
    ok(minirt("network", "rm", "backend", "frontend"))
    assert minirt.host.run("ip", "link", "show", br, check=False).returncode != 0
    assert ok(minirt("network", "ls", "-q")) == ""


def test_create_errors(minirt):
    ok(minirt("network", "create", "--subnet", "10.78.0.0/24", "one"))
    cases = [
        (["--subnet", "10.78.0.128/25", "two"], "minirt: subnet 10.78.0.128/25: overlaps network 'one'"),
        (["one"], "minirt: network 'one': already exists"),
        (["host"], "minirt: network 'host': the name is reserved"),
        (["--subnet", "10.79.0.1/24", "three"], "minirt: subnet 10.79.0.1/24: host bits set (did you mean 10.79.0.0/24?)"),
        (["--subnet", "10.79.0.0/24", "--gateway", "10.80.0.1", "four"],
         "minirt: gateway 10.80.0.1: not inside subnet 10.79.0.0/24"),
    ]  # fmt: skip
    for args, message in cases:
        r = minirt("network", "create", *args)
        assert (r.returncode, r.stderr) == (125, message + "\n")
    ok(minirt("network", "rm", "one"))


def test_internal_network_cannot_reach_wan_but_default_can(minirt, wan):  # noqa: F811
    ok(minirt("network", "create", "--internal", "lab"))
    r = minirt("run", "--rm", "--net", "lab", "--", "sh", "-c", f"ip route; ping -c 1 -W 1 {WAN_PEER}")
    assert r.returncode != 0 and "default" not in r.stdout
    r = minirt("run", "--rm", "--", "ping", "-c", "1", "-W", "2", WAN_PEER)
    assert r.returncode == 0, r.stdout + r.stderr
    table = json.dumps(minirt.host.json("nft", "-j", "list", "chain", "inet", "minirt", "net-lab-nat"))
    assert "masquerade" not in table
    ok(minirt("network", "rm", "lab"))


@BOTH_BR_NETFILTER
def test_icc_false_drops_container_to_container_but_not_gateway(minirt, br_netfilter):
    nf = "net.bridge.bridge-nf-call-iptables"
    assert minirt.host.run("sysctl", "-n", nf).stdout.strip() == {"off": "0", "on": "1"}[br_netfilter]
    ok(minirt("network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "--subnet", "10.81.0.0/24",
              "quiet"))  # fmt: skip
    assert json.loads(ok(minirt("network", "inspect", "quiet")))[0]["Options"][
        "com.docker.network.bridge.enable_icc"] == "false"  # fmt: skip
    ok(minirt("run", "-d", "--name", "srv", "--net", "quiet", "-p", "18300:80", "--", *HTTP.split()))
    srv_ip = inspect(minirt, "srv")["NetworkSettings"]["IPAddress"]
    wait_for(lambda: fetch(minirt.host, srv_ip, 80) == "ok", what="httpd")  # the host reaches it
    # kernel side: the drop is in the network's chain, ahead of the final drop
    rules = [r["rule"] for r in minirt.host.json("nft", "-j", "list", "chain", "inet", "minirt", "net-quiet-in")["nftables"]
             if "rule" in r]  # fmt: skip
    assert [r.get("comment") for r in rules][-2:] == ["minirt:net:quiet:icc", "minirt:net:quiet:unpublished"]
    assert minirt.host.run("sysctl", "-n", nf).stdout.strip() == "1"  # minirt turned it on
    wget = "timeout 3 wget -qO- http://{}/"  # busybox wget -T segfaults (1.35)
    r = minirt("run", "--rm", "--net", "quiet", "--", "ping", "-c", "1", "-W", "1", srv_ip)
    assert r.returncode != 0
    r = minirt("run", "--rm", "--init", "--net", "quiet", "--", *wget.format(srv_ip).split())  # not PID 1: TERM works
    assert r.returncode != 0 and "minirt" not in r.stdout
    r = minirt("run", "--rm", "--net", "quiet", "--", "ping", "-c", "1", "-W", "2", "10.81.0.1")
    assert r.returncode == 0, r.stdout + r.stderr
    # a published port is still reachable through the host's address (DNATed: accepted first)
    r = minirt("run", "--rm", "--net", "quiet", "--", *wget.format("10.81.0.1:18300").split())
    assert "minirt" in r.stdout, r.stdout + r.stderr
    ok(minirt("rm", "-f", "srv"))
    ok(minirt("network", "rm", "quiet"))


def test_create_option_errors(minirt):
    for opt, message in [
        ("icc=maybe", "minirt: network create: option icc: expected true or false, got 'maybe'\n"),
        ("com.docker.network.bridge.name=x", "minirt: network create: unknown driver option "
         "'com.docker.network.bridge.name' (known: com.docker.network.bridge.enable_icc)\n"),
        ("icc", "minirt: network create: option 'icc': expected KEY=VALUE\n"),
    ]:  # fmt: skip
        r = minirt("network", "create", "-o", opt, "x1")
        assert (r.returncode, r.stderr) == (125, message)
    assert ok(minirt("network", "ls", "-q")) == ""
