"""--dry-run changes nothing and prints what the executed command prints; --explain on every verb
that changes the host. Checked against the kernel's view of the test's own host namespace
(links, addresses, routes, the whole ruleset, mounts, sysctls), its MINIRT_ROOT and its cgroup
parent, before and after.

Comparing a dry run with the executed run: the container's id is random per run, and the
init's pid exists only once the run forks it (a dry run prints the placeholder $PID). So both
line lists are normalized the same way, and only there: the 64-hex id and the `mr` + 12-hex
veth name become <id>/<id12>, and the executed run's pid (read from its `netns PID` line)
becomes $PID. Everything else (order included) must be equal.
"""

import json
import os
import re

from tests.helpers import cgroups
from tests.integration.test_lifecycle import inspect, ok


def _lines(r) -> list[str]:
    assert r.returncode == 0, r.stderr
    return [x[2:] for x in r.stderr.splitlines() if x.startswith("+ ")]


def _normalize(lines: list[str], pid: str | None = None) -> list[str]:
    out = []
    for line in lines:
        if pid:
            line = re.sub(rf"\b{pid}\b", "$PID", line)
        line = re.sub(r"[0-9a-f]{64}", "<id>", line)
        out.append(re.sub(r"\bmr[0-9a-f]{12}\b", "mr<id12>", line))
    return out


def _tree(root: str) -> dict:
    """Every path under root with its content (small files: leases, records, last_reserved)."""
    out = {}
    for d, subdirs, files in os.walk(root):
        for name in subdirs:
            out[os.path.relpath(f"{d}/{name}", root) + "/"] = None
        for name in files:
            p = f"{d}/{name}"
            try:
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = f.read(4096) if os.path.getsize(p) < 65536 else os.path.getsize(p)
            except OSError as e:  # a socket or fifo: its presence is what counts
                out[os.path.relpath(p, root)] = repr(e.errno)
    return out


def _cgroup_tree(minirt) -> dict:
    out = {}
    for key, d in cgroups.dirs(minirt.cgroup_parent).items():
        top = os.path.dirname(d)  # the session's directory: a dry run must not make the test's own
        out[key] = sorted(os.path.relpath(sub, top) for sub, _s, _f in os.walk(top)) if os.path.isdir(top) else None
    return out


def _processes_in(netns: str) -> list[int]:
    """Every process in the test's host network namespace (a supervisor, sentinel, nft helper or
    DNS responder a dry run started would be one)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/net") == netns:
                    out.append(int(p))
            except OSError:
                pass  # gone meanwhile, or a kernel thread
    return sorted(out)


def snapshot(minirt) -> dict:
    h = minirt.host
    with open(f"/proc/{h.pid}/mountinfo") as f:
        mounts = f.read()
    return {
        # not -d (the bridge timers tick), and without operstate: a bridge's goes from UNKNOWN to
        # UP by itself, some time after its first port came up (the kernel's linkwatch)
        "links": [{k: v for k, v in link.items() if k != "operstate"} for link in h.json("ip", "-j", "link")],
        # the addresses, without the kernel's own IPv6 link-local ones (tentative until DAD ends)
        "addrs": sorted((link["ifname"], a["local"], a["prefixlen"]) for link in h.json("ip", "-j", "addr")
                        for a in link.get("addr_info", []) if a.get("scope") != "link"),
        "routes": h.json("ip", "-j", "route"),
        "routes6": h.json("ip", "-j", "-6", "route"),
        "ruleset": h.json("nft", "-j", "list", "ruleset"),
        "state": _tree(minirt.root),
        "mounts": mounts,
        "cgroups": _cgroup_tree(minirt),
        "sysctls": h.run("sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding").stdout,
        "processes": _processes_in(os.readlink(f"/proc/{h.pid}/ns/net")),
    }


def assert_same(before: dict, after: dict) -> None:
    for key in before:
        assert before[key] == after[key], f"{key} changed by a dry run"


def test_run_dry_run_changes_nothing_on_a_fresh_host_and_beside_a_running_container(minirt):
    before = snapshot(minirt)
    r = minirt("run", "--dry-run", "-p", "8080:80", "--memory", "64m", "--name", "web", "--", "true")
    lines = _lines(r)
    assert r.stdout == ""
    assert_same(before, snapshot(minirt))
    text = "\n".join(lines)
    # the plan: the network's creation, the cgroup and its limit, the veth, the port
    assert "ip link add minirt0 mtu" in text and "sysctl -w net.ipv4.ip_forward=1" in text
    assert re.search(r"echo 67108864 > \S+/(memory\.limit_in_bytes|memory\.max)$", text, re.M), text
    assert re.search(r"^ip link add mr[0-9a-f]{12} .* netns \$PID$", text, re.M), text
    assert re.search(r"^nsenter -t \$PID -n ip addr add \S+ dev eth0$", text, re.M), text
    assert re.search(r"^nft 'add element inet minirt ports_any \{ tcp \. 8080 : \S+ \. 80 \}'$", text, re.M), text
    assert minirt.containers() == [] and not os.path.exists(f"{minirt.root}/names/web")

    # beside a running container: the next address is peeked, not leased, and nothing is written
    ok(minirt("run", "-d", "--name", "ca", "-p", "8080:80", "--", "sleep", "300"))
    first = inspect(minirt, "ca")["NetworkSettings"]["IPAddress"]
    before = snapshot(minirt)
    r = minirt("run", "--dry-run", "-p", "8081:80", "--memory", "64m", "--", "true")
    lines = _lines(r)
    assert_same(before, snapshot(minirt))
    leased = [x.split()[3] for x in lines if x.startswith("# ipam: lease ")]
    assert len(leased) == 1 and leased[0] != first
    assert not [x for x in lines if x.startswith("ip link add minirt0")]  # the bridge exists
    # refused as the real run refuses: a published port that is taken, a name in use
    r = minirt("run", "--dry-run", "-p", "8080:80", "--", "true")
    assert r.returncode == 125 and "8080" in r.stderr
    r = minirt("run", "--dry-run", "--name", "ca", "--", "true")
    assert r.returncode == 125 and "already in use" in r.stderr
    assert_same(before, snapshot(minirt))
    ok(minirt("rm", "-f", "ca"))


def test_network_dry_runs_change_nothing(minirt):
    before = snapshot(minirt)
    lines = _lines(minirt("network", "create", "--dry-run", "--ipv6", "--subnet", "10.96.0.0/24", "n1"))
    assert "ip addr add 10.96.0.1/24 dev br-" in "\n".join(lines)
    assert_same(before, snapshot(minirt))
    r = minirt("network", "ls", "-q")
    assert r.stdout == ""

    ok(minirt("network", "create", "--subnet", "10.96.0.0/24", "n1"))
    ok(minirt("network", "create", "--subnet", "10.97.0.0/24", "n2"))
    ok(minirt("run", "-d", "--name", "c1", "--net", "n1", "-p", "8080:80", "--", "sleep", "300"))
    before = snapshot(minirt)
    lines = _lines(minirt("network", "connect", "--dry-run", "n2", "c1"))
    assert [x for x in lines if x.startswith("ip link add mr")], lines
    assert_same(before, snapshot(minirt))
    _lines(minirt("network", "reload", "--dry-run"))
    assert_same(before, snapshot(minirt))
    lines = _lines(minirt("network", "rm", "--dry-run", "n2"))
    bridge2 = json.loads(ok(minirt("network", "inspect", "n2")))[0]["Options"]["bridge"]
    assert lines[-1] == f"ip link del {bridge2}" and "nft delete chain inet minirt net-n2-in" in lines
    assert_same(before, snapshot(minirt))
    # damaged: the bridge of n2 down and the ruleset flushed: a dry reload plans the repair only
    minirt.host.run("ip", "link", "set", bridge2, "down")
    minirt.host.run("nft", "flush", "ruleset")
    before = snapshot(minirt)
    lines = _lines(minirt("network", "reload", "--dry-run"))
    assert [x for x in lines if x.startswith("ip ")] == [f"ip link set {bridge2} up"], lines  # addresses: there
    assert [x for x in lines if "add element inet minirt ports_any { tcp . 8080" in x], lines
    assert_same(before, snapshot(minirt))
    assert _lines(minirt("network", "reload", "--explain")) == lines  # the repair, as planned
    ok(minirt("rm", "-f", "c1"))
    ok(minirt("network", "rm", "n1", "n2"))


def test_dry_run_lines_equal_executed_lines_for_run(minirt):
    argv = ["-p", "8080:80", "--memory", "64m", "--", "sh", "-c", "echo ---- >&2"]
    dry = _lines(minirt("run", "--dry-run", *argv))
    r = minirt("run", "--rm", "--explain", *argv)
    assert r.returncode == 0, r.stderr
    # the executed run's setup: every line before the container's own output (its teardown
    # follows, after the exit)
    setup = r.stderr.split("----\n")[0]
    executed = [x[2:] for x in setup.splitlines() if x.startswith("+ ")]
    pid = re.search(r" netns (\d+)$", setup, re.M).group(1)
    assert _normalize(dry) == _normalize(executed, pid)
    assert len(dry) > 20  # cgroup, bridge, sysctl, nft, lease, veth, addresses, port


def test_dry_run_lines_equal_executed_lines_for_network_create_and_connect(minirt):
    argv = ["--ipv6", "--subnet", "10.98.0.0/24", "-o", "com.docker.network.bridge.enable_icc=false", "n1"]
    dry = _lines(minirt("network", "create", "--dry-run", *argv))
    executed = _lines(minirt("network", "create", "--explain", *argv))
    assert dry == executed and len(dry) > 20
    ok(minirt("network", "create", "--subnet", "10.99.0.0/24", "n2"))
    ok(minirt("run", "-d", "--name", "c1", "--net", "n2", "--", "sleep", "300"))
    dry = _lines(minirt("network", "connect", "--dry-run", "n1", "c1"))
    executed = _lines(minirt("network", "connect", "--explain", "n1", "c1"))
    # the DNS responder's pid exists only once it runs
    executed = [re.sub(r"pid \d+$", "pid $DNS_PID", x) for x in executed]
    assert dry == executed and [x for x in dry if x.startswith("ip link add mr")], dry
    ok(minirt("rm", "-f", "c1"))
    ok(minirt("network", "rm", "n1", "n2"))


def test_explain_on_kill_update_stop_rm_network_and_gc(minirt):
    # run -d: the supervisor prints the setup to the caller's stderr, not into the container's log
    r = minirt("run", "-d", "--explain", "--name", "c1", "-p", "8080:80", "--", "sleep", "300")
    lines = _lines(r)
    info = inspect(minirt, "c1")
    pid, cid, address = info["State"]["Pid"], info["Id"], info["NetworkSettings"]["IPAddress"]
    veth = "mr" + cid[:12]
    assert re.search(rf"^ip link add {veth} .* netns {pid}$", "\n".join(lines), re.M), lines
    assert "nft 'add element inet minirt ports_any { tcp . 8080 : " + address + " . 80 }'" in lines
    assert ok(minirt("logs", "c1")) == ""

    assert _lines(minirt("kill", "--explain", "-s", "USR1", "c1")) == [f"kill -USR1 {pid}"]

    lines = _lines(minirt("update", "--explain", "--memory", "32m", "--memory-swap", "64m", "c1"))
    limit = rf"echo 33554432 > \S+/{cid}/(memory\.limit_in_bytes|memory\.max)"
    assert any(re.fullmatch(limit, x) for x in lines), lines

    # a second network, connected and disconnected
    ok(minirt("network", "create", "--subnet", "10.93.0.0/24", "n1"))
    lines = _lines(minirt("network", "connect", "--explain", "n1", "c1"))
    assert f"ip link add mr{cid[:11]}x1" in "\n".join(lines)
    lines = _lines(minirt("network", "disconnect", "--explain", "n1", "c1"))
    assert lines[0] == f"ip link del mr{cid[:11]}x1" and lines[1].startswith("# ipam: release 10.93.0.")

    # stop: the signals it sends, then the teardown its owner (the supervisor) carried out
    r = minirt("stop", "--explain", "-t", "1", "c1")
    lines = _lines(r)
    assert lines[0] == f"kill -TERM {pid}" and f"kill -KILL {pid}" in lines
    assert "nft 'delete element inet minirt ports_any { tcp . 8080 }'" in lines
    assert f"# ipam: release {address} in network minirt" in lines
    assert any(re.fullmatch(rf"rmdir \S+/{cid}", x) for x in lines), lines
    assert _lines(minirt("rm", "--explain", "c1")) == []  # its teardown is done: only the record goes

    # stop of a foreground run: its owner is that `minirt run`, which prints to the stop too
    fg = minirt.popen("run", "--name", "fg", "--", "sleep", "300")
    try:
        from tests.integration.test_lifecycle import wait_for

        wait_for(lambda: minirt("inspect", "fg").returncode == 0 and inspect(minirt, "fg")["State"]["Running"],
                 what="fg running")  # fmt: skip
        lines = _lines(minirt("stop", "--explain", "-t", "0", "fg"))
        assert lines[0].startswith("kill -TERM ") and any(x.startswith("# ipam: release ") for x in lines), lines
    finally:
        fg.kill()
        fg.wait()
    ok(minirt("rm", "fg"))

    # rm -f of a running container: the kill, then the teardown
    ok(minirt("run", "-d", "--name", "d1", "--", "sleep", "300"))
    info = inspect(minirt, "d1")
    lines = _lines(minirt("rm", "-f", "--explain", "d1"))
    assert lines[0] == f"kill -KILL {info['State']['Pid']}"
    assert any(x.startswith("# ipam: release ") for x in lines) and any(x.startswith("rmdir ") for x in lines)

    # gc: what no container owns, each removal as its command
    stray = "mr0123456789ab"
    minirt.host.run("ip", "link", "add", stray, "type", "veth", "peer", "name", "mtpeer0")
    lines = _lines(minirt("gc", "--explain"))
    assert f"ip link del {stray}" in lines, lines

    bridge = json.loads(ok(minirt("network", "inspect", "n1")))[0]["Options"]["bridge"]
    lines = _lines(minirt("network", "rm", "--explain", "n1"))
    assert "nft delete chain inet minirt net-n1-in" in lines and lines[-1] == f"ip link del {bridge}"
    assert veth not in minirt.host.run("ip", "link").stdout
