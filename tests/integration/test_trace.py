"""`minirt trace` against real packets: a published port reached from the fake `wan`, a drop by a
foreign table, a container's masqueraded connection, and nothing left behind afterwards.

All traffic stays in namespaces this test made (the throwaway host and `wan`, TEST-NET
addresses; tests/integration/test_nat_wan.py). The trace's JSON lines are the assertions' input;
MINIRT_TRACE_RAW keeps nft's own lines next to them (the parser's unit test data was recorded so).
"""

import json
import os
import signal
import time

import pytest

from tests.integration.test_lifecycle import inspect, ok, wait_for
from tests.integration.test_nat_wan import WAN_HOST, WAN_PEER, wan  # noqa: F401 - fixture
from tests.integration.test_ports import HTTP, fetch

RECORD = os.environ.get("MINIRT_TRACE_RECORD")  # a directory: keep each test's raw and text output


class Trace:
    """A running `minirt trace ...` in the test's host."""

    def __init__(self, minirt, *args: str, name: str = "trace"):
        self.minirt, self.name = minirt, name
        self.raw = f"{minirt.root}/{name}.raw"
        self.proc = minirt.popen("trace", *args, env={"MINIRT_TRACE_RAW": self.raw})
        line = self.proc.stderr.readline()
        assert line.startswith("minirt: tracing"), line + self.proc.stderr.read()

    def stop(self, sig=signal.SIGINT) -> tuple[str, str]:
        time.sleep(0.6)  # a packet's record is complete after 0.25 s of quiet
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=20)
        if RECORD:
            os.makedirs(RECORD, exist_ok=True)
            with open(f"{RECORD}/{self.name}.out", "w") as f:
                f.write(out)
            if os.path.exists(self.raw):
                with open(self.raw) as src, open(f"{RECORD}/{self.name}.raw", "w") as dst:
                    dst.write(src.read())
        assert self.proc.returncode == 0, err
        return out, err

    def records(self, sig=signal.SIGINT) -> list[dict]:
        out, _err = self.stop(sig)
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def _chains(minirt) -> list[str]:
    r = minirt.host.run("nft", "-j", "list", "chains", "inet", check=False)
    if r.returncode != 0 or not r.stdout.strip():
        return []
    return [o["chain"]["name"] for o in json.loads(r.stdout)["nftables"] if "chain" in o]


def _trace_chains(minirt) -> list[str]:
    return [c for c in _chains(minirt) if c.startswith("trace-")]


def _rules(rec: dict):
    for h in rec["hops"]:
        for r in h["rules"]:
            yield h, r


def _syn(records: list[dict], **want) -> dict:
    for rec in records:
        p = rec["packet"]
        if p.get("flags") == "syn" and all(p.get(k) == v for k, v in want.items()):
            return rec
    raise AssertionError(f"no SYN with {want} among {json.dumps(records, indent=1)}")


def test_published_port_shows_the_dnat_and_the_forward_accept(minirt, wan):  # noqa: F811
    ok(minirt("run", "-d", "--name", "web", "-p", "8080:80", "--", *HTTP.split()))
    ip = inspect(minirt, "web")["NetworkSettings"]["IPAddress"]
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 8080) == "ok", what="httpd")
    t = Trace(minirt, "web", "--json", name="published")
    assert "trace-" in " ".join(_trace_chains(minirt))
    assert fetch(wan, WAN_HOST, 8080) == "ok"
    records = t.records()
    syn = _syn(records, src=WAN_PEER, dst=WAN_HOST, dport=8080)
    assert syn["result"] == "accepted", syn
    dnat = [n for n in syn["nat"] if n["kind"] == "dnat"]
    assert dnat and dnat[0]["before"] == f"{WAN_HOST}:8080" and dnat[0]["after"] == f"{ip}:80", syn["nat"]
    assert dnat[0]["table"] == "inet minirt" and "dnat" in dnat[0]["rule"]
    fwd = [(h, r) for h, r in _rules(syn) if h["hook"] == "forward" and h["table"] == "minirt"]
    assert any(r["verdict"] == "accept" and r["comment"] == "minirt:net:minirt:published" for _h, r in fwd), fwd
    assert syn["out"] == "minirt0"
    # the reply comes back from the container's address (selected by it) and is un-DNATed
    assert any(r["packet"].get("src") == ip and r["packet"].get("sport") == 80 for r in records)
    assert _trace_chains(minirt) == []
    assert os.listdir(f"{minirt.root}/traces") == []
    ok(minirt("rm", "-f", "web"))


def test_text_output_names_the_path(minirt, wan):  # noqa: F811
    ok(minirt("run", "-d", "--name", "web", "-p", "8080:80", "--", *HTTP.split()))
    ip = inspect(minirt, "web")["NetworkSettings"]["IPAddress"]
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 8080) == "ok", what="httpd")
    t = Trace(minirt, "--port", "8080", "--count", "1", name="published-text")
    assert fetch(wan, WAN_HOST, 8080) == "ok"
    out, err = t.proc.communicate(timeout=20)  # --count 1: ends by itself
    assert t.proc.returncode == 0, err
    if RECORD:
        os.makedirs(RECORD, exist_ok=True)
        with open(f"{RECORD}/published-text.out", "w") as f:
            f.write(out)
    assert out.startswith(f"#1 tcp {WAN_PEER}:") and "-> 198.51.100.1:8080 [syn] in wanh" in out.splitlines()[0], out
    assert f"DNAT {WAN_HOST}:8080 -> {ip}:80" in out
    assert 'ct status dnat accept comment "minirt:net:minirt:published"  -> accept' in out
    assert "= accepted" in out
    assert "1 packet(s) traced; trace rules removed" in err
    assert _trace_chains(minirt) == []
    ok(minirt("rm", "-f", "web"))


# A user's own table with a drop rule; and what an iptables-mode Docker leaves behind: iptables-nft's
# `table ip filter`, chain FORWARD, policy drop (Docker's `iptables -P FORWARD DROP`).
USERFW = [
    ["add", "table", "inet", "userfw"],
    # priority 10: after minirt's forward chain (0), so the trace shows minirt's accept, then the drop
    ["add", "chain", "inet", "userfw", "forward", "{ type filter hook forward priority 10; policy accept; }"],
    ["add", "rule", "inet", "userfw", "forward", "iifname", "wanh", "tcp", "dport", "80", "drop",
     "comment", '"userfw: no web from wan"'],
]  # fmt: skip
DOCKER_FORWARD_DROP = [
    ["add", "table", "ip", "filter"],
    ["add", "chain", "ip", "filter", "FORWARD", "{ type filter hook forward priority 0; policy drop; }"],
]


@pytest.mark.parametrize("firewall", ["userfw", "docker-forward-drop"])
def test_foreign_table_drop_is_named(minirt, wan, firewall):  # noqa: F811
    ok(minirt("run", "-d", "--name", "web", "-p", "8080:80", "--", *HTTP.split()))
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 8080) == "ok", what="httpd")
    h = minirt.host
    for cmd in USERFW if firewall == "userfw" else DOCKER_FORWARD_DROP:
        h.run("nft", *cmd)
    try:
        t = Trace(minirt, "web", "--json", name="foreign-drop" if firewall == "userfw" else "policy-drop")
        assert fetch(wan, WAN_HOST, 8080).startswith("failed")
        records = t.records()
        syn = _syn(records, src=WAN_PEER, dport=8080)
        assert syn["result"] == "dropped", syn
        by = syn["dropped_by"]
        if firewall == "userfw":
            assert (by["family"], by["table"], by["chain"], by["hook"]) == ("inet", "userfw", "forward", "forward")
            assert by["rule"] == 'iifname "wanh" tcp dport 80 drop comment "userfw: no web from wan"'
            assert by["comment"] == "userfw: no web from wan" and not by["policy"]
            # minirt's own table had accepted it: the trace shows both
            fwd = [(h, r) for h, r in _rules(syn) if h["hook"] == "forward"]
            assert any(h["table"] == "minirt" and r["verdict"] == "accept" for h, r in fwd), fwd
        else:
            assert (by["family"], by["table"], by["chain"], by["policy"]) == ("ip", "filter", "FORWARD", True)
    finally:
        h.run("nft", "delete", "table", *(["inet", "userfw"] if firewall == "userfw" else ["ip", "filter"]))
    ok(minirt("rm", "-f", "web"))


def test_outbound_packet_shows_the_masquerade(minirt, wan):  # noqa: F811
    ok(minirt("run", "-d", "--name", "cli", "--", "sleep", "60"))
    ip = inspect(minirt, "cli")["NetworkSettings"]["IPAddress"]
    t = Trace(minirt, "cli", "--json", name="masquerade")
    r = minirt("exec", "cli", "sh", "-c", f"echo hi | nc {WAN_PEER} 8080")
    assert r.stdout.strip() == f"from {WAN_HOST}", r.stdout + r.stderr
    records = t.records(signal.SIGTERM)  # SIGTERM ends it like Ctrl-C
    syn = _syn(records, src=ip, dst=WAN_PEER, dport=8080)
    masq = [n for n in syn["nat"] if n["kind"] == "masquerade"]
    assert masq, syn
    assert masq[0]["before"].startswith(f"{ip}:") and masq[0]["after"] == WAN_HOST and masq[0]["oif"] == "wanh"
    assert masq[0]["comment"] == "minirt:net:minirt" and masq[0]["table"] == "inet minirt"
    assert syn["result"] == "accepted" and syn["out"] == "wanh"
    assert _trace_chains(minirt) == []
    ok(minirt("rm", "-f", "cli"))


def _nft_monitors(minirt) -> list[int]:
    """`nft monitor trace` processes in the test's host network namespace."""
    ns = os.readlink(f"/proc/{minirt.host.pid}/ns/net")
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if cmd[1:3] == [b"monitor", b"trace"] and os.readlink(f"/proc/{pid}/ns/net") == ns:
                out.append(int(pid))
        except OSError:
            continue
    return out


def test_nothing_left_after_exit_or_kill_and_gc(minirt):
    # on a host without minirt's table: the trace makes it, and takes it away again
    assert minirt.host.run("nft", "list", "table", "inet", "minirt", check=False).returncode != 0
    r = minirt("trace", "--port", "9999", "--timeout", "0.3", "--explain")
    assert r.returncode == 0, r.stderr
    assert "+ nft 'add rule inet minirt trace-" in r.stderr
    assert "fib daddr type local meta l4proto tcp th dport 9999 meta nftrace set 1" in r.stderr
    assert "+ nft delete chain inet minirt trace-" in r.stderr and "+ nft delete table inet minirt" in r.stderr
    assert minirt.host.run("nft", "list", "table", "inet", "minirt", check=False).returncode != 0
    ok(minirt("run", "-d", "--name", "idle", "--", "sleep", "60"))
    before = _chains(minirt)
    # ends by itself (--timeout): removed
    r = minirt("trace", "idle", "--timeout", "0.5")
    assert r.returncode == 0, r.stderr
    assert _chains(minirt) == before and os.listdir(f"{minirt.root}/traces") == []
    # killed: the chains and the state file stay, gc removes them; nft monitor died with it
    t = Trace(minirt, "--network", "minirt", name="killed")
    pid = t.proc.pid
    assert sorted(_trace_chains(minirt)) == [f"trace-{pid}-out", f"trace-{pid}-pre"]
    assert os.listdir(f"{minirt.root}/traces") == [f"{pid}.json"]
    t.proc.kill()
    t.proc.wait()
    wait_for(lambda: _nft_monitors(minirt) == [], what="nft monitor to die with minirt")
    assert len(_trace_chains(minirt)) == 2
    dry = ok(minirt("gc", "--dry-run"))
    assert f"trace of pid {pid} (its process is gone)" in dry and len(_trace_chains(minirt)) == 2
    assert f"trace of pid {pid}" in ok(minirt("gc"))
    assert _chains(minirt) == before
    assert os.listdir(f"{minirt.root}/traces") == []
    assert f"trace of pid" not in ok(minirt("gc"))
    ok(minirt("rm", "-f", "idle"))


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "is not a port"),
    (["--port", "8080/icmp"], "protocol must be tcp or udp"),
    (["web", "--network", "minirt"], "give one container, or --port, or --network"),
    (["--count", "0"], "expected a positive number"),
    (["nosuch"], "nosuch"),
])  # fmt: skip
def test_bad_selections_change_nothing(minirt, args, message):
    ok(minirt("network", "create", "lab"))
    r = minirt("trace", *args)
    assert r.returncode == 125 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert _trace_chains(minirt) == [] and not os.path.isdir(f"{minirt.root}/traces")
    ok(minirt("network", "rm", "lab"))
