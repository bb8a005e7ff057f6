"""The trace chains: `meta nftrace set 1` for the selected packets, before every other table.

Runs in: anywhere (pure: builds nft text; session.py applies it through libnftables).

Two base chains per trace, in minirt's own table, named after the tracing process:

    table inet minirt
      chain trace-<pid>-pre { type filter hook prerouting priority -350; policy accept; }
      chain trace-<pid>-out { type filter hook output priority -350; policy accept; }
        ip saddr 172.17.0.2 meta nftrace set 1 comment "minirt:trace:<pid>:from web"
        ...

Why -350: every base chain on a hook runs in priority order, whatever its table, and the kernel
reports a packet's path only from the chain that set nftrace on. -350 comes before raw (-300,
Docker's and iptables-nft's raw PREROUTING), conntrack (-200), mangle (-150), dstnat (-100)
and filter (0), but after defragmentation (-400), so a fragmented packet is traced once,
reassembled (nft(8), "CHAINS", standard priority names; linux/netfilter_ipv4.h). A table
with a chain below -350 runs before the trace starts: its verdicts on that hook are not shown.
Matching before NAT means selecting what arrives: a published port is matched by its host
port (`fib daddr type local`, the condition under which firewall/ports.py DNATs it).

Text syntax, not JSON: like firewall/ports.py, one script per change through the same
libnftables context, which avoids the 1.0.6 JSON traps entirely (docs/networking.md).
Removal declares each chain before flushing and deleting it (ruleset.py's teardown idiom), so it
cannot fail on a chain already gone; session.py sends it only while the table exists, so it
never re-creates a table someone deleted.
"""

from minirt.net import inet

TABLE = "inet minirt"
PRIORITY = -350
HOOKS = (("pre", "prerouting"), ("out", "output"))


def chain_names(pid: int) -> list[str]:
    return [f"trace-{pid}-{short}" for short, _hook in HOOKS]


def is_trace_chain(name: str) -> bool:
    return name.startswith("trace-") and name.rsplit("-", 1)[-1] in ("pre", "out")


def _chain_decl(pid: int, short: str, hook: str) -> str:
    return f"add chain {TABLE} trace-{pid}-{short} {{ type filter hook {hook} priority {PRIORITY}; policy accept; }}"


def _family(addr: str) -> str:
    return "ip6" if inet.version(addr.split("/")[0]) == inet.V6 else "ip"


def _str(s: str) -> str:
    if '"' in s or "\n" in s or len(s) > 128:
        raise ValueError(f"trace: {s!r} cannot be an nft string")
    return f'"{s}"'


def match_text(m, short: str) -> str:
    """The match part of one rule (short: "pre" for prerouting, "out" for output)."""
    if m.kind in ("saddr", "daddr"):
        return f"{_family(m.value)} {m.kind} {m.value}"
    if m.kind == "port":
        ip, proto, port = m.value
        where = f"{_family(ip)} daddr {ip}" if ip else "fib daddr type local"
        return f"{where} meta l4proto {proto} th dport {port}"
    if m.kind == "reply":
        addr, proto, port = m.value
        return f"{_family(addr)} saddr {addr} meta l4proto {proto} th sport {port}"
    raise ValueError(f"trace: unknown match {m!r}")


def install_script(pid: int, matches) -> str:
    """One transaction: the table (idempotent), both chains, a rule per match and hook."""
    lines = [f"add table {TABLE}"]
    for short, hook in HOOKS:
        lines.append(_chain_decl(pid, short, hook))
        for m in matches:
            comment = _str(f"minirt:trace:{pid}:{m.why}"[:128])
            lines.append(f"add rule {TABLE} trace-{pid}-{short} {match_text(m, short)} meta nftrace set 1 "
                         f"comment {comment}")  # fmt: skip
    return "\n".join(lines)


def remove_script(pid: int) -> str:
    """Declare, flush and delete both chains: one transaction, a chain already gone is fine."""
    lines = []
    for short, hook in HOOKS:
        lines += [_chain_decl(pid, short, hook), f"flush chain {TABLE} trace-{pid}-{short}",
                  f"delete chain {TABLE} trace-{pid}-{short}"]  # fmt: skip
    return "\n".join(lines)
