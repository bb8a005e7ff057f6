"""Bridge networking against the real kernel, inside each test's own throwaway host netns."""

import json
import os
import subprocess

import pytest

from tests.conftest import BOTH_BR_NETFILTER


def start_idle(minirt, *extra: str) -> tuple[subprocess.Popen, str]:
    """A container that prints its address then waits for stdin to close."""
    p = minirt.popen(
        "run", "--rm", *extra, "--",
        "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'; read x; true",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    line = p.stdout.readline().strip()
    assert "/" in line, (line, p.stderr.read() if p.poll() is not None else "")
    return p, line.split("/")[0]


def stop(p: subprocess.Popen) -> None:
    p.stdin.close()
    assert p.wait(timeout=30) == 0, p.stderr.read()


@BOTH_BR_NETFILTER
def test_two_containers_ping_each_other_and_the_gateway(minirt, br_netfilter):
    a, a_ip = start_idle(minirt)
    try:
        net = json.load(open(f"{minirt.root}/networks/minirt/network.json"))
        r = minirt("run", "--rm", "--", "sh", "-c", f"ping -c 1 -W 2 {a_ip} && ping -c 1 -W 2 {net['gateway']}")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("1 packets received") == 2
    finally:
        stop(a)


def test_kernel_state_while_running_and_after(minirt):
    host = minirt.host
    p, ip = start_idle(minirt)
    try:
        (cid,) = os.listdir(f"{minirt.root}/containers")
        veth = "mr" + cid[:12]
        bridge = host.json("ip", "-j", "-d", "link", "show", "minirt0")[0]
        assert bridge["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge["flags"]
        ports = host.json("ip", "-j", "link", "show", "master", "minirt0")
        assert [x["ifname"] for x in ports] == [veth]
        assert "UP" in ports[0]["flags"]
        net = json.load(open(f"{minirt.root}/networks/minirt/network.json"))
        addrs = host.json("ip", "-j", "addr", "show", "minirt0")[0]["addr_info"]
        assert {(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"} == {
            (net["gateway"], int(net["subnet"].split("/")[1]))
        }
        assert host.run("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        assert os.listdir(f"{minirt.root}/networks/minirt/leases").count(ip) == 1
        # inside: eth0 with the leased address, Docker-style MAC, default route via the gateway
        r = minirt("run", "--rm", "--", "sh", "-c", "cat /sys/class/net/eth0/address; ip route")
        assert r.stdout.splitlines()[0].startswith("02:42:")
        assert f"default via {net['gateway']} dev eth0" in r.stdout
    finally:
        stop(p)
    # after exit the veth and the lease are gone (the veth asynchronously: poll)
    host.run("sh", "-c", f"for i in $(seq 100); do ip link show {veth} >/dev/null 2>&1 || exit 0; sleep 0.05; done; exit 1")
    assert [x for x in os.listdir(f"{minirt.root}/networks/minirt/leases") if x[0].isdigit()] == []
    # the bridge and the table stay while the network exists
    assert host.json("ip", "-j", "link", "show", "minirt0")
    assert host.run("nft", "list", "table", "inet", "minirt").returncode == 0


def test_mtu_follows_the_uplink_and_subnet_avoids_host_routes(minirt):
    host = minirt.host
    host.run("ip", "link", "add", "uplink0", "mtu", "1400", "type", "veth", "peer", "name", "uplink1")
    host.run("ip", "link", "set", "uplink0", "up")
    host.run("ip", "addr", "add", "192.0.2.2/24", "dev", "uplink0")
    host.run("ip", "route", "add", "default", "via", "192.0.2.1", "dev", "uplink0")
    host.run("ip", "route", "add", "172.17.0.0/16", "dev", "uplink0")  # Docker's first pool is "taken"
    r = minirt("run", "--rm", "--", "cat", "/sys/class/net/eth0/mtu")
    assert r.stdout.strip() == "1400", r.stderr
    net = json.load(open(f"{minirt.root}/networks/minirt/network.json"))
    assert net["subnet"] == "172.18.0.0/16" and net["mtu"] == 1400


def test_pinned_subnet_from_the_config_file(minirt):
    minirt.write_config(default_subnet="10.123.45.0/24")
    r = minirt("run", "--rm", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert " 10.123.45." in r.stdout and "/24" in r.stdout, r.stdout + r.stderr


def test_net_none_container_cannot_reach_the_bridge(minirt):
    r = minirt("run", "--rm", "--", "true")  # creates the network
    assert r.returncode == 0, r.stderr
    gw = json.load(open(f"{minirt.root}/networks/minirt/network.json"))["gateway"]
    r = minirt("run", "--rm", "--net", "none", "--", "ping", "-c", "1", "-W", "1", gw)
    assert r.returncode != 0
    assert "unreachable" in r.stderr or "100% packet loss" in r.stdout


def test_hosts_file(minirt):
    r = minirt("run", "--rm", "--hostname", "web", "--", "cat", "/etc/hosts")
    ip_line = r.stdout.strip().splitlines()[-1].split()
    assert ip_line[1] == "web" and ip_line[0].count(".") == 3


STUB = "# minirt: the host's nameservers ({}) are not reachable from a container; pass --dns ADDRESS\n"


@pytest.mark.parametrize(
    "host, dns, expected",
    [
        ("nameserver 203.0.113.53\nsearch example.test\n", [], "nameserver 203.0.113.53\nsearch example.test\n"),
        # systemd-resolved's stub: loopback, unreachable from the container's netns; its
        # options and search lines stay
        ("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", [],
         STUB.format("127.0.0.53") + "options edns0 trust-ad\nsearch lan\n"),
        ("nameserver ::1\nnameserver 203.0.113.53\nnameserver 127.0.0.1\n", [], "nameserver 203.0.113.53\n"),
        ("nameserver ::1\n", [], STUB.format("::1")),
        ("nameserver 203.0.113.53\noptions ndots:3 timeout:1\n", [],
         "nameserver 203.0.113.53\noptions ndots:3 timeout:1\n"),
        ("nameserver 127.0.0.53\nsearch lan\n", ["203.0.113.54"], "nameserver 203.0.113.54\nsearch lan\n"),
        ("", [], STUB.format("none")),
    ],
    ids=["lan", "stub-127.0.0.53", "v6-loopback-dropped", "only-::1", "ndots-kept", "dns-flag", "empty"],
)  # fmt: skip
def test_resolv_conf_from_the_hosts(minirt, host, dns, expected):
    """The container's resolv.conf is derived from its host's: here a fixture file over the
    throwaway host's /etc/resolv.conf, never the machine's own."""
    minirt.host.set_resolv_conf(host)
    flags = [x for d in dns for x in ("--dns", d)]
    r = minirt("run", "--rm", *flags, "--", "cat", "/etc/resolv.conf")
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected


def test_explain_prints_the_equivalent_commands(minirt):
    r = minirt("run", "--rm", "--explain", "--", "true")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("+ ")]
    text = "\n".join(lines)
    assert "+ ip link add minirt0 mtu" in text and "type bridge" in text
    assert "+ sysctl -w net.ipv4.ip_forward=1" in text
    assert "+ nft add table inet minirt" in text
    assert " masquerade" in text
    assert "type veth peer name eth0" in text
    assert "-n ip route add default via" in text
    # a second run reuses the network: only the per-container lines
    r = minirt("run", "--rm", "--explain", "--", "true")
    text = r.stderr
    assert "type bridge" not in text and "nft" not in text and "type veth" in text


@pytest.mark.parametrize("point", ["after-network", "after-lease", "after-veth", "after-address", "after-exec"])
def test_rollback_at_each_network_step_leaves_nothing(minirt, point):
    r = minirt("run", "--rm", "--", "true", env={"MINIRT_FAULT": f"fail:{point}"})
    assert r.returncode == 125
    assert r.stderr.endswith(f"minirt: injected fault at {point}\n")
    assert minirt.containers() == []
    # no veth (checked by the fixture, polling) and no lease
    leases = f"{minirt.root}/networks/minirt/leases"
    assert [x for x in os.listdir(leases) if x[0].isdigit()] == []


def test_network_ls_and_rm(minirt):
    assert minirt("run", "--rm", "--", "true").returncode == 0
    r = minirt("network", "ls")
    assert r.returncode == 0 and "minirt" in r.stdout and "minirt0" in r.stdout
    p, _ = start_idle(minirt)
    try:
        r = minirt("network", "rm", "minirt")
        assert r.returncode == 125 and "in use by container" in r.stderr
    finally:
        stop(p)
    r = minirt("network", "rm", "--explain", "minirt")
    assert r.returncode == 0, r.stderr
    assert "+ ip link del minirt0" in r.stderr
    assert minirt.host.run("ip", "link", "show", "minirt0", check=False).returncode != 0
    assert minirt.host.run("nft", "list", "chain", "inet", "minirt", "net-minirt-nat", check=False).returncode != 0
    assert minirt("network", "ls", "-q").stdout == ""


def test_30_sequential_and_20_parallel_runs_leave_nothing(minirt):
    for _ in range(30):
        r = minirt("run", "--rm", "--", "true")
        assert r.returncode == 0, r.stderr
    # 20 at once, each holding its address until all 20 have one (they wait on stdin): the
    # addresses are compared while every container is known to be running
    hold = "ip -4 -o addr show eth0; read x; true"
    procs = [minirt.popen("run", "--rm", "--", "sh", "-c", hold, stdin=subprocess.PIPE) for _ in range(20)]
    addrs = []
    for p in procs:
        line = p.stdout.readline()
        assert line, p.stderr.read() if p.poll() is not None else "no address line"
        addrs.append(line.split()[3])
    for p in procs:
        p.stdin.close()
    codes = [p.wait(timeout=60) for p in procs]
    errors = [p.stderr.read() for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert codes == [0] * 20, [e for c, e in zip(codes, errors) if c]
    assert len(set(addrs)) == 20, addrs  # never shared while running together
    assert minirt.containers() == []
    # nft: no per-container objects were ever added; the table holds only the network's rules
    table = minirt.host.json("nft", "-j", "list", "table", "inet", "minirt")["nftables"]
    per_container = [o for o in table if "rule" in o and "minirt:" in json.dumps(o)
                     and "minirt:net:" not in json.dumps(o) and "minirt:dispatch:" not in json.dumps(o)]  # fmt: skip
    assert not per_container, per_container


def test_a_full_bridge_is_a_clear_error_and_leaves_nothing(minirt):
    """A Linux bridge takes at most 1023 ports (BR_MAX_PORTS 1024, port 0 reserved), the same
    edge as Docker's 1023 endpoints per bridge network: the 1024th container gets one line and
    125, not a hang, and nothing of it stays. The ports are filled with plain veth pairs (no
    dummy driver on these kernels); the namespace's end deletes them all in one batch."""
    r = minirt("run", "--rm", "--", "true")  # makes minirt0
    assert r.returncode == 0, r.stderr
    batch = os.path.join(minirt.root, "fill-bridge")
    with open(batch, "w") as f:
        f.writelines(f"link add f{i} master minirt0 type veth peer name g{i}\n" for i in range(1, 1024))
    minirt.host.run("ip", "-batch", batch)
    ports = minirt.host.json("ip", "-j", "link", "show", "master", "minirt0")
    assert len(ports) == 1023
    r = minirt("run", "--rm", "--", "true", timeout=30)
    assert r.returncode == 125
    assert "bridge minirt0 is full: a Linux bridge takes at most 1023 ports" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # the minirt fixture then checks that no veth, lease or cgroup of it is left
