"""Published ports in nftables: two DNAT maps per address family, so the rule count stays flat as ports grow.

    map ports_ip  { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }   -p IP:H:C
    map ports_any { type inet_proto . inet_service : ipv4_addr . inet_service; }               -p H:C
    chain prerouting { type nat hook prerouting priority -100;
                       iifname != "lo" ip daddr 127.0.0.0/8 drop
                       fib daddr type local jump ports }
    chain output     { type nat hook output priority -100;     fib daddr type local jump ports }
    chain ports      { dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
                       dnat ip to meta l4proto . th dport map @ports_any }

Every rule carries a comment (`minirt:published...`, `minirt:remote-loopback`) that names its
purpose in `nft list` and in `minirt trace`'s output.

A lookup that misses ends the rule without a verdict, so a port bound to one address only
matches that address. A neighbour can still route a packet for 127.0.0.1 to the host (the
moby#45610 attack): it would be DNATed before the kernel's martian check ever sees it, so it is
dropped first, as Docker 28 does ("DROP REMOTE LOOPBACK" in raw PREROUTING); 127.0.0.1-bound
ports are unreachable from other hosts. The output hook makes the host's own connections (to 127.0.0.1 or its
own addresses) work without Docker's userland proxy; that needs route_localnet on the bridge
and a masquerade of 127.0.0.0/8 sources (and of hairpinned traffic), which the network's own
chains carry (ruleset.py). DNATed traffic is accepted by the network's inbound chain
(`ct status dnat accept`) ahead of its "unpublished" drop.

libnftables 1.0.6 mis-creates maps with concatenated data when they are declared in JSON
(docs/networking.md, "libnftables 1.0.6 JSON quirks": rc 0, a plain set; a DNAT rule on it
segfaults), so everything here is nft text through the same context, one transaction per
change: declare (idempotent), rebuild the static rules of prerouting, output, ports and
ports_masq (and their IPv6 twins), add or delete elements.
"""

from minirt import explain

DECLARE = """add table inet minirt
add map inet minirt ports_ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
add map inet minirt ports_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
add chain inet minirt ports
add chain inet minirt prerouting { type nat hook prerouting priority -100; policy accept; }
add chain inet minirt output { type nat hook output priority -100; policy accept; }
add chain inet minirt ports_masq { type nat hook postrouting priority 100; policy accept; }
flush chain inet minirt ports_masq
add rule inet minirt ports_masq ip saddr 127.0.0.0/8 ct status dnat masquerade comment "minirt:published:from-loopback"
flush chain inet minirt ports
flush chain inet minirt prerouting
flush chain inet minirt output
add rule inet minirt prerouting iifname != "lo" ip daddr 127.0.0.0/8 drop comment "minirt:remote-loopback"
add rule inet minirt prerouting fib daddr type local jump ports comment "minirt:published"
add rule inet minirt output fib daddr type local jump ports comment "minirt:published:from-host"
add rule inet minirt ports dnat ip to ip daddr . meta l4proto . th dport map @ports_ip comment "minirt:published:ip-bound"
add rule inet minirt ports dnat ip to meta l4proto . th dport map @ports_any comment "minirt:published:any-address\""""

# IPv6 (dual-stack networks only; a v4-only publish sends exactly DECLARE above). Own base
# chains, so the v4 script never flushes away the v6 dispatch and vice versa. ::1 is left out:
# the kernel never routes a packet with a loopback source off `lo`, and IPv6 has no
# route_localnet, so [::1]:port cannot be DNATed without a proxy (Docker's docker-proxy
# listens there); connections to it find the reservation socket and are refused.
DECLARE6 = """add table inet minirt
add map inet minirt ports6_ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
add map inet minirt ports6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }
add chain inet minirt ports6
add chain inet minirt prerouting6 { type nat hook prerouting priority -100; policy accept; }
add chain inet minirt output6 { type nat hook output priority -100; policy accept; }
flush chain inet minirt ports6
flush chain inet minirt prerouting6
flush chain inet minirt output6
add rule inet minirt prerouting6 fib daddr type local jump ports6 comment "minirt:published"
add rule inet minirt output6 ip6 daddr != ::1 fib daddr type local jump ports6 comment "minirt:published:from-host"
add rule inet minirt ports6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip comment "minirt:published:ip-bound"
add rule inet minirt ports6 dnat ip6 to meta l4proto . th dport map @ports6_any comment "minirt:published:any-address\""""


def _element(m, address: str) -> tuple[str, str, str]:
    if m.host_ip == "0.0.0.0":
        return "ports_any", f"{m.proto} . {m.host_port}", f"{address} . {m.container_port}"
    return "ports_ip", f"{m.host_ip} . {m.proto} . {m.host_port}", f"{address} . {m.container_port}"


def elements(mappings, address: str, address6: str | None = None) -> list[tuple[str, str, str]]:
    """(map, key, value) of each mapping, exactly as nft takes them: v4 as before; on a
    dual-stack container (address6) a mapping on all addresses is published on the IPv6 ones
    too (Docker: 0.0.0.0 and ::), and one bound to an IPv6 host address goes to ports6_ip only.
    These triples are what a container's teardown plan records (teardown.py)."""
    out = []
    for m in mappings:
        if ":" in m.host_ip:
            if address6:
                key = f"{m.host_ip} . {m.proto} . {m.host_port}"
                out.append(("ports6_ip", key, f"{address6} . {m.container_port}"))
            continue
        out.append(_element(m, address))
        if address6 and m.host_ip == "0.0.0.0":
            out.append(("ports6_any", f"{m.proto} . {m.host_port}", f"{address6} . {m.container_port}"))
    return out


def _declare(elems) -> list[str]:
    return [DECLARE, DECLARE6] if any(name.startswith("ports6") for name, _k, _v in elems) else [DECLARE]


def publish_script(elems) -> str:
    lines = _declare(elems)
    for name, key, value in elems:
        lines.append(f"add element inet minirt {name} {{ {key} : {value} }}")
    return "\n".join(lines)


def unpublish_script(elems) -> str:
    """Declare each element with our value before deleting it: if another container owns the
    key now, the add conflicts (EEXIST) and the transaction changes nothing (moby checks the
    old value before deleting a map element for the same reason). Only the elements: unlike
    publish, nothing of the port machinery is declared (a teardown must not bring back a
    table someone removed; the rules' flush and re-add cost ~0.5 ms of a ~0.7 ms transaction)."""
    lines = []
    for name, key, value in elems:
        lines.append(f"add element inet minirt {name} {{ {key} : {value} }}")
        lines.append(f"delete element inet minirt {name} {{ {key} }}")
    return "\n".join(lines)


def apply(script: str, step: str, helper=None) -> None:
    """One nft transaction: through `helper` (a process with the bindings imported,
    nfthelper.py) when it can, else through this process's own context."""
    begin(script, step, helper)()


def begin(script: str, step: str, helper=None):
    """apply() in two halves: the transaction is handed to the helper now, and the function
    returned waits for its result (FirewallError when refused). Without a helper the
    transaction is made here, before begin() returns. Printed for --explain now."""
    for line in script.splitlines():
        explain.cmd(f"nft '{line}'" if "{" in line or "@" in line else f"nft {line}")
    if helper is not None and helper.send(script):

        def done() -> None:
            result = helper.receive()
            _check(result if result is not None else _own_context(script), step, script)

        return done
    _check(_own_context(script), step, script)
    return _nothing


def _nothing() -> None:
    pass


def _own_context(script: str) -> tuple[int, str, str]:
    from minirt.net.firewall.libnft import context

    return context().cmd(script)


def _check(result: tuple[int, str, str], step: str, script: str) -> None:
    from minirt.errors import FirewallError

    rc, _out, err = result
    if rc != 0:
        first = next((x.strip() for x in err.splitlines() if "Error" in x), err.strip())
        raise FirewallError(f"nft {step}: {first}", script)


def publish(elems, helper=None) -> None:
    begin_publish(elems, helper)()


def begin_publish(elems, helper=None):
    """publish() in two halves (begin()): returns the function that waits for the result."""
    return begin(publish_script(elems), "publish ports", helper) if elems else _nothing


def unpublish(elems, helper=None) -> None:
    """Delete the elements that still map to our values. One transaction; if it is refused
    (some key now maps to another container), each element on its own, so that the keys
    still ours are deleted and the others are left to their new owner."""
    if not elems:
        return
    from minirt.errors import FirewallError

    try:
        apply(unpublish_script(elems), "unpublish ports", helper)
        return
    except FirewallError:
        pass  # some key may be another container's now: one element at a time tells which
    for e in elems:
        try:
            apply(unpublish_script([e]), "unpublish port", helper)
        except FirewallError:
            if not _not_ours_now(e):
                raise


def _not_ours_now(element) -> bool:
    """A value-checked delete was refused: fine when the key maps to another value now (not
    ours to delete), or is in no map at all (its map or the whole table was removed: nothing
    left to unpublish); an error while the kernel still maps it to our value."""
    name, key, value = element
    current = listed().get((name, key))
    if current == value:
        return False
    if current is None:
        explain.cmd(f"# {name} {{ {key} }} is not published (no such element or map): nothing to delete")
    else:
        explain.cmd(f"# {name} {{ {key} }} maps to {current} now, not {value}: not ours, left alone")
    return True


MAPS = ("ports_any", "ports_ip", "ports6_any", "ports6_ip")


def listed() -> dict[tuple[str, str], str]:
    """Every published element in the kernel: {(map, key): value}, keys and values rendered as
    nft takes them ("tcp . 8080", "10.88.0.2 . 80"). Read as JSON (listing is one of the
    things libnftables 1.0.6's JSON gets right; the maps are declared in text, see above)."""
    from minirt.net.firewall.libnft import listing

    rc, out, _err = listing("list table inet minirt", json=True)
    if rc != 0:
        return {}  # no table: nothing is published
    import json

    found = {}
    for obj in json.loads(out).get("nftables", []):
        m = obj.get("map")
        if not m or m.get("name") not in MAPS:
            continue
        for key, value in m.get("elem") or []:
            found[(m["name"], _render(key))] = _render(value)
    return found


def _render(v) -> str:
    if isinstance(v, dict) and "concat" in v:
        return " . ".join(_render(x) for x in v["concat"])
    return str(v)
