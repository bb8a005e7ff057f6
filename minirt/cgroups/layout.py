"""Where a container's cgroup lives: the host's cgroup mode, its hierarchies, and the paths.

Runs in: the minirt parent (run, exec, stats, update, rm, gc), host namespaces; only reads.

The mode is detected as runc does (libcontainer/cgroups/utils.go IsCgroup2UnifiedMode and
IsCgroup2HybridMode): statfs(/sys/fs/cgroup) is CGROUP2_SUPER_MAGIC -> "unified" (v2 only);
else statfs(/sys/fs/cgroup/unified) is -> "hybrid" (v1 controllers, plus a v2 tree that holds
no controller we use, here only hugetlb); else "legacy" (v1 only). Hybrid and legacy limit
through the v1 files; hybrid also gets a cgroup in the v2 tree, as runc's fs manager does
(its "" path): that one gives `cgroup.kill` and `cgroup.events`.

Paths follow runc's cgroupfs rule (libcontainer/cgroups/fs/paths.go, subsysPath): an absolute
parent (`/minirt`, Docker's `/docker`) is taken from each hierarchy's root; a relative one is
taken from the cgroup the creating process is in, per hierarchy. The test suite relies on the
second: its containers nest under the test process's own cgroups (here the memory hierarchy
puts the shell at /process_api/<id>, the others at /).
"""

import os

ROOT = "/sys/fs/cgroup"
CGROUP2_SUPER_MAGIC = 0x63677270
DEFAULT_PARENT = "/minirt"  # Docker: /docker
# The v1 controllers a container joins (runc joins every mounted one; these are the ones Docker
# documents limits for, plus devices and freezer that issues to come use).
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


_modes: dict[str, str] = {}


def mode(root: str = ROOT) -> str:
    """The host's cgroup mode; asked once per process (run asks for the --cgroupns default and
    again for the paths)."""
    if root not in _modes:
        _modes[root] = _detect(root)
    return _modes[root]


def _detect(root: str) -> str:
    from minirt._syscalls import statfs_type

    if statfs_type(root) == CGROUP2_SUPER_MAGIC:
        return "unified"
    try:
        if statfs_type(root + "/unified") == CGROUP2_SUPER_MAGIC:
            return "hybrid"
    except OSError:
        pass
    return "legacy"


def v1_mounts(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """{controller: mount point} of the v1 hierarchies (co-mounted ones, e.g. `cpu,cpuacct` on
    systemd hosts, map both names to the one mount point)."""
    out: dict[str, str] = {}
    with open(mountinfo) as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if not fields or fields[0] != "cgroup":
                continue
            point = pre.split()[4]
            for opt in fields[2].split(","):
                if opt in V1_CONTROLLERS and opt not in out:
                    out[opt] = point
    return out


def own_cgroups(pid: str = "self") -> dict[str, str]:
    """{controller: path} from /proc/PID/cgroup; the v2 entry (`0::/x`) is under ""."""
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            for c in ctls.split(","):
                out[c] = path
    return out


def _join(point: str, own: str, parent: str, name: str) -> str:
    base = parent if parent.startswith("/") else f"{own.rstrip('/')}/{parent}"
    return os.path.normpath(f"{point}/{base.strip('/')}/{name}")


def container_dirs(cid: str, parent: str, cg_mode: str | None = None, root: str = ROOT) -> dict[str, str]:
    """{key: directory} of the container's cgroup: v1 controller names (and "unified" in
    hybrid mode), or {"": dir} in unified mode. Nothing is created here."""
    cg_mode = cg_mode or mode(root)
    own = own_cgroups()
    if cg_mode == "unified":
        return {"": _join(root, own.get("", "/"), parent, cid)}
    mounts = v1_mounts()
    dirs = {c: _join(p, own.get(c, "/"), parent, cid) for c, p in mounts.items()}
    if cg_mode == "hybrid":
        dirs["unified"] = _join(root + "/unified", own.get("", "/"), parent, cid)
    return dirs


def validate_parent(parent: str) -> str:
    """--cgroup-parent: a cgroup path, never one that climbs out (`..`) or is empty."""
    from minirt.errors import ConfigError

    p = parent.strip()
    if not p or any(part == ".." for part in p.split("/")):
        raise ConfigError(f"invalid cgroup parent {parent!r}: must be a path with no '..'")
    return p


def configured_parent() -> str:
    """The `cgroup_parent` key of $MINIRT_CONFIG, else /minirt."""
    from minirt.config import host_config

    return validate_parent(host_config().get("cgroup_parent") or DEFAULT_PARENT)
