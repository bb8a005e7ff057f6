"""`minirt trace`'s pure parts: the `nft monitor trace` parser against output recorded from real
runs (tests/unit/data/trace_*.txt, written by tests/integration/test_trace.py through
MINIRT_TRACE_RAW), the rendering (golden), the trace rules (golden nft text), the selection.

After an intended change of the rendering or the rules: UPDATE_GOLDEN=1 pytest tests/unit/test_trace.py,
review the diff of tests/unit/golden/trace_*.
"""

import os

import pytest

from minirt.errors import ConfigError
from minirt.trace import monitor, render, rules, selection

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
GOLDEN = os.path.join(HERE, "golden")

# The base chains of the recorded runs (what `nft list chains` said): (hook, priority)
HOOKS = {
    ("inet", "minirt", "prerouting"): ("prerouting", -100),
    ("inet", "minirt", "output"): ("output", -100),
    ("inet", "minirt", "ports_masq"): ("postrouting", 100),
    ("inet", "minirt", "forward"): ("forward", 0),
    ("inet", "minirt", "postrouting"): ("postrouting", 100),
    ("inet", "userfw", "forward"): ("forward", 10),
    ("ip", "filter", "FORWARD"): ("forward", 0),
}


def _ours(h) -> bool:
    return h["table"] == "minirt" and rules.is_trace_chain(h["chain"])


def recorded(name: str) -> list[dict]:
    with open(os.path.join(DATA, f"trace_{name}.txt")) as f:
        text = f.read()
    hooks = dict(HOOKS)
    for line in text.splitlines():  # the recorded trace chains (named after that run's pid)
        ev = monitor.parse_line(line)
        if ev and rules.is_trace_chain(ev.chain):
            hooks[(ev.family, ev.table, ev.chain)] = ("prerouting" if ev.chain.endswith("-pre") else "output", -350)
    packets = monitor.parse_text(text, hooks, lambda ev: rules.is_trace_chain(ev.chain))
    return [p.to_dict(_ours) for p in packets]


def syn(records, **want) -> dict:
    return next(r for r in records if r["packet"].get("flags") == "syn"
                and all(r["packet"].get(k) == v for k, v in want.items()))  # fmt: skip


def golden(name: str, text: str) -> None:
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read(), f"{name} changed (UPDATE_GOLDEN=1 to accept)"


# -- lines ----------------------------------------------------------------------------------


def test_parse_line_kinds():
    ev = monitor.parse_line('trace id 1da79fac inet minirt prerouting packet: iif "wanh" ip saddr 198.51.100.2 '
                            "ip daddr 198.51.100.1 ip protocol tcp tcp sport 36726 tcp dport 8080 tcp flags == syn ")
    assert (ev.id, ev.family, ev.table, ev.chain, ev.kind) == ("1da79fac", "inet", "minirt", "prerouting", "packet")
    assert monitor.summary(ev.packet) == {"proto": "tcp", "src": "198.51.100.2", "dst": "198.51.100.1",
                                          "sport": 36726, "dport": 8080, "iif": "wanh", "oif": None, "flags": "syn"}
    ev = monitor.parse_line('trace id 1da79fac inet minirt net-minirt-in rule ct status dnat accept comment '
                            '"minirt:net:minirt:published" (verdict accept)')
    assert (ev.kind, ev.verdict, ev.text) == ("rule", "accept",
                                              'ct status dnat accept comment "minirt:net:minirt:published"')
    ev = monitor.parse_line("trace id 8bf780d0 inet t sub2 unknown rule handle 12 (verdict drop)")
    assert (ev.kind, ev.handle, ev.verdict, ev.text) == ("rule", 12, "drop", "")
    ev = monitor.parse_line("trace id 09738d5f inet minirt trace-1-out policy accept meta mark 0x00000138 ")
    assert (ev.kind, ev.verdict) == ("policy", "accept")
    ev = monitor.parse_line("trace id 0d96b801 inet t o2 rule oifname vmap @m (verdict jump sub)")
    assert ev.verdict == "jump sub"
    assert monitor.parse_line("add table inet x") is None
    assert monitor.parse_line("") is None


def test_packet_fields_ipv6_and_flag_lists():
    p = monitor.parse_packet('oif "mr0a745ab8d610" ip6 saddr fd00::2 ip6 daddr fd00::1 ip6 nexthdr udp '
                             "udp sport 53 udp dport 40000 ")
    assert monitor.summary(p)["src"] == "fd00::2" and monitor.summary(p)["proto"] == "udp"
    p = monitor.parse_packet("ip saddr 1.2.3.4 ip daddr 5.6.7.8 tcp sport 1 tcp dport 2 tcp flags == syn | ack x 1")
    assert p["tcp flags"] == "syn|ack"
    assert render.endpoint("fd00::2", 53) == "[fd00::2]:53"


def test_nat_statement_is_not_a_ct_status_match():
    assert monitor.nat_statement('ct status dnat masquerade comment "x"') == ("masquerade", None)
    assert monitor.nat_statement("ct status dnat accept") is None
    assert monitor.nat_statement("ip daddr 10.0.0.1 dnat ip to 172.17.0.2:80") == ("dnat", "172.17.0.2:80")
    assert monitor.nat_statement("dnat ip to meta l4proto . th dport map @ports_any") == ("dnat", None)
    assert monitor.nat_statement("snat to 192.0.2.7") == ("snat", "192.0.2.7")


# -- recorded traces ------------------------------------------------------------------------


def test_recorded_published_port_dnat_forward_accept():
    records = recorded("published")
    rec = syn(records, src="198.51.100.2", dport=8080)
    assert rec["result"] == "accepted" and rec["out"] == "minirt0"
    assert [h["hook"] for h in rec["hops"]] == ["prerouting", "forward", "postrouting", "postrouting"]
    dnat = rec["nat"][0]
    assert (dnat["kind"], dnat["before"], dnat["after"]) == ("dnat", "198.51.100.1:8080", "172.17.0.2:80")
    assert (dnat["table"], dnat["chain"], dnat["comment"]) == ("inet minirt", "ports", "minirt:published:any-address")
    fwd = rec["hops"][1]["rules"]
    assert [(r["chain"], r["verdict"]) for r in fwd] == [("forward", "jump net-minirt-in"), ("net-minirt-in", "accept")]
    assert fwd[1]["comment"] == "minirt:net:minirt:published"
    # the container's SYN-ACK: un-NATed by conntrack, no NAT rule runs for it
    reply = next(r for r in records if r["packet"]["src"] == "172.17.0.2" and r["packet"].get("flags") == "0x12")
    assert reply["nat"] and all(n.get("by") == "conntrack" for n in reply["nat"])
    assert not any(rules.is_trace_chain(h["chain"]) for r in records for h in r["hops"])  # ours hidden
    golden("trace_published.txt", render.text(rec, 1) + "\n")


def test_recorded_foreign_drop_names_table_chain_rule():
    rec = syn(recorded("foreign-drop"), src="198.51.100.2")
    assert rec["result"] == "dropped"
    by = rec["dropped_by"]
    assert (by["family"], by["table"], by["chain"], by["hook"], by["policy"]) == ("inet", "userfw", "forward",
                                                                                    "forward", False)
    assert by["rule"] == 'iifname "wanh" tcp dport 80 drop comment "userfw: no web from wan"'
    assert by["comment"] == "userfw: no web from wan"
    text = render.text(rec, 1)
    assert text.endswith('= DROPPED by table inet userfw, chain forward (hook forward), rule: iifname "wanh" '
                         'tcp dport 80 drop comment "userfw: no web from wan"')
    golden("trace_foreign_drop.txt", text + "\n")


def test_recorded_docker_forward_policy_drop():
    rec = syn(recorded("policy-drop"), src="198.51.100.2")
    by = rec["dropped_by"]
    assert (by["family"], by["table"], by["chain"], by["policy"], by["rule"]) == ("ip", "filter", "FORWARD", True, None)
    assert render.outcome_line(rec) == "DROPPED by the policy of table ip filter, chain FORWARD (hook forward)"


def test_recorded_outbound_masquerade():
    rec = syn(recorded("masquerade"), dport=8080)
    masq = [n for n in rec["nat"] if n["kind"] == "masquerade"]
    assert len(masq) == 1 and masq[0]["oif"] == "wanh" and masq[0]["comment"] == "minirt:net:minirt"
    assert masq[0]["before"].startswith("172.17.0.2:") and masq[0]["after"] is None  # filled by the command
    assert rec["result"] == "accepted" and rec["out"] == "wanh"


# -- assembling -----------------------------------------------------------------------------


def _lines(tid: str, chain: str, verdict: str = "accept") -> list[str]:
    return [f"trace id {tid} inet minirt {chain} packet: iif \"x\" ip saddr 10.0.0.2 ip daddr 10.0.0.1 ",
            f"trace id {tid} inet minirt {chain} policy {verdict} "]  # fmt: skip


def test_a_reused_trace_id_starts_a_new_packet_at_our_chain():
    now = [0.0]
    asm = monitor.Assembler({}, lambda ev: ev.chain == "trace-1-pre", clock=lambda: now[0])
    out = []
    for line in _lines("aa", "trace-1-pre") + _lines("aa", "forward") + _lines("aa", "trace-1-pre"):
        out += asm.feed(monitor.parse_line(line))
    assert len(out) == 1 and [h["chain"] for h in out[0].hops] == ["trace-1-pre", "forward"]
    assert asm.expire() == []  # not quiet yet
    # a packet finishing early waits for the earlier one: output is in start order
    for line in _lines("dd", "trace-1-pre")[:1] + _lines("ee", "trace-1-pre")[:1] + _lines("ee", "x", "drop")[1:]:
        assert asm.feed(monitor.parse_line(line)) == []
    now[0] = 0.1
    assert [p.id for p in asm.feed(monitor.parse_line(_lines("dd", "y", "drop")[1]))] == []  # "aa" still open
    now[0] = 1.0
    second, dd, ee = asm.expire()
    assert [h["chain"] for h in second.hops] == ["trace-1-pre"] and (dd.id, ee.id) == ("dd", "ee")


def test_a_drop_completes_the_packet_at_once():
    asm = monitor.Assembler({}, lambda ev: False, clock=lambda: 0.0)
    assert asm.feed(monitor.parse_line(_lines("bb", "forward", "drop")[0])) == []
    (pkt,) = asm.feed(monitor.parse_line(_lines("bb", "forward", "drop")[1]))
    d = pkt.to_dict()
    assert d["result"] == "dropped" and d["dropped_by"]["policy"] is True
    assert render.outcome_line(d) == "DROPPED by the policy of table inet minirt, chain forward (hook ?)"


def test_a_rule_unknown_to_nft_is_resolved_by_handle():
    unknown = "trace id cc inet minirt trace-1-pre unknown rule handle 7 (verdict drop)"
    lines = [*_lines("cc", "trace-1-pre")[:1], unknown]
    asked = []

    def resolve(family, table, chain, handle):
        asked.append((family, table, chain, handle))
        return 'ip saddr 10.0.0.2 drop comment "late"'

    (pkt,) = monitor.parse_text("\n".join(lines), {}, lambda ev: True, resolve)
    d = pkt.to_dict()
    assert asked == [("inet", "minirt", "trace-1-pre", 7)]
    assert d["dropped_by"]["rule"] == 'ip saddr 10.0.0.2 drop comment "late"' and d["dropped_by"]["comment"] == "late"


# -- rules ----------------------------------------------------------------------------------


def _container_matches():
    rec = {"name": "web", "network": {"address": "172.17.0.2", "address6": "fd00::2", "host_ifname": "mr0a745ab8d610"},
           "connected": [{"network": "lab", "address": "10.89.0.5", "host_ifname": "mr0a745ab8d61x1"}]}
    plan = [{"undo": "ports", "elements": [["ports_any", "tcp . 8080", "172.17.0.2 . 80"],
                                           ["ports_ip", "127.0.0.1 . udp . 5353", "172.17.0.2 . 53"]]}]
    return selection.for_container("web", rec, plan)


def test_rules_golden():
    text = rules.install_script(4242, _container_matches()) + "\n\n" + rules.remove_script(4242) + "\n"
    golden("trace_rules.nft", text)
    assert "priority -350;" in text and text.count("meta nftrace set 1") == 2 * 8
    assert all('comment "minirt:trace:4242:' in line for line in text.splitlines() if line.startswith("add rule"))


def test_remove_declares_before_deleting():
    lines = rules.remove_script(7).splitlines()
    assert lines[0].startswith("add chain inet minirt trace-7-pre {")
    assert lines[2] == "delete chain inet minirt trace-7-pre"
    assert rules.chain_names(7) == ["trace-7-pre", "trace-7-out"]
    assert rules.is_trace_chain("trace-7-out") and not rules.is_trace_chain("net-trace-in")


# -- selection ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, want", [
    ("8080", (None, "tcp", 8080)),
    ("8080/udp", (None, "udp", 8080)),
    ("127.0.0.1:9090", ("127.0.0.1", "tcp", 9090)),
    ("[2001:db8::1]:80/tcp", ("2001:db8::1", "tcp", 80)),
])  # fmt: skip
def test_parse_port(spec, want):
    assert selection.parse_port(spec) == want


@pytest.mark.parametrize("spec", ["0", "70000", "http", "8080/icmp", "300.1.1.1:80", "[::1:80", ""])
def test_parse_port_refuses(spec):
    with pytest.raises(ConfigError):
        selection.parse_port(spec)


def test_container_selection():
    m = _container_matches()
    assert [(x.kind, x.value) for x in m] == [
        ("saddr", "172.17.0.2"), ("daddr", "172.17.0.2"), ("saddr", "fd00::2"), ("daddr", "fd00::2"),
        ("saddr", "10.89.0.5"), ("daddr", "10.89.0.5"),
        ("port", (None, "tcp", 8080)), ("port", ("127.0.0.1", "udp", 5353)),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="no network address"):
        selection.for_container("quiet", {"network": {}}, [])


def test_port_and_network_selection_follow_the_published_elements():
    published = {("ports_any", "tcp . 8080"): "172.17.0.2 . 80", ("ports_any", "tcp . 9000"): "10.89.0.5 . 9000",
                 ("ports_ip", "127.0.0.1 . tcp . 8080"): "172.17.0.3 . 81"}  # fmt: skip
    m = selection.for_port("8080", published)
    assert [(x.kind, x.value) for x in m] == [("port", (None, "tcp", 8080)), ("reply", ("172.17.0.2", "tcp", 80)),
                                              ("reply", ("172.17.0.3", "tcp", 81))]  # fmt: skip
    m = selection.for_port("192.0.2.1:8080", published)
    assert [x.value for x in m if x.kind == "reply"] == [("172.17.0.2", "tcp", 80)]

    class Net:
        name, subnet, subnet6, bridge = "minirt", "172.17.0.0/16", None, "minirt0"

    m = selection.for_network(Net, published)
    assert [(x.kind, x.value) for x in m] == [("saddr", "172.17.0.0/16"), ("daddr", "172.17.0.0/16"),
                                              ("port", (None, "tcp", 8080)), ("port", ("127.0.0.1", "tcp", 8080))]
