"""--sysctl, --ulimit and --device: command-line strings -> validated values, with Docker's messages.

Pure apart from device_info(), which stats the host's node. Each parser follows the Go function
Docker 20.10 uses; pflag wraps their errors as `invalid argument "<value>" for "<flag>" flag: <err>`.
"""

from minirt.errors import ConfigError

# docker/cli opts/opts.go ValidateSysctl: the IPC-namespaced keys by name, net.* and fs.mqueue.*
# by prefix. Everything else is a host-wide knob a container must not turn.
SYSCTL_NAMES = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})  # fmt: skip
SYSCTL_PREFIXES = ("net.", "fs.mqueue.")

# docker/go-units ulimit.go ulimitNameMapping -> RLIMIT_* (asm-generic/resource.h). "as" is
# left out there too ("doesn't seem usable with the way Docker inits a container").
ULIMITS = {
    "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12, "nice": 13,
    "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15, "sigpending": 11, "stack": 3,
}  # fmt: skip
RLIM_INFINITY = (1 << 64) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _flag_error(flag: str, value: str, err: str) -> ConfigError:
    return ConfigError(f'invalid argument "{value}" for "{flag}" flag: {err}')


def parse_sysctl(item: str) -> tuple[str, str]:
    """KEY=VALUE -> (key, value). Go splits on every '=' and keeps the whole item as the value
    it stores, so `net.x=a=b` passes and sets "a=b"."""
    key, eq, value = item.partition("=")
    if not eq:
        raise _flag_error("--sysctl", item, f"sysctl '{item}' is not whitelisted")
    if key in SYSCTL_NAMES or key.startswith(SYSCTL_PREFIXES):
        return key, value
    raise _flag_error("--sysctl", item, f"sysctl '{item}' is not whitelisted")


def sysctls(items: list[str], net: str) -> dict[str, str]:
    """The validated map. net.* needs a network namespace of the container's own: with --net
    host it would change the host's (runc's validator: `sysctl "net.x" not allowed in host network
    namespace`). --net container:X writes X's, which runc allows (the netns is not the host's)."""
    out = {}
    for item in items:
        key, value = parse_sysctl(item)
        if key.startswith("net.") and net == "host":
            raise ConfigError(f'sysctl "{key}" not allowed in host network namespace')
        out[key] = value
    return out


def sysctl_path(key: str) -> str:
    """kernel.shmmax -> kernel/shmmax (relative to /proc/sys), as runc writes it."""
    return key.replace(".", "/")


def _parse_int64(s: str) -> int:
    """Go's strconv.ParseInt(s, 10, 64), with its error text."""
    from minirt.users import atoi

    n = atoi(s)
    if n is None:
        raise ValueError(f'strconv.ParseInt: parsing "{s}": invalid syntax')
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise ValueError(f'strconv.ParseInt: parsing "{s}": value out of range')
    return n


def parse_ulimit(item: str) -> dict:
    """NAME=SOFT[:HARD] -> {"name", "soft", "hard"} (go-units ParseUlimit). -1 is unlimited
    (RLIM_INFINITY once cast to uint64, as runc does); the word "unlimited" is not a number to
    go-units, so Docker refuses it and so do we."""
    try:
        name, eq, limits = item.partition("=")
        if not eq:
            raise ValueError(f"invalid ulimit argument: {item}")
        if name not in ULIMITS:
            raise ValueError(f"invalid ulimit type: {name}")
        vals = limits.split(":")
        if len(vals) > 2:
            raise ValueError(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
        hard = _parse_int64(vals[1]) if len(vals) == 2 else None
        soft = _parse_int64(vals[0])
        if hard is None:
            hard = soft
        if soft > hard:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    except ValueError as e:
        raise _flag_error("--ulimit", item, str(e)) from None
    return {"name": name, "soft": soft, "hard": hard}


def ulimits(items: list[str]) -> list[dict]:
    """Later flags for the same name replace earlier ones (docker/cli UlimitOpt keeps a map)."""
    by_name: dict[str, dict] = {}
    for item in items:
        u = parse_ulimit(item)
        by_name[u["name"]] = u
    return list(by_name.values())


def rlimit_value(n: int) -> int:
    """Go's uint64(int64): a negative limit wraps, so -1 is RLIM_INFINITY."""
    return n & RLIM_INFINITY


def _valid_device_mode(mode: str) -> bool:
    """docker/cli validDeviceMode: a non-empty combination of r, w, m, each at most once."""
    return bool(mode) and all(c in "rwm" for c in mode) and len(set(mode)) == len(mode)


def parse_device(spec: str) -> dict:
    """HOST[:CONTAINER][:PERMS] (docker/cli validateDevice then parseLinuxDevice): the second
    field is the permissions when it reads as rwm, else the container path."""
    import posixpath

    if spec.count(":") > 2 or not spec.split(":")[0]:
        raise _flag_error("--device", spec, f"bad format for path: {spec}")
    parts = spec.split(":")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        if not _valid_device_mode(parts[2]):
            raise _flag_error("--device", spec, f"bad mode specified: {parts[2]}")
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _valid_device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    container = dst or src
    if not container.startswith("/"):
        raise _flag_error("--device", spec, f"{container} is not an absolute path")
    return {"path_on_host": src, "path_in_container": posixpath.normpath(container), "permissions": perms}


def device_info(dev: dict) -> dict:
    """Add the host node's type, major, minor, mode and owner (moby DevicesFromPath ->
    runc's DeviceFromPath). The node in the container copies them, as runc's mknod does."""
    import os
    import stat

    src = dev["path_on_host"]
    prefix = f'error gathering device information while adding custom device "{src}"'
    try:
        st = os.stat(src)
    except OSError as e:
        raise ConfigError(f"{prefix}: {(e.strerror or str(e)).lower()}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        # Docker walks a directory for the nodes under it; minirt takes single nodes only
        raise ConfigError(f"{prefix}: not a device node")
    return dict(dev, type=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)  # fmt: skip
