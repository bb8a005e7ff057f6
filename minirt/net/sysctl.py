"""Kernel parameters under /proc/sys: read before write, and say what we changed.

Runs in: the minirt parent, host namespaces (the netns of the process decides which
net.* values are seen: each network namespace has its own net.ipv4.ip_forward).
"""

from minirt import explain


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def _default_for_new_device(key: str) -> str | None:
    """A device's net.ipv{4,6}.conf.DEV.KEY starts as net.ipv{4,6}.conf.default.KEY (the kernel
    copies `default` into a new device's devconf); None for any other missing key."""
    parts = key.split(".")
    if len(parts) == 5 and parts[0] == "net" and parts[2] == "conf":
        try:
            return read(".".join(parts[:3] + ["default", parts[4]]))
        except FileNotFoundError:
            return None
    raise FileNotFoundError(f"/proc/sys/{key.replace('.', '/')}")


def ensure(key: str, value: str) -> str | None:
    """Set key=value unless it already holds it (netavark sysctl.rs); returns the old value
    when we changed it, None when nothing was done. Dry run: the line, no write."""
    try:
        old = read(key)
    except FileNotFoundError:
        if not explain.dry:
            raise
        old = _default_for_new_device(key)  # the device is one the dry run would create
    if old == value:
        return None
    explain.cmd(f"sysctl -w {key}={value}")
    if explain.dry:
        return old
    with open(_path(key), "w") as f:
        f.write(value)
    return old
