"""resolv.conf for bridge containers (pure).

Docker copies the host's resolv.conf but drops loopback nameservers (127.0.0.0/8, ::1),
which cannot work from another network namespace (systemd-resolved's 127.0.0.53 is the
classic case); if none is left it falls back to public resolvers (libnetwork/resolvconf).
minirt does the same except for the fallback: we never point containers at a public resolver
nobody chose. With no usable nameserver the file says so in a comment and the user passes
--dns; `search` and `options` lines are kept.

On a network with name resolution (user-defined networks) the nameserver is the network's own
responder instead: network_resolv_conf().
"""

from minirt.net import inet


def is_loopback(addr: str) -> bool:
    """127.0.0.0/8 or ::1, however spelt; False for anything that is not an address."""
    try:
        version, n = inet.parse(addr)
    except ValueError:
        return False
    return n >> 24 == 127 if version == inet.V4 else n == 1


def container_resolv_conf(host_text: str, dns: list[str]) -> str:
    lines_out = []
    nameservers = []
    dropped = []
    for line in host_text.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            (dropped if is_loopback(fields[1]) else nameservers).append(fields[1])
            continue
        if fields and fields[0] in ("search", "domain", "options"):
            lines_out.append(line.strip())
    if dns:
        nameservers = list(dns)
        dropped = []
    out = [f"nameserver {ns}" for ns in nameservers]
    if not nameservers:
        out.append(
            "# minirt: the host's nameservers (" + (", ".join(dropped) or "none") + ") are not reachable from "
            "a container; pass --dns ADDRESS"
        )
    return "\n".join(out + lines_out) + "\n"


def network_resolv_conf(host_text: str, gateway: str) -> str:
    """resolv.conf on a network with name resolution: the network's responder on the gateway
    (net/dnsd.py; Docker writes `nameserver 127.0.0.11`), the host's `search` lines, and its
    `options` plus `ndots:0` unless the host sets ndots (Docker's rule: a single-label name
    such as `db` goes to the responder as it is, before any search domain is tried)."""
    search = []
    options = []
    for line in host_text.splitlines():
        fields = line.split()
        if fields[:1] in (["search"], ["domain"]):
            search.append(line.strip())
        elif fields[:1] == ["options"]:
            options += fields[1:]
    if not any(o.startswith("ndots:") for o in options):
        options.append("ndots:0")
    return "\n".join([f"nameserver {gateway}", *search, "options " + " ".join(options)]) + "\n"
