"""cgroups: every container's own cgroup, its limits and its accounting.

layout.py finds the mode and the paths, limits.py turns flags into file values, v1.py and v2.py
are the two drivers (the same methods), fsutil.py reads and writes the files. A record keeps
the driver's to_dict(); driver() turns it back into a driver.
"""

import os


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


def warm_up_attach() -> None:
    """Start no-op moves of this process into the cgroup it is already in, in a thread, every
    2 ms until warm_up_done(), so that moving the container's init (or an exec'd process) into
    its cgroup does not wait.

    Every write to cgroup.procs takes the global cgroup_threadgroup_rwsem for writing
    (kernel/cgroup/cgroup.c, cgroup_attach_lock), whose percpu_down_write() waits for an RCU
    grace period unless the previous writer left less than one grace period ago (rcu_sync):
    5-35 ms on these VMs. The thread pays that wait once, while our own imports and config
    parsing go on, and its repeated writes keep the window open however long `run -p`'s setup
    takes before the real move (a single write opened a window that -p's port and helper setup
    outlasted: 7-14 ms of wait at the move). The thread is C (minirt._syscalls): a Python one
    would wait for the GIL the importing main thread holds. The kernel's `favordynmods` mount
    option removes the wait altogether; it is the host's choice, not ours. Nothing changes on
    the host: the process stays where it is."""
    from minirt._syscalls import self_move_async

    try:
        with open("/proc/self/cgroup") as f:
            own = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    except (OSError, ValueError):
        return
    v2 = own.get("", "/").rstrip("/")
    for path in (f"/sys/fs/cgroup/unified{v2}", f"/sys/fs/cgroup{v2}", f"/sys/fs/cgroup/pids{own.get('pids', '')}"):
        if os.path.exists(f"{path}/cgroup.procs"):
            self_move_async(f"{path}/cgroup.procs")  # "0" in it: the writer itself (cgroup-v2.rst)
            return


def warm_up_done() -> None:
    """The move warm_up_attach() prepared has been made: the thread ends at its next round."""
    from minirt._syscalls import self_move_stop

    self_move_stop()
