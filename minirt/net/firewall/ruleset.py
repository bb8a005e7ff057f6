"""minirt's nftables ruleset as data: pure builders of libnftables JSON batches.

One table, `inet minirt`; minirt touches nothing else and never flushes the ruleset (netavark
`netavark`, moby `docker-bridges`, CNI `cni_hostport`). Shape (Docker 29's nftables bridge
driver, peers-and-rulesets.md 2.1): base chains dispatch through verdict maps keyed by bridge
name, so a packet that is not ours leaves after one lookup and the cost does not grow with the
number of networks; each network has its own regular chains.

    table inet minirt
      map fwd_in  { type ifname : verdict }   "<br>" : jump net-<name>-in     (to the bridge)
      map fwd_out { type ifname : verdict }   "<br>" : jump net-<name>-out    (from the bridge)
      map nat_out { type ifname : verdict }   "<br>" : jump net-<name>-nat
      chain forward     { type filter hook forward priority filter; policy accept;
                          oifname vmap @fwd_in; iifname vmap @fwd_out }
      chain postrouting { type nat hook postrouting priority srcnat; policy accept;
                          iifname vmap @nat_out }
      chain net-<name>-in   established,related accept; from the same bridge accept; drop
      chain net-<name>-out  established,related accept; accept (internal: leaving the bridge drop)
      chain net-<name>-nat  oifname != "<br>" ip saddr <subnet> masquerade (none when internal)

Inbound connections to containers are dropped unless published (Docker 28+'s "direct access"
drop; published ports arrive later as map elements). Containers need no per-container rule.

`add table/chain/map` are idempotent, `add rule` is not: chains we own are flushed and refilled
in the same batch (CNI's tx.Flush + tx.Add), so applying setup twice gives the same ruleset.
Teardown declares every object before deleting it (moby's template, LXC), so it cannot fail on
something already gone, and needs no parsing of nft's errors.

Coexistence: an accept here is final only for this table's base chain; a drop on the same hook
in another table (ufw's policy drop, iptables-nft's FORWARD DROP left by an iptables Docker)
still drops the packet. minirt does not edit other tables; `--explain` and the README say so.
"""

T = {"family": "inet", "table": "minirt"}
MAPS = ("fwd_in", "fwd_out", "nat_out")


def _table() -> dict:
    return {"add": {"table": {"family": "inet", "name": "minirt"}}}


def _chain(name: str, **hook) -> dict:
    return {"add": {"chain": {**T, "name": name, **hook}}}


def _map(name: str) -> dict:
    return {"add": {"map": {"family": "inet", "table": "minirt", "name": name, "type": "ifname", "map": "verdict"}}}


def _rule(chain: str, expr: list, comment: str | None = None) -> dict:
    rule = {**T, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment
    return {"add": {"rule": rule}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _elem(verb: str, map_name: str, bridge: str, target: str) -> dict:
    return {verb: {"element": {**T, "name": map_name, "elem": [[bridge, {"jump": {"target": target}}]]}}}


def chains_of(net) -> dict[str, str]:
    return {"fwd_in": f"net-{net.name}-in", "fwd_out": f"net-{net.name}-out", "nat_out": f"net-{net.name}-nat"}


def base_batch() -> list[dict]:
    """Table, maps and base chains, with their dispatch rules rebuilt (idempotent)."""
    return [
        _table(),
        *(_map(m) for m in MAPS),
        _chain("forward", type="filter", hook="forward", prio=0, policy="accept"),
        _chain("postrouting", type="nat", hook="postrouting", prio=100, policy="accept"),
        {"flush": {"chain": {**T, "name": "forward"}}},
        {"flush": {"chain": {**T, "name": "postrouting"}}},
        _rule("forward", [{"vmap": {"key": _meta("oifname"), "data": "@fwd_in"}}]),
        _rule("forward", [{"vmap": {"key": _meta("iifname"), "data": "@fwd_out"}}]),
        _rule("postrouting", [{"vmap": {"key": _meta("iifname"), "data": "@nat_out"}}]),
    ]


def setup_network_batch(net) -> list[dict]:
    c = chains_of(net)
    own = f"minirt:net:{net.name}"
    addr, plen = net.subnet.split("/")
    established = _match({"ct": {"key": "state"}}, ["established", "related"], "in")
    batch = base_batch()
    for chain in c.values():
        batch.append(_chain(chain))
        batch.append({"flush": {"chain": {**T, "name": chain}}})
    batch += [
        _rule(c["fwd_in"], [established, {"accept": None}], own),
        _rule(c["fwd_in"], [_match(_meta("iifname"), net.bridge), {"accept": None}], own),
        _rule(c["fwd_in"], [{"drop": None}], own + ":unpublished"),
        _rule(c["fwd_out"], [established, {"accept": None}], own),
    ]
    if net.internal:
        batch.append(_rule(c["fwd_out"], [_match(_meta("oifname"), net.bridge, "!="), {"drop": None}], own))
    else:
        batch.append(_rule(c["fwd_out"], [{"accept": None}], own))
        saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
        batch.append(
            _rule(
                c["nat_out"],
                [
                    _match(_meta("oifname"), net.bridge, "!="),
                    _match(saddr, {"prefix": {"addr": addr, "len": int(plen)}}),
                    {"masquerade": None},
                ],
                own,
            )
        )
    batch += [_elem("add", m, net.bridge, chain) for m, chain in c.items()]
    return batch


def teardown_network_batch(net) -> list[dict]:
    c = chains_of(net)
    batch = [_table(), *(_map(m) for m in MAPS)]
    for chain in c.values():
        batch.append(_chain(chain))
    batch += [_elem("add", m, net.bridge, chain) for m, chain in c.items()]
    batch += [_elem("delete", m, net.bridge, chain) for m, chain in c.items()]
    for chain in c.values():
        batch.append({"flush": {"chain": {**T, "name": chain}}})
        batch.append({"delete": {"chain": {**T, "name": chain}}})
    return batch


def delete_table_batch() -> list[dict]:
    return [_table(), {"delete": {"table": {"family": "inet", "name": "minirt"}}}]
