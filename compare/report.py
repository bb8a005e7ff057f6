"""Pure logic of `make compare`: normalising what each runtime printed, the table of
intended differences, the Markdown table and the exit status. No root, no docker: unit-tested
in tests/unit/test_compare_format.py."""

import ipaddress
import re

# scenario -> one line: why minirt differs from Docker 20.10 on purpose (README, "Where minirt
# differs from Docker"), or what Docker 28+ does where 20.10 is the odd one out
# (../shared/reference/peers-and-rulesets.md).
INTENDED = {
    "mtu": "MTU follows the uplink (1400 here); Docker uses 1500 whatever the uplink",
    "no_new_privs": "no_new_privs on by default (Docker: --security-opt no-new-privileges)",
    "seccomp": "no seccomp filter yet (Docker 20.10 applies its default profile, mode 2)",
    "hairpin source": "no proxy process: DNAT + masquerade, the server sees the host address, not the gateway",
    "-p 127.0.0.1 from host": "no proxy process: nft DNAT in the output hook serves 127.0.0.1",
    "resolv.conf user net": "DNS server address: minirt's responder listens on the network gateway, Docker uses 127.0.0.11",
}
# rows where Docker 20.10 (measured) and Docker 28+ differ: what newer Docker does.
NEWER_DOCKER = {
    "-p 127.0.0.1 bound from wan": "28.0+: raw PREROUTING 'DROP REMOTE LOOPBACK' also drops LAN packets routed to 127.0.0.1 (20.10 accepts them)",
    "wan to container IP": "28.0+: raw PREROUTING 'DROP DIRECT ACCESS' drops it unless gateway mode nat-unprotected (20.10 accepts published ports)",
    "-p 127.0.0.1 from host": "28+: same proxy by default; with --userland-proxy=false DNAT in nat-OUTPUT + route_localnet, as minirt",
}


def norm_addrs(text: str) -> str:
    """`ip -4 -o addr` lines -> 'lo 127.0.0.1/8; eth0 .0.2/16' (the subnet itself is
    allocated differently by each runtime: keep the host part and the prefix)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[2] != "inet":
            continue
        dev = f[1].split("@")[0]
        out.append(f"{dev} {host_part(f[3])}")
    return "; ".join(out) or "(none)"


def host_part(cidr: str) -> str:
    """'172.17.0.2/16' -> 'x.x.0.2/16'; loopback kept as it is."""
    iface = ipaddress.ip_interface(cidr)
    if iface.ip.is_loopback:
        return cidr
    n = iface.network.prefixlen
    host = int(iface.ip) & ((1 << (32 - n)) - 1)
    return f"net+{host}/{n}"


def norm_routes(text: str, gateways: dict[str, str] | None = None) -> str:
    """`ip -4 route` -> 'default via net+1; net/16 dev eth0 src net+2'."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "default":
            via = f[f.index("via") + 1] if "via" in f else "-"
            out.append(f"default via .{via.split('.')[-1]} dev {f[f.index('dev') + 1]}")
        else:
            net = ipaddress.ip_network(f[0], strict=False)
            out.append(f"/{net.prefixlen} dev {f[f.index('dev') + 1]}" + (" src ." + f[f.index('src') + 1].split('.')[-1] if "src" in f else ""))
    return "; ".join(out) or "(none)"


def norm_resolv(text: str) -> str:
    keep = [" ".join(line.split()) for line in text.splitlines() if line.split() and line.split()[0] in ("nameserver", "search", "options")]
    return "; ".join(keep) or "(empty)"


def norm_hosts(text: str, hostname: str, ip: str | None) -> str:
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        f = ["<ip>" if ip and x == ip else "<hostname>" if x == hostname else x for x in f]
        out.append(" ".join(f))
    return "; ".join(out)


def norm_hostname(text: str) -> str:
    h = text.strip()
    return "<12 hex id>" if re.fullmatch(r"[0-9a-f]{12}", h) else h


def status_fields(text: str, keys: tuple[str, ...]) -> str:
    """Lines 'Key:\\tvalue' of /proc/self/status -> 'Key=value ...' for the given keys."""
    got = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in keys:
            got[k] = v.strip()
    return " ".join(f"{k}={got.get(k, '?')}" for k in keys)


def verdict(name: str, docker: str, minirt: str) -> tuple[str, str]:
    """-> (verdict, note): 'same', 'intended' (explained), or 'DIFFERENT' (unexplained)."""
    newer = NEWER_DOCKER.get(name, "")
    if docker == minirt:
        return "same", (f"Docker {newer}" if newer else "")
    if name in INTENDED:
        note = INTENDED[name]
        return "intended", note + (f"; Docker {newer}" if newer else "")
    if newer:
        return "DIFFERENT", f"Docker {newer}"
    return "DIFFERENT", ""


def cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def table(rows: list[tuple[str, str, str]]) -> tuple[str, int]:
    """rows of (scenario, docker, minirt) -> (Markdown, exit status): 1 iff a row differs
    without an explanation or a scenario crashed (its result starts with 'ERROR')."""
    lines = ["| scenario | Docker 20.10 | minirt | verdict | why / newer Docker |", "|---|---|---|---|---|"]
    bad = 0
    for name, d, m in rows:
        v, note = verdict(name, d, m)
        if v == "DIFFERENT" or d.startswith("ERROR") or m.startswith("ERROR"):
            bad += 1
            v = "DIFFERENT" if v != "same" else "ERROR"
        lines.append(f"| {cell(name)} | `{cell(d)}` | `{cell(m)}` | {v} | {cell(note)} |")
    lines.append("")
    lines.append(f"{len(rows)} scenarios, {sum(1 for n, d, m in rows if d == m)} same, {bad} unexplained")
    return "\n".join(lines) + "\n", (1 if bad else 0)
