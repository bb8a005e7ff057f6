"""A container's cgroup on a unified (v2) host: one directory.

Runs in: the minirt parent and the commands that look at or change a container's cgroup.

Files per flag are runc's (libcontainer/cgroups/fs2/*.go), listed in limits.py. What v2 needs
beyond v1: a cgroup only has the controllers its parent lists in cgroup.subtree_control, so
every level from the hierarchy's root down enables them (runc fs2/create.go CreateCgroupPath).
The "no internal processes" rule means such a parent may hold no process itself: Docker's
parent is /docker, ours /minirt, both empty of processes. OOM kills are `oom_kill` in
memory.events; cgroup.kill (5.14+) kills the whole subtree in one write.
"""

import os

from minirt.cgroups import fsutil

CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


class CgroupV2:
    version = 2

    def __init__(self, dirs: dict[str, str], root: str = "/sys/fs/cgroup"):
        self.dirs = dirs
        self.dir = dirs[""]
        self.root = root

    def to_dict(self) -> dict:
        return {"version": 2, "dirs": self.dirs, "root": self.root}

    def create(self) -> None:
        rel = os.path.relpath(self.dir, self.root)
        d = self.root
        for part in rel.split("/"):
            fsutil.enable_controllers(d, CONTROLLERS)
            d = f"{d}/{part}"
            if not fsutil.isdir(d):
                fsutil.mkdirs(d)

    def apply(self, writes: list[tuple[str, str]]) -> None:
        for name, value in writes:
            fsutil.write(f"{self.dir}/{name}", value)

    def apply_devices(self, rule_list: list[tuple]) -> None:
        """v2 has no devices files: the same rules would be a BPF_PROG_TYPE_CGROUP_DEVICE program
        attached to the directory (runc's devicefilter), which minirt does not load yet
        (docs/security.md). Nothing is filtered on v2."""

    def place(self, pid: int) -> None:
        fsutil.write(f"{self.dir}/cgroup.procs", str(pid))

    def born_into(self) -> str | None:
        """The directory a new process can be cloned straight into (CLONE_INTO_CGROUP)."""
        return self.dir

    def join_self(self, born: bool) -> None:
        """Move the calling process in, unless it was cloned into it (born)."""
        if not born:
            fsutil.write(f"{self.dir}/cgroup.procs", "0")

    def procs(self) -> list[int]:
        return fsutil.read_pids(self.dir)

    def kill_all(self) -> None:
        if not fsutil.kill_v2(self.dir):
            fsutil.kill_pids(self.procs)

    def remove(self) -> None:
        if os.path.isdir(self.dir):
            if self.procs():
                self.kill_all()
            fsutil.rmdir(self.dir)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def oom_kills(self) -> int:
        return fsutil.keyed(f"{self.dir}/memory.events").get("oom_kill", 0)

    def cpu_ns(self) -> int:
        """CPU time used by the container's processes, in ns (cpu.stat counts microseconds)."""
        return fsutil.keyed(f"{self.dir}/cpu.stat").get("usage_usec", 0) * 1000

    def stats(self) -> dict:
        d = self.dir
        usage = fsutil.read_int(f"{d}/memory.current")
        # docker CLI (calculateMemUsageUnixNoCache): usage minus inactive_file on v2
        inactive = fsutil.keyed(f"{d}/memory.stat").get("inactive_file", 0)
        r, w = fsutil.io_v2(f"{d}/io.stat")
        return {
            "cpu_ns": self.cpu_ns(),
            "mem_usage": usage - inactive if inactive < usage else usage,
            "mem_limit": fsutil.read_int(f"{d}/memory.max"),
            "blk_read": r,
            "blk_write": w,
            "pids": fsutil.read_int(f"{d}/pids.current"),
        }

    def read(self, _ctl: str, name: str) -> str:
        return fsutil.read(f"{self.dir}/{name}")
