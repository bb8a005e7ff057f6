"""minirt's nftables ruleset as data: pure builders of libnftables JSON batches.

Runs in: anywhere (pure; no I/O, no imports beyond minirt.errors). nftables.py applies the
batches, render.py turns the same batches into `nft ...` lines.

One table, `inet minirt`. minirt touches nothing else and never flushes the ruleset (netavark's
`inet netavark`, moby's `docker-bridges`, CNI's `cni_hostport`). The shape follows Docker 29's
nftables bridge driver (docs/networking.md, "Docker's behaviour"): base chains dispatch through
verdict maps keyed by bridge name, so a packet that is neither to nor from one of our bridges
finds no element and leaves at once, and the cost does not grow with the number of networks.

    table inet minirt
      map fwd_in  { type ifname : verdict }  "<br>" : jump net-<name>-in      (into the bridge)
      map fwd_out { type ifname : verdict }  "<br>" : jump net-<name>-out     (out of the bridge)
      map nat_out { type ifname : verdict }  "<br>" : jump net-<name>-nat     (keyed by iifname)
      map nat_in  { type ifname : verdict }  "<br>" : jump net-<name>-hairpin (keyed by oifname)
      chain forward      type filter hook forward priority filter; policy accept
                           oifname vmap @fwd_in     comment "minirt:dispatch:into-bridge"
                           iifname vmap @fwd_out    comment "minirt:dispatch:out-of-bridge"
      chain postrouting  type nat hook postrouting priority srcnat; policy accept
                           iifname vmap @nat_out    comment "minirt:dispatch:nat-from-bridge"
                           oifname vmap @nat_in     comment "minirt:dispatch:nat-into-bridge"
      chain net-<name>-in    ct state established,related accept
                             iifname "<br>" accept              container to container, same bridge
                                                                (icc=false: none; a drop after the next rule)
                             ct status dnat accept              published ports (firewall/ports.py DNATs them)
                             drop                               Docker 28+: no direct access from outside
      chain net-<name>-out   ct state established,related accept
                             accept                     (internal: oifname != "<br>" drop)
      chain net-<name>-nat   oifname != "<br>" ip saddr <subnet> masquerade   (none if internal, or
                                                                           a CNI network's ipMasq: false)
                             oifname != "<br>" ip6 saddr <subnet6> masquerade (dual-stack only)
      chain net-<name>-hairpin  ip saddr <subnet> ct status dnat masquerade   (none if internal) a
                                container reaching a published port of its own bridge (and ip6
                                saddr <subnet6> on dual-stack); other clients keep their address

The published-port maps and chains (ports_ip, ports_any, prerouting, output, ports, ports_masq)
live in the same table but are declared by firewall/ports.py, in nft text.

Ownership marks: every rule of a network's chains carries the comment `minirt:net:<name>`, or
`minirt:net:<name>:<why>` where the reason helps a reader of `nft list` or of `minirt trace`
(published, icc, unpublished, hairpin); the base chains' dispatch rules say `minirt:dispatch:<what>`. Network names cannot contain ':', so the mark of one network is never a
prefix of another's (CNI's ipmasq comments; gc deletes only what carries a mark). A map element is owned by the
network whose chain it jumps to; nft has no element comments we rely on.

Idempotence. `add table/chain/map` are idempotent, `add rule` is not: every chain we fill is
flushed and refilled in the same batch (CNI's tx.Flush + tx.Add), the two base chains included
(their four dispatch rules are network-independent; the maps carry the per-network part).
Adding an element that exists with the same value is a no-op; with a different value the kernel
refuses the whole batch with EEXIST (checked with libnftables 1.0.6 / Linux 6.18). So setting
up a network whose bridge another network already owns fails instead of stealing its traffic.

Teardown declares every object before deleting it (moby's template, LXC's `add table; delete
table`), so it cannot fail on something already gone and needs no parsing of nft's errors.
It also re-adds the four elements with this network's value before deleting them. `delete
element` matches the key only, whatever the value; the add makes the kernel check the value
first, so a teardown never removes an element another network owns (moby's MapElement.delete
checks the old value for the same reason). Be aware: tearing down on a host that has no
`inet minirt` table leaves an empty one (table and maps, declared so that the deletes cannot
fail); delete_table_batch() removes it.

Coexistence. An accept here is final only for this table's base chain. Every base chain on the
same hook, in any table, sees the packet in priority order, and a drop in any of them wins:
ufw's `policy drop`, firewalld, or iptables-nft's `FORWARD DROP` left by an iptables-mode
Docker still drop what minirt accepts (docs/networking.md, "Coexistence with other firewalls").
minirt does nothing about that automatically: it does not edit other tables, insert rules into
them or change their policies (it could not know it is allowed to). The user has to accept the
bridge's traffic in their own firewall, e.g. `iptables -I FORWARD -i minirt0 -j ACCEPT` and the
reverse with `-o minirt0 -m conntrack --ctstate RELATED,ESTABLISHED`, or a rule in their own nft
table; docs/networking.md documents it and `minirt doctor` names such chains. Conversely
minirt's own drop (unpublished inbound) applies however permissive the other tables are.
"""

from minirt.errors import ConfigError
from minirt.net import inet

FAMILY = "inet"
TABLE = "minirt"
MAPS = ("fwd_in", "fwd_out", "nat_out", "nat_in")
DISPATCH = "minirt:dispatch"  # the base chains' rules: they belong to no network, and jump to one
MAX_NAME = 64  # keeps `minirt:net:<name>:unpublished` under nft's 128-character comment limit
_T = {"family": FAMILY, "table": TABLE}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def mark(net) -> str:
    """The ownership comment of the network's rules."""
    return f"minirt:net:{net.name}"


def chains_of(net) -> dict[str, str]:
    """map -> the network's chain its element jumps to."""
    return {"fwd_in": f"net-{net.name}-in", "fwd_out": f"net-{net.name}-out", "nat_out": f"net-{net.name}-nat",
            "nat_in": f"net-{net.name}-hairpin"}  # fmt: skip


def check(net) -> tuple[str, int]:
    """Refuse specs that cannot be written as nft rules; returns the subnet as (address, prefixlen).

    Pure and done before anything is sent, so a bad spec changes nothing. libnftables' JSON
    parser accepts things its text parser (and so our rendering) cannot express: a `"` in an
    interface name, comments over 128 characters; and it resolves a malformed address through
    DNS. Names are therefore restricted to what nft reads back unquoted as chain names.
    """
    name, bridge = net.name, net.bridge
    if not (isinstance(name, str) and 0 < len(name) <= MAX_NAME and name[0].isalnum() and set(name) <= _NAME_CHARS):
        raise ConfigError(
            f"network name {name!r}: use 1-{MAX_NAME} letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    if not (isinstance(bridge, str) and 0 < len(bridge) <= 15 and set(bridge) <= _NAME_CHARS) or bridge in (".", ".."):
        raise ConfigError(f"network {name}: bridge name {bridge!r}: use 1-15 letters, digits, '_', '.' or '-'")
    return _parse_subnet(net)


def _masquerade6(net) -> list[dict]:
    """Dual-stack networks: `oifname != "<br>" ip6 saddr <subnet6> masquerade` (Docker and
    netavark masquerade a ULA network's IPv6 traffic the same way as its IPv4)."""
    addr, plen = _parse_subnet6(net)
    saddr = {"payload": {"protocol": "ip6", "field": "saddr"}}
    return [_match(_meta("oifname"), net.bridge, "!="), _match(saddr, {"prefix": {"addr": addr, "len": plen}}),
            {"masquerade": None}]  # fmt: skip


def _parse_subnet6(net) -> tuple[str, int]:
    """"fd00:77::/64" -> ("fd00:77::", 64), canonical form and host bits clear, or ConfigError."""
    return _parse_prefix(net, net.subnet6, inet.V6, "an IPv6 network such as fd00:77::/64")


def _parse_subnet(net) -> tuple[str, int]:
    """"a.b.c.d/len" -> ("a.b.c.d", len), IPv4 only, host bits clear."""
    return _parse_prefix(net, net.subnet, inet.V4, "an IPv4 network such as 172.17.0.0/16")


def _parse_prefix(net, subnet, version: int, expected: str) -> tuple[str, int]:
    """The rule text must be what nft lists back: ADDRESS/LEN, canonical, host bits clear."""
    try:
        p = inet.prefix(str(subnet), canonical6=True, bare=False)
    except inet.HostBitsSet:
        raise ConfigError(f"network {net.name}: subnet {subnet!r} has host bits set (not a network address)") from None
    except ValueError:
        p = None
    if p is None or p.version != version:
        raise ConfigError(f"network {net.name}: subnet {subnet!r}: expected {expected}")
    return p.address, p.plen


# -- JSON objects (libnftables-json(5)) -------------------------------------------------------


def _table(verb: str = "add") -> dict:
    return {verb: {"table": {"family": FAMILY, "name": TABLE}}}


def _chain(verb: str, name: str, **hook) -> dict:
    return {verb: {"chain": {**_T, "name": name, **hook}}}


def _map(name: str) -> dict:
    # `type ifname : verdict` declared in JSON works in libnftables 1.0.6 (checked: listed back
    # as a map, vmap rules and elements work). The 1.0.6 JSON bugs (docs/networking.md,
    # "libnftables 1.0.6 JSON quirks") hit maps whose *data* is a concatenation, which must be
    # declared in nft text syntax instead (firewall/ports.py does).
    return {"add": {"map": {**_T, "name": name, "type": "ifname", "map": "verdict"}}}


def _rule(chain: str, expr: list, comment: str | None = None) -> dict:
    rule = {**_T, "chain": chain, "expr": expr}
    if comment is not None:
        rule["comment"] = comment
    return {"add": {"rule": rule}}


def _element(verb: str, map_name: str, bridge: str, chain: str) -> dict:
    return {verb: {"element": {**_T, "name": map_name, "elem": [[bridge, {"jump": {"target": chain}}]]}}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


_ACCEPT = {"accept": None}
_DROP = {"drop": None}
_ESTABLISHED = _match({"ct": {"key": "state"}}, ["established", "related"], "in")
_DNATED = _match({"ct": {"key": "status"}}, ["dnat"], "in")


# -- batches --------------------------------------------------------------------------------


def base_batch() -> list[dict]:
    """Table, maps and base chains, their dispatch rules rebuilt: the same result every time."""
    return [
        _table(),
        *(_map(m) for m in MAPS),
        _chain("add", "forward", type="filter", hook="forward", prio=0, policy="accept"),
        _chain("add", "postrouting", type="nat", hook="postrouting", prio=100, policy="accept"),
        _chain("flush", "forward"),
        _chain("flush", "postrouting"),
        _rule("forward", [{"vmap": {"key": _meta("oifname"), "data": "@fwd_in"}}], f"{DISPATCH}:into-bridge"),
        _rule("forward", [{"vmap": {"key": _meta("iifname"), "data": "@fwd_out"}}], f"{DISPATCH}:out-of-bridge"),
        _rule("postrouting", [{"vmap": {"key": _meta("iifname"), "data": "@nat_out"}}], f"{DISPATCH}:nat-from-bridge"),
        # keyed by the outgoing bridge: with br_netfilter a bridged (hairpinned) packet has
        # no input interface in postrouting, so the iifname map cannot catch it
        _rule("postrouting", [{"vmap": {"key": _meta("oifname"), "data": "@nat_in"}}], f"{DISPATCH}:nat-into-bridge"),
    ]


def setup_network_batch(net) -> list[dict]:
    """Everything the network needs, in one transaction; applying it again changes nothing.

    nft: see render(setup_network_batch(net)), or tests/unit/golden/setup_minirt.nft.
    """
    addr, plen = check(net)
    chains = chains_of(net)
    own = mark(net)
    br = net.bridge
    batch = base_batch()
    for chain in chains.values():
        batch += [_chain("add", chain), _chain("flush", chain)]
    batch.append(_rule(chains["fwd_in"], [_ESTABLISHED, _ACCEPT], own))
    if net.icc:
        batch.append(_rule(chains["fwd_in"], [_match(_meta("iifname"), br), _ACCEPT], own))
    batch += [
        # published ports (firewall/ports.py) arrive DNATed: accepted ahead of the drop
        _rule(chains["fwd_in"], [_DNATED, _ACCEPT], f"{own}:published"),
    ]
    if not net.icc:
        # Docker's enable_icc=false (`-i br -o br -j DROP`): containers of this network do not
        # reach each other, except through a published port (DNATed, accepted just above). A
        # frame between two ports of one bridge reaches this hook only through br_netfilter
        # (net.bridge.bridge-nf-call-iptables, which network.py turns on for such a network).
        batch.append(_rule(chains["fwd_in"], [_match(_meta("iifname"), br), _DROP], f"{own}:icc"))
    batch += [
        _rule(chains["fwd_in"], [_DROP], f"{own}:unpublished"),
        _rule(chains["fwd_out"], [_ESTABLISHED, _ACCEPT], own),
    ]
    if net.internal:
        batch.append(_rule(chains["fwd_out"], [_match(_meta("oifname"), br, "!="), _DROP], own))
    else:
        batch.append(_rule(chains["fwd_out"], [_ACCEPT], own))
    if not net.internal and getattr(net, "masquerade", True):  # CNI's ipMasq: false leaves it out
        saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
        subnet = {"prefix": {"addr": addr, "len": plen}}
        masq = [_match(_meta("oifname"), br, "!="), _match(saddr, subnet), {"masquerade": None}]
        batch.append(_rule(chains["nat_out"], masq, own))
        if getattr(net, "subnet6", None):
            batch.append(_rule(chains["nat_out"], _masquerade6(net), own))
    # hairpin: a container reaching a published port of its own network through a host
    # address must see the reply come back the same way (Docker's "MASQ TO OWN PORT"): only a
    # source inside the subnet; a client from anywhere else keeps its own address, as with
    # Docker's DNAT (the reply goes out through the gateway, where conntrack undoes the DNAT)
    if not net.internal:  # an internal network publishes nothing, and masquerades nothing
        saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
        batch.append(_rule(chains["nat_in"], [_match(saddr, {"prefix": {"addr": addr, "len": plen}}), _DNATED,
                                              {"masquerade": None}], f"{own}:hairpin"))  # fmt: skip
        if getattr(net, "subnet6", None):
            addr6, plen6 = _parse_subnet6(net)
            saddr6 = {"payload": {"protocol": "ip6", "field": "saddr"}}
            batch.append(_rule(chains["nat_in"], [_match(saddr6, {"prefix": {"addr": addr6, "len": plen6}}), _DNATED,
                                                  {"masquerade": None}], f"{own}:hairpin"))  # fmt: skip
    batch += [_element("add", m, br, chain) for m, chain in chains.items()]
    return batch


def teardown_network_batch(net) -> list[dict]:
    """Remove the network's elements and chains, keep the table and base chains; a network
    already gone is fine, an element owned by another network makes the batch fail."""
    check(net)
    chains = chains_of(net)
    batch = [_table(), *(_map(m) for m in MAPS)]
    batch += [_chain("add", chain) for chain in chains.values()]
    batch += [_element("add", m, net.bridge, chain) for m, chain in chains.items()]  # declare, value-checked
    batch += [_element("delete", m, net.bridge, chain) for m, chain in chains.items()]
    for chain in chains.values():  # after the elements: a chain still jumped to cannot be deleted
        batch += [_chain("flush", chain), _chain("delete", chain)]
    return batch


def delete_table_batch() -> list[dict]:
    """Remove the whole `inet minirt` table (tests, gc of the last network); never fails."""
    return [_table(), _table("delete")]
