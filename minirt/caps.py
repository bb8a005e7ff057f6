"""Capabilities: Docker's default set, --cap-add/--cap-drop/--privileged resolution, and applying it.

resolve() is pure (unit-tested); apply() runs in the container init just before exec and uses
python-prctl's C interface, `_prctl`: its `prctl` wrapper module builds a property per
capability for three sets at import (~2 ms, paid by every `run` and `exec`), and apply() needs
only the calls under it. Capability numbers are the kernel's (include/uapi/linux/capability.h).
"""

import os

from minirt.errors import ConfigError

CAPS = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)  # fmt: skip
CAP_NUMBER = {name: i for i, name in enumerate(CAPS)}

# moby oci/caps/defaults.go: DefaultCapabilities(); = 0x00000000a80425fb in /proc/self/status.
DOCKER_DEFAULT = frozenset(
    {"chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
     "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap"}
)  # fmt: skip


def parse_name(name: str) -> str:
    """'NET_ADMIN', 'cap_net_admin', 'ALL' -> 'net_admin' / 'all' (Docker accepts both spellings)."""
    n = name.strip().lower().removeprefix("cap_")
    if n != "all" and n not in CAP_NUMBER:
        raise ConfigError(f"capability {name!r}: unknown capability")
    return n


def resolve(add: list[str], drop: list[str], privileged: bool, supported: frozenset[str]) -> frozenset[str]:
    """The set the container gets: Docker's rules (moby oci/caps TweakCapabilities).

    `supported` is what this kernel and our own bounding set allow; asking for more is an
    error rather than a silent no-op, as in Docker ("unknown capability" / not permitted).
    """
    if privileged:
        return supported
    adds = {parse_name(c) for c in add}
    drops = {parse_name(c) for c in drop}
    # The order of moby's TweakCapabilities: "add ALL" wins (everything but the named drops),
    # then "drop ALL" (only the named adds), else default - drops + adds.
    if "all" in adds:
        caps = set(supported) - drops
    elif "all" in drops:
        caps = adds - {"all"}
    else:
        caps = (set(DOCKER_DEFAULT) - drops) | adds
    missing = caps - supported
    if missing:
        raise ConfigError(f"capability {sorted(missing)[0].upper()}: not available on this host")
    return frozenset(caps)


def mask(caps: frozenset[str]) -> int:
    return sum(1 << CAP_NUMBER[c] for c in caps)


_supported: frozenset[str] | None = None


def supported_here() -> frozenset[str]:
    """Capabilities the kernel knows (cap_last_cap) that are still in our own bounding set.

    Memoized: the parent computes it while resolving --cap-add/--cap-drop, and the forked
    container init reuses the answer instead of reading /proc again on the start-up path."""
    global _supported
    if _supported is None:
        _supported = _read_supported()
    return _supported


def _read_supported() -> frozenset[str]:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    bnd = _status_field("CapBnd")
    return frozenset(c for c in CAPS[: last + 1] if bnd >> CAP_NUMBER[c] & 1)


def _status_field(name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1], 16)
    raise OSError(f"/proc/self/status has no {name}")


def apply(caps: frozenset[str], no_new_privs: bool, user=None) -> None:
    """Bounding, then the identity, then effective, then permitted; inheritable emptied (ambient
    follows).

    After execve as uid 0 the kernel gives permitted = effective = bounding (capabilities(7),
    "root" rules), capped by the old permitted set when no_new_privs is on; so the bounding
    set is what decides, and permitted must still hold the set at exec time. Effective is
    lowered before permitted: the other order fails with EPERM (checked with python-prctl 1.8.1,
    docs/performance.md, "Measured costs"). Ambient capabilities must be
    in both permitted and inheritable, so emptying inheritable clears them (capabilities(7)).

    `user` (users.ExecUser) is taken on after the bounding set is cut and before effective is
    lowered, while CAP_SETUID/CAP_SETGID are still effective whatever --cap-drop said (runc
    switches identity before it drops capabilities, too). setgroups, setgid, setuid: in that
    order, since each needs the privilege the next one gives up. A setuid from 0 to a non-zero
    uid clears permitted and effective (capabilities(7), "Effect of user ID changes", no
    SECBIT_KEEP_CAPS), and a non-root execve computes them from file capabilities only: a
    --user container ends with CapEff/CapPrm 0 and CapBnd intact, as in Docker.
    """
    import _prctl

    keep = {CAP_NUMBER[c] for c in caps}
    have = supported_here()
    for cap in sorted(CAP_NUMBER[c] for c in have if CAP_NUMBER[c] not in keep):
        _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)  # prctl.capbset.drop
    everything = range(_prctl.CAP_LAST_CAP + 1)  # the caps python-prctl knows, as its limit() uses
    # set_caps(effective on, permitted on, inheritable on, effective off, permitted off,
    # inheritable off): one capset(2) each, as prctl.cap_<set>.limit() makes them
    _prctl.set_caps([], [], [], [], [], list(everything))  # prctl.cap_inheritable.limit()
    if user is not None:
        os.setgroups(user.sgids)
        os.setgid(user.gid)
        os.setuid(user.uid)
    drop = [c for c in everything if c not in keep]
    _prctl.set_caps([], [], [], drop, [], [])  # prctl.cap_effective.limit(*keep)
    _prctl.set_caps([], [], [], [], drop, [])  # prctl.cap_permitted.limit(*keep)
    if no_new_privs:
        _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, 1)  # prctl.set_no_new_privs(1)
