"""User-defined bridge networks: their own bridge, subnet and IPAM; isolation; --internal."""

import json

from tests.integration.test_lifecycle import inspect, ok
from tests.integration.test_nat_wan import WAN_PEER, wan  # noqa: F401 - fixture


def test_create_inspect_isolation_and_rm(minirt):
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
