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


def ensure(key: str, value: str) -> str | None:
    """Set key=value unless it already holds it (netavark sysctl.rs); returns the old value
    when we changed it, None when nothing was done."""
    old = read(key)
    if old == value:
        return None
    explain.cmd(f"sysctl -w {key}={value}")
    with open(_path(key), "w") as f:
        f.write(value)
    return old
