"""The nftables backend against the real kernel: what it builds, idempotence, teardown, two
networks, foreign tables, atomicity, and that the rendered `nft` lines build the same ruleset.

Every test runs in its own throwaway "host" (tests/conftest.py HostNS: a holder process in new
network and mount namespaces), so the real host's ruleset is never touched, and minirt's
default names cannot collide. Each backend call runs in a fresh process entered into that
namespace, as `minirt` itself would; assertions read the kernel (`nft -j list ...`), never
minirt's own output.
"""

import json
import sys

import pytest

from minirt.net.firewall import NetworkSpec, ruleset as rs
from minirt.net.firewall.render import render, script
from tests.conftest import REPO, HostNS

A = ("a", "br-a", "10.1.0.0/24", "10.1.0.1", False)
C = ("c", "br-c", "10.2.0.0/24", "10.2.0.1", False)
INTERNAL = ("i", "br-i", "10.3.0.0/24", "10.3.0.1", True)
THIEF = ("b2", "br-a", "10.4.0.0/24", "10.4.0.1", False)  # wants network a's bridge
QUOTE = ("q", 'br"q', "10.5.0.0/24", "10.5.0.1", False)  # cannot be written in nft's syntax

# Runs inside the test's namespace: each step is ["setup"|"teardown", *spec] or ["delete_table"].
APPLY = """
import json, sys
sys.path.insert(0, {repo!r})
from minirt.net.firewall import NetworkSpec, get_backend
backend = get_backend("nftables")
results = []
for verb, *spec in json.loads(sys.argv[1]):
    try:
        if verb == "delete_table":
            backend.delete_table()
        else:
            getattr(backend, verb + "_network")(NetworkSpec(*spec))
        results.append({{"ok": True}})
    except Exception as e:
        results.append({{"ok": False, "type": type(e).__name__, "message": str(e),
                        "batch_text": getattr(e, "batch_text", None)}})
print(json.dumps(results))
"""


def apply(h: HostNS, *steps) -> list[dict]:
    out = h.run(sys.executable, "-c", APPLY.format(repo=REPO), json.dumps([list(s) for s in steps])).stdout
    return json.loads(out)


def ok(h: HostNS, *steps) -> None:
    for step, result in zip(steps, apply(h, *steps), strict=True):
        assert result["ok"], f"{step[0]} {step[1:]}: {result}"


def setup(spec):
    return ("setup", *spec)


def teardown(spec):
    return ("teardown", *spec)


def raw(h: HostNS, *what: str) -> str:
    """`nft -j list <what>` exactly as the kernel reports it (handles included)."""
    return h.run("nft", "-j", "list", *what).stdout


def objects(h: HostNS) -> list[dict]:
    """The whole ruleset without metainfo and handles (rules re-created by a flush get new
    handles; everything else must be equal)."""
    objs = json.loads(raw(h, "ruleset"))["nftables"]
    out = []
    for o in objs:
        if "metainfo" in o:
            continue
        for body in o.values():
            body.pop("handle", None)
        out.append(o)
    return out


def canonical(h: HostNS) -> list[str]:
    """objects() in a fixed order, for comparing rulesets built by different histories."""
    return sorted(json.dumps(o, sort_keys=True) for o in objects(h))


def tables(h: HostNS) -> list[str]:
    listed = json.loads(raw(h, "tables"))["nftables"]
    return sorted(f"{t['table']['family']} {t['table']['name']}" for t in listed if "table" in t)


def minirt_table(h: HostNS) -> dict[str, dict]:
    """chains, maps and rules of `inet minirt`, keyed for assertions."""
    out = {"chain": {}, "map": {}, "rule": {}}
    for o in json.loads(raw(h, "table", "inet", "minirt"))["nftables"]:
        ((kind, body),) = o.items()
        if kind in ("chain", "map"):
            out[kind][body["name"]] = body
        elif kind == "rule":
            out["rule"].setdefault(body["chain"], []).append(body)
    return out


def test_setup_builds_the_documented_ruleset(host_ns):
    h = host_ns
    ok(h, setup(A))
    t = minirt_table(h)
    assert {k: (c.get("type"), c.get("hook"), c.get("prio"), c.get("policy")) for k, c in t["chain"].items()} == {
        "forward": ("filter", "forward", 0, "accept"),
        "postrouting": ("nat", "postrouting", 100, "accept"),
        "net-a-in": (None, None, None, None),
        "net-a-out": (None, None, None, None),
        "net-a-nat": (None, None, None, None),
        "net-a-hairpin": (None, None, None, None),
    }
    # Real verdict maps (the 1.0.6 JSON bug would have made plain sets), one element each.
    assert {k: (m["type"], m["map"], m["elem"]) for k, m in t["map"].items()} == {
        "fwd_in": ("ifname", "verdict", [["br-a", {"jump": {"target": "net-a-in"}}]]),
        "fwd_out": ("ifname", "verdict", [["br-a", {"jump": {"target": "net-a-out"}}]]),
        "nat_out": ("ifname", "verdict", [["br-a", {"jump": {"target": "net-a-nat"}}]]),
        "nat_in": ("ifname", "verdict", [["br-a", {"jump": {"target": "net-a-hairpin"}}]]),
    }
    counts = [len(t["rule"][c]) for c in ("forward", "postrouting", "net-a-in", "net-a-out", "net-a-nat", "net-a-hairpin")]
    assert counts == [2, 2, 4, 2, 1, 1]
    for chain in ("net-a-in", "net-a-out", "net-a-nat", "net-a-hairpin"):
        assert all(r["comment"].startswith("minirt:net:a") for r in t["rule"][chain])
    # The kernel's own text, as a user would read it.
    text = h.run("nft", "list", "table", "inet", "minirt").stdout
    for line in (
        'oifname vmap @fwd_in comment "minirt:dispatch:into-bridge"',
        'iifname vmap @fwd_out comment "minirt:dispatch:out-of-bridge"',
        'iifname vmap @nat_out comment "minirt:dispatch:nat-from-bridge"',
        'oifname vmap @nat_in comment "minirt:dispatch:nat-into-bridge"',
        'ct status dnat accept comment "minirt:net:a:published"',
        'ip saddr 10.1.0.0/24 ct status dnat masquerade comment "minirt:net:a:hairpin"',
        'ct state established,related accept comment "minirt:net:a"',
        'iifname "br-a" accept comment "minirt:net:a"',
        'drop comment "minirt:net:a:unpublished"',
        'oifname != "br-a" ip saddr 10.1.0.0/24 masquerade comment "minirt:net:a"',
    ):
        assert f"\t\t{line}\n" in text, f"{line!r} not in\n{text}"


def test_internal_network_drops_egress_and_does_not_masquerade(host_ns):
    h = host_ns
    ok(h, setup(INTERNAL))
    t = minirt_table(h)
    assert t["rule"].get("net-i-nat", []) == []
    text = h.run("nft", "list", "chain", "inet", "minirt", "net-i-out").stdout
    assert 'oifname != "br-i" drop comment "minirt:net:i"' in text
    assert "masquerade" not in h.run("nft", "list", "ruleset").stdout


def test_setup_twice_changes_nothing_and_repairs_damage(host_ns):
    h = host_ns
    ok(h, setup(A))
    once = objects(h)
    ok(h, setup(A))
    assert objects(h) == once
    # Someone damages the table; applying setup again restores exactly the same ruleset.
    h.run("nft", "flush", "chain", "inet", "minirt", "net-a-in")
    h.run("nft", "flush", "chain", "inet", "minirt", "forward")
    h.run("nft", "delete", "element", "inet", "minirt", "fwd_out", '{ "br-a" }')
    h.run("nft", "add", "rule", "inet", "minirt", "net-a-nat", "counter")
    assert objects(h) != once
    ok(h, setup(A))
    assert objects(h) == once


def test_teardown_removes_the_network_and_keeps_the_table_and_base_chains(host_ns):
    h = host_ns
    ok(h, setup(A), teardown(A))
    t = minirt_table(h)
    assert set(t["chain"]) == {"forward", "postrouting"}
    assert [len(t["rule"][c]) for c in ("forward", "postrouting")] == [2, 2]
    assert {k: m.get("elem") for k, m in t["map"].items()} == {"fwd_in": None, "fwd_out": None, "nat_out": None,
                                                               "nat_in": None}
    after = objects(h)
    ok(h, teardown(A))  # a network already gone is fine
    assert objects(h) == after
    ok(h, ("delete_table",), ("delete_table",))
    assert tables(h) == []


def test_teardown_on_a_host_without_our_table_succeeds(host_ns):
    h = host_ns
    ok(h, teardown(A))
    t = minirt_table(h)  # documented: the declared table and maps stay, empty
    assert (set(t["chain"]), set(t["map"])) == (set(), {"fwd_in", "fwd_out", "nat_out", "nat_in"})
    ok(h, ("delete_table",))
    assert tables(h) == []


def test_two_networks_coexist_and_tearing_one_down_leaves_the_other(host_ns):
    h = host_ns
    ok(h, setup(C))
    only_c = canonical(h)
    ok(h, ("delete_table",), setup(A), setup(C))
    t = minirt_table(h)
    assert {k: len(m["elem"]) for k, m in t["map"].items()} == {"fwd_in": 2, "fwd_out": 2, "nat_out": 2, "nat_in": 2}
    ok(h, teardown(A))
    assert canonical(h) == only_c  # as if a had never existed
    ok(h, teardown(C), ("delete_table",))
    assert tables(h) == []


def test_foreign_tables_survive_every_operation_untouched(host_ns):
    h = host_ns
    h.run("nft", "-f", "-", input="""
table inet userfw {
    set blocked { type ipv4_addr; elements = { 192.0.2.7 } }
    chain guard {
        type filter hook forward priority -1; policy accept;
        ip saddr @blocked counter drop
        tcp dport 2222 counter accept comment "user rule"
    }
}
table ip minirt {
    chain postrouting { type nat hook postrouting priority srcnat; policy accept; counter; }
}
""")
    foreign = {t: raw(h, "table", *t.split()) for t in ("inet userfw", "ip minirt")}

    def untouched():
        assert {t: raw(h, "table", *t.split()) for t in foreign} == foreign

    for steps in (
        [setup(A)],
        [setup(A)],
        [setup(C), setup(INTERNAL)],
        [setup(THIEF)],  # refused
        [teardown(A)],
        [teardown(C), teardown(INTERNAL)],
        [("delete_table",)],
        [("delete_table",)],
    ):
        apply(h, *steps)
        untouched()
    assert tables(h) == ["inet userfw", "ip minirt"]


def test_a_refused_batch_changes_nothing(host_ns):
    h = host_ns
    ok(h, setup(A), setup(C))
    before = raw(h, "ruleset")  # with handles: even the base chains' flush + re-add must be undone

    (r,) = apply(h, setup(THIEF))
    assert not r["ok"] and r["type"] == "FirewallError"
    assert r["message"].startswith("nft setup for network b2: Could not process rule: File exists (is bridge br-a")
    assert r["batch_text"] == "\n".join(render(rs.setup_network_batch(NetworkSpec(*THIEF))))
    assert raw(h, "ruleset") == before

    (r,) = apply(h, teardown(THIEF))  # must not remove network a's elements
    assert not r["ok"] and r["type"] == "FirewallError"
    assert r["message"].startswith("nft teardown for network b2: Could not process rule: File exists")
    assert raw(h, "ruleset") == before

    (r,) = apply(h, setup(QUOTE))  # refused before anything is sent
    assert not r["ok"] and r["type"] == "ConfigError" and "bridge name" in r["message"]
    assert raw(h, "ruleset") == before


@pytest.mark.parametrize("spec", [A, INTERNAL], ids=["nat", "internal"])
def test_rendered_commands_build_the_same_ruleset_as_the_json(host_ns, spec):
    """--explain and error notes print render(); replaying them by hand must give what minirt
    gave: as shell lines (one nft call each) and as one `nft -f` script."""
    h = host_ns
    net = NetworkSpec(*spec)
    ok(h, setup(spec))
    by_json = canonical(h)
    ok(h, teardown(spec))
    torn_by_json = canonical(h)

    h.run("nft", "delete", "table", "inet", "minirt")
    h.run("sh", "-ec", "\n".join(render(rs.setup_network_batch(net))))
    assert canonical(h) == by_json
    h.run("sh", "-ec", "\n".join(render(rs.teardown_network_batch(net))))
    assert canonical(h) == torn_by_json

    h.run("nft", "delete", "table", "inet", "minirt")
    h.run("nft", "-f", "-", input="\n".join(script(rs.setup_network_batch(net))) + "\n")
    assert canonical(h) == by_json
    h.run("nft", "-f", "-", input="\n".join(script(rs.teardown_network_batch(net))) + "\n")
    assert canonical(h) == torn_by_json
    h.run("nft", "-f", "-", input="\n".join(script(rs.delete_table_batch())) + "\n")
    assert tables(h) == []


def test_packets_are_forwarded_masqueraded_and_dropped_as_designed(host_ns):
    """A container netns on br-a and a "wan" netns with no route back to 10.1.0.0/24: a ping
    from the container comes back only if masqueraded; a ping into the container is a new
    inbound connection and meets the unpublished drop; an internal network cannot leave."""
    h = host_ns
    ctr, wan = HostNS(), HostNS()
    try:
        h.run("sysctl", "-qw", "net.ipv4.ip_forward=1")  # the throwaway namespace's own
        h.run("ip", "link", "add", "br-a", "type", "bridge")
        h.run("ip", "addr", "add", "10.1.0.1/24", "dev", "br-a")
        h.run("ip", "link", "set", "br-a", "up")
        h.run("ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "eth0", "netns", str(ctr.pid))
        h.run("ip", "link", "set", "veth-a", "master", "br-a", "up")
        ctr.run("ip", "addr", "add", "10.1.0.2/24", "dev", "eth0")
        ctr.run("ip", "link", "set", "eth0", "up")
        ctr.run("ip", "route", "add", "default", "via", "10.1.0.1")
        h.run("ip", "link", "add", "wanh", "type", "veth", "peer", "name", "wanp", "netns", str(wan.pid))
        h.run("ip", "addr", "add", "198.51.100.1/24", "dev", "wanh")
        h.run("ip", "link", "set", "wanh", "up")
        wan.run("ip", "addr", "add", "198.51.100.2/24", "dev", "wanp")
        wan.run("ip", "link", "set", "wanp", "up")

        def ping(ns: HostNS, dst: str) -> bool:
            return ns.run("ping", "-c1", "-W1", "-q", dst, check=False).returncode == 0

        assert ping(ctr, "10.1.0.1")
        assert not ping(ctr, "198.51.100.2")  # no NAT yet: the reply has no way back
        ok(h, setup(A))
        assert ping(ctr, "198.51.100.2")  # masqueraded to 198.51.100.1
        wan.run("ip", "route", "add", "10.1.0.0/24", "via", "198.51.100.1")
        assert not ping(wan, "10.1.0.2")  # inbound, unpublished: dropped
        ok(h, setup(("a", "br-a", "10.1.0.0/24", "10.1.0.1", True)))  # same network, now internal
        assert not ping(ctr, "198.51.100.2")  # egress dropped (wan could answer now)
        assert ping(ctr, "10.1.0.1")  # the gateway is the host itself: not forwarded
        ok(h, teardown(A))
        assert ping(ctr, "198.51.100.2")  # no table of ours in the way any more (wan routes back)
    finally:
        ctr.close()
        wan.close()
