"""cgroups: every container's own cgroup, its limits and its accounting.

layout.py finds the mode and the paths, limits.py turns flags into file values, v1.py and v2.py
are the two drivers (the same methods), fsutil.py reads and writes the files. A record keeps
the driver's to_dict(); of_record() turns it back into a driver.
"""


def driver(d: dict | None, root: str = "/sys/fs/cgroup"):
    """The driver for a record's or teardown step's {"version", "dirs"}, or None."""
    if not d or not d.get("dirs"):
        return None
    if d.get("version") == 2:
        from minirt.cgroups.v2 import CgroupV2

        return CgroupV2(d["dirs"], d.get("root") or root)
    from minirt.cgroups.v1 import CgroupV1

    return CgroupV1(d["dirs"])


def for_container(cid: str, parent: str, cg_mode: str | None = None, root: str = "/sys/fs/cgroup"):
    """A new container's driver (nothing created yet)."""
    from minirt.cgroups import layout

    cg_mode = cg_mode or layout.mode(root)
    dirs = layout.container_dirs(cid, parent, cg_mode, root)
    return driver({"version": 2 if cg_mode == "unified" else 1, "dirs": dirs, "root": root})
