"""The suite's cgroups, read from the kernel (mountinfo, /proc/self/cgroup), not from minirt.

Every test's containers nest under the test process's own cgroup in each hierarchy (the issue's
rule: a cgroup made at a hierarchy's root escapes the machine's own accounting): the suite owns
`<own cgroup>/mrtest-<session token>/` and each test one directory below it, which minirt gets as
a relative cgroup parent (runc's rule for relative paths) through its $MINIRT_CONFIG file.
"""

import os
import time


def hierarchies() -> dict[str, str]:
    """{key: mount point}: v1 controllers by name, the v2 tree as "unified" (hybrid) or ""."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            point = pre.split()[4]
            if fields[0] == "cgroup2":
                out["unified" if point.endswith("/unified") else ""] = point
            elif fields[0] == "cgroup":
                for opt in fields[2].split(","):
                    if opt in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"):
                        out.setdefault(opt, point)
    return out


def own() -> dict[str, str]:
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            for c in ctls.split(","):
                out[c] = path
    return out


def dirs(rel: str) -> dict[str, str]:
    """The directory of relative cgroup path `rel` under this process's cgroup, per hierarchy."""
    mine = own()
    out = {}
    for key, point in hierarchies().items():
        base = mine.get("" if key == "unified" else key, "/")
        out[key] = os.path.normpath(f"{point}/{base}/{rel}")
    return out


def leftovers(rel: str, timeout: float = 5.0) -> list[str]:
    """Container cgroups still under `rel` (polled: rmdir waits for dying tasks)."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for d in dirs(rel).values():
            try:
                left += [f"{d}/{n}" for n in os.listdir(d) if os.path.isdir(f"{d}/{n}")]
            except FileNotFoundError:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def remove(rel: str) -> None:
    """rmdir `rel` in every hierarchy, deepest first (its leftovers too, killing what runs)."""
    remove_trees(dirs(rel).values())


def remove_trees(tops) -> None:
    """rmdir each cgroup directory in `tops` with everything below it, deepest first, killing
    what still runs there."""
    for d in tops:
        if not os.path.isdir(d):
            continue
        for sub, subdirs, _files in sorted(os.walk(d), key=lambda t: -t[0].count("/")):
            try:
                with open(f"{sub}/cgroup.procs") as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), 9)
                        except ProcessLookupError:
                            pass
            except FileNotFoundError:
                pass
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


def named_hierarchies() -> dict[str, str]:
    """{"name=…": mount point} of named v1 hierarchies (name=systemd): no controller, but runc
    (and so an engine's reference runs) makes its cgroups there too; minirt does not."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields[0] == "cgroup":
                for opt in fields[2].split(","):
                    if opt.startswith("name="):
                        out.setdefault(opt, pre.split()[4])
    return out


def absolute_dirs(path: str) -> dict[str, str]:
    """The directories of absolute cgroup path `path`, per hierarchy, named ones included (an
    engine's --cgroup-parent is one path for every hierarchy, taken from each one's root)."""
    points = {**hierarchies(), **named_hierarchies()}
    return {key: os.path.normpath(f"{point}/{path}") for key, point in points.items()}


def common_own() -> str:
    """This process's deepest own cgroup path, which every hierarchy's own path is an ancestor
    of (here the memory controller's differs from the others' "/"): a single absolute path
    under it is under this process's cgroup in every hierarchy."""
    paths = sorted(set(own().values()), key=len)
    deepest = paths[-1] if paths else "/"
    for p in paths:
        assert deepest == p or deepest.startswith(p.rstrip("/") + "/"), f"own cgroups diverge: {own()}"
    return deepest


def v2_controllers() -> tuple[str, set[str]]:
    """(where the v2 tree is mounted, the controllers it offers), or ("", set()) if none."""
    points = hierarchies()
    point = points.get("") or points.get("unified") or ""
    if not point:
        return "", set()
    with open(f"{point}/cgroup.controllers") as f:
        return point, set(f.read().split())


def unified_with_limits() -> bool:
    """A unified (v2-only) host whose tree offers what minirt limits with: v2 runs for real."""
    point, ctls = v2_controllers()
    return point == "/sys/fs/cgroup" and {"memory", "pids", "cpu"} <= ctls


def summary() -> str:
    """What `make test` says about which cgroup version its real-kernel tests ran."""
    point, ctls = v2_controllers()
    if unified_with_limits():
        return "cgroups: v2 (unified) limits tested on the real kernel; v1 by the fake-tree unit tests"
    offered = ", ".join(sorted(ctls)) or "nothing"
    return ("cgroups: v1 limits tested on the real kernel (" + ("hybrid" if point else "legacy") + "); "
            f"v2 limits by the fake-tree unit tests only: this kernel's cgroup2 offers {offered}")
