"""A traced packet as a readable path (one block per packet), or as one line of JSON.

Runs in: anywhere (pure). Input: monitor.Packet.to_dict().

    #1 tcp 198.51.100.2:40312 -> 198.51.100.1:8080 [syn] in wanh  (trace id 9a3c41f2)
      prerouting  inet minirt prerouting  (priority -100)
          fib daddr type local jump ports comment "minirt:published"  -> jump ports
          ports: dnat ip to ... map @ports_any comment "minirt:published:any-address"  -> accept
      DNAT 198.51.100.1:8080 -> 172.17.0.2:80  by inet minirt ports, "minirt:published:any-address"
      forward     inet minirt forward  (priority 0)  tcp 198.51.100.2:40312 -> 172.17.0.2:80 in wanh out minirt0
          oifname vmap @fwd_in comment "minirt:dispatch:into-bridge"  -> jump net-minirt-in
          net-minirt-in: ct status dnat accept comment "minirt:net:minirt:published"  -> accept
      = accepted (last hook: forward), out minirt0

A rule in a chain other than the hop's base chain is prefixed by its chain (`ports:`): that is
where a jump went. The packet is shown again at a hop only when something in it changed.
"""

import json


def endpoint(addr, port) -> str:
    if addr is None:
        return "?"
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def packet_line(p: dict) -> str:
    words = [p.get("proto") or "?", endpoint(p.get("src"), p.get("sport")), "->",
             endpoint(p.get("dst"), p.get("dport"))]  # fmt: skip
    if p.get("flags"):
        words.append(f"[{p['flags']}]")
    if p.get("icmp"):
        words.append(f"[{p['icmp']}]")
    if p.get("iif"):
        words.append(f"in {p['iif']}")
    if p.get("oif"):
        words.append(f"out {p['oif']}")
    return " ".join(words)


def _where(p: dict) -> tuple:
    return tuple(p.get(k) for k in ("src", "sport", "dst", "dport", "iif", "oif"))


def _nat_line(n: dict) -> str:
    after = n.get("after") or "?"
    if n.get("after_note"):
        after = f"{after} ({n['after_note']})"
    if n.get("rule"):  # the rule's text is on its own line above; name it by its comment
        what = f'"{n["comment"]}"' if n.get("comment") else f"rule {n['rule']}"
        by = f"  by {n['table']} {n.get('chain') or ''}, {what}"
    elif n.get("by") == "conntrack":
        by = "  by conntrack (a reply or a later packet of a NATed connection: no NAT rule runs)"
    else:
        by = ""
    return f"{n['kind'].upper()} {n.get('before') or '?'} -> {after}{by}"


def text(rec: dict, number: int) -> str:
    """One packet's path, several lines, no trailing newline."""
    hops = rec["hops"]
    lines = [f"#{number} {packet_line(rec['packet'])}  (trace id {rec['trace_id']})"]
    before = {n["seen_at"]: n for n in rec["nat"] if "seen_at" in n}
    after = {n["done_at"]: n for n in rec["nat"] if "done_at" in n}
    width = max([11] + [len(h["hook"] or "?") + 1 for h in hops])
    shown = _where(rec["packet"])
    for i, h in enumerate(hops):
        if i in before:
            lines.append(f"  {_nat_line(before[i])}")
        kind = f"  ({_prio(h)})" if h.get("priority") is not None else ""
        head = f"  {h['hook'] or '?':<{width}} {h['family']} {h['table']} {h['chain']}{kind}"
        if _where(h["packet"]) != shown:
            head += f"  {packet_line(h['packet'])}"
            shown = _where(h["packet"])
        lines.append(head)
        for r in h["rules"]:
            lines.append(f"      {_rule(h, r)}")
        if i in after:
            lines.append(f"  {_nat_line(after[i])}")
    lines.append(f"  = {outcome_line(rec)}")
    return "\n".join(lines)


def _prio(h: dict) -> str:
    return f"priority {h['priority']}"


def _rule(h: dict, r: dict) -> str:
    if r.get("policy"):
        return f"policy {r['verdict']}"
    prefix = f"{r['chain']}: " if r.get("chain") and r["chain"] != h["chain"] else ""
    body = r.get("rule")
    if body is None:
        body = f"rule handle {r['handle']} (no longer in the ruleset)" if r.get("handle") is not None else "return"
    verdict = r.get("verdict") or ""
    return f"{prefix}{body}  -> {verdict}" if verdict else f"{prefix}{body}"


def outcome_line(rec: dict) -> str:
    if rec["result"] == "dropped":
        by = rec["dropped_by"]
        where = f"table {by['family']} {by['table']}, chain {by['chain']}"
        if by.get("policy"):
            return f"DROPPED by the policy of {where} (hook {by.get('hook') or '?'})"
        rule = by.get("rule") or (f"handle {by['handle']}" if by.get("handle") is not None else "?")
        return f"DROPPED by {where} (hook {by.get('hook') or '?'}), rule: {rule}"
    tail = f", out {rec['out']}" if rec.get("out") else ""
    return f"accepted (last hook: {rec.get('last_hook') or '?'}){tail}"


def json_line(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True)
