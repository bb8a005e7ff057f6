"""`minirt doctor`: what this host needs for minirt, and what in it will fight minirt.

Runs in: the host network namespace; reads only (nft -j through libnftables, /proc/sys).

The trap it looks for first: in nftables an `accept` ends only its own base chain. Another
table with a base chain on the same hook (forward, or postrouting) whose policy is drop, or
that drops at its end (iptables-nft's `FORWARD DROP` left by an iptables Docker, ufw,
firewalld), still drops what minirt's table accepted (docs/networking.md, "Coexistence with
other firewalls"). Only chains whose policy is drop are found; a drop rule at a chain's end is not
detected yet.
"""

import os


def check() -> list[tuple[str, str, str]]:
    """[(status, what, advice)] with status "ok", "warn" or "fail"."""
    out = []
    features = [
        ("network namespaces", os.path.exists("/proc/self/ns/net")),
        ("overlayfs", _fs_known("overlay")),
        ("IPv4 forwarding", os.path.exists("/proc/sys/net/ipv4/ip_forward")),
        ("capabilities (cap_last_cap)", os.path.exists("/proc/sys/kernel/cap_last_cap")),
    ]
    for what, ok in features:
        out.append(("ok" if ok else "fail", what, "" if ok else f"this kernel lacks {what}"))
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        fwd = f.read().strip()
    out.append(("ok" if fwd == "1" else "warn", f"net.ipv4.ip_forward = {fwd}",
                "" if fwd == "1" else "minirt enables it when it creates its first bridge network"))  # fmt: skip
    out.append(_ipv6_forwarding())
    out.append(_cgroups())
    try:
        ruleset = _ruleset()
    except Exception as e:  # noqa: BLE001 - report, do not crash the doctor
        out.append(("fail", "nftables", f"cannot list the ruleset: {e}"))
        return out
    out.append(("ok", "nftables", ""))
    for family, table, chain, hook, policy in _foreign_drop_chains(ruleset):
        out.append((
            "warn",
            f"table {family} {table}: chain {chain} (hook {hook}) has policy {policy}",
            f"it drops container traffic that minirt's table accepts (an accept only ends its own chain); "
            f"allow the bridges there, e.g. `nft insert rule {family} {table} {chain} iifname \"minirt0\" accept` "
            f"and `... oifname \"minirt0\" accept`, or set the policy to accept",
        ))  # fmt: skip
    return out


def _ipv6_forwarding() -> tuple[str, str, str]:
    """Dual-stack networks (network create --ipv6) need IPv6 and its forwarding; minirt turns
    forwarding on itself, so an off value is only worth a mention."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/forwarding") as f:
            fwd6 = f.read().strip()
    except FileNotFoundError:
        return ("warn", "IPv6", "this kernel has IPv6 disabled: `minirt network create --ipv6` will fail")
    return ("ok", f"net.ipv6.conf.all.forwarding = {fwd6}",
            "" if fwd6 == "1" else "minirt enables it when it creates its first --ipv6 network")  # fmt: skip


def _cgroups() -> tuple[str, str, str]:
    """The cgroup mode and whether the controllers the resource flags write are there
    (docs/resources.md): memory, cpu and pids on v1 hierarchies, or in cgroup2's controllers."""
    from minirt.cgroups import layout

    try:
        mode = layout.mode()
        if mode == "unified":
            with open(f"{layout.ROOT}/cgroup.controllers") as f:
                have = set(f.read().split())
        else:
            have = set(layout.v1_mounts())
    except OSError as e:
        return ("fail", "cgroups", f"cannot read the cgroup hierarchies: {e}")
    version = "v2" if mode == "unified" else "v1"
    what = f"cgroups: {mode} ({version} limits; {', '.join(sorted(have)) or 'no controllers'})"
    missing = [c for c in ("memory", "cpu", "pids") if c not in have]
    if missing:
        return ("warn", what, f"no {', '.join(missing)} controller: the flags that need it are refused")
    return ("ok", what, "")


def _fs_known(name: str) -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == name for line in f if line.strip())


def _ruleset() -> list[dict]:
    import json

    import nftables

    ctx = nftables.Nftables()
    ctx.set_json_output(True)
    rc, out, err = ctx.cmd("list ruleset")
    if rc != 0:
        raise OSError(err.strip())
    return json.loads(out)["nftables"] if out.strip() else []


def _foreign_drop_chains(ruleset: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """Base chains of other tables on the hooks minirt uses, with a drop policy (pure)."""
    found = []
    for obj in ruleset:
        c = obj.get("chain")
        if not c or c.get("table") == "minirt" or "hook" not in c:
            continue
        if c["hook"] in ("forward", "postrouting") and c.get("policy") == "drop":
            found.append((c["family"], c["table"], c["name"], c["hook"], c["policy"]))
    return found
