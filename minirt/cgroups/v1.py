"""A container's cgroup on a v1 (legacy or hybrid) host: one directory per hierarchy.

Runs in: the minirt parent and the commands that look at or change a container's cgroup.

The files written per flag are runc's (libcontainer/cgroups/fs/{memory,cpu,cpuset,pids}.go)
and listed in limits.py. What v1 needs beyond v2:
- a new cpuset cgroup starts with empty cpuset.cpus/mems and refuses tasks (ENOSPC) until
  they are filled, so every empty level on the path gets its parent's, whoever made it (runc
  fs/cpuset.go ensureParent; fsutil.mkdirs);
- OOM kills are counted in memory.oom_control (`oom_kill N`, Linux 4.13+);
- there is no cgroup.kill: killing everything means signalling each pid in cgroup.procs until
  it is empty. In hybrid mode the v2 twin (key "unified") has cgroup.kill and is used first.
"""

import errno
import os

from minirt.cgroups import fsutil


class CgroupV1:
    version = 1

    def __init__(self, dirs: dict[str, str]):
        self.dirs = dirs

    def to_dict(self) -> dict:
        return {"version": 1, "dirs": self.dirs}

    def _unique(self) -> list[str]:
        seen: list[str] = []
        for d in self.dirs.values():
            if d not in seen:
                seen.append(d)
        return seen

    def create(self) -> None:
        """mkdir every hierarchy's directory (and missing parents). Idempotent."""
        for key, d in self.dirs.items():
            fsutil.mkdirs(d, cpuset=key == "cpuset")

    def apply(self, writes: list[tuple[str, str, str]]) -> None:
        """[(controller, file, value)] from limits.Resources.v1_writes()."""
        for ctl, name, value in writes:
            d = self.dirs.get(ctl)
            if d is None:
                from minirt.errors import ConfigError

                raise ConfigError(f"cgroup controller {ctl} is not mounted on this host (needed for {name})")
            fsutil.write(f"{d}/{name}", value)

    def apply_devices(self, rule_list: list[tuple]) -> None:
        """The devices controller's rules (cgroups/devices.py), written before the init is moved
        in: it builds /dev (mknod, needing `m`) only after that. No devices hierarchy, nothing
        to enforce with (the mounts layout.py found decide)."""
        d = self.dirs.get("devices")
        if d is None:
            return
        from minirt.cgroups import devices

        for name, line in devices.v1_writes(rule_list):
            fsutil.write(f"{d}/{name}", line)

    def place(self, pid: int) -> None:
        for d in self._unique():
            fsutil.write(f"{d}/cgroup.procs", str(pid))

    def born_into(self) -> str | None:
        """The cgroup2 directory a new process can be cloned straight into (CLONE_INTO_CGROUP):
        a hybrid host's unified twin; None on a legacy host."""
        return self.dirs.get("unified")

    def join_self(self, born: bool) -> None:
        """Move the calling process, which must be single-threaded, into every hierarchy (an
        exec'd process, before it enters the container). `tasks` with "0" moves only the
        calling thread, and such a move skips the global cgroup_threadgroup_rwsem and the
        grace-period wait of its write lock (kernel/cgroup/cgroup.c, cgroup_procs_write_start:
        "If the thread is `current` ... we can skip the global lock"): ~0.3 ms for eight
        hierarchies against 5-8 ms through cgroup.procs here. born: cloned into the unified
        twin already (born_into); else it joins through cgroup.procs, as v2 has no such file."""
        unified = self.dirs.get("unified")
        for d in self._unique():
            if d != unified:
                fsutil.write(f"{d}/tasks", "0")
            elif not born:
                fsutil.write(f"{d}/cgroup.procs", "0")

    def procs(self) -> list[int]:
        d = self.dirs.get("pids") or self.dirs.get("memory") or next(iter(self.dirs.values()))
        return fsutil.read_pids(d)

    def kill_all(self) -> None:
        """SIGKILL every process of the container, however it left the pid namespace's process
        group (runc signalAllProcesses)."""
        if "unified" in self.dirs and fsutil.kill_v2(self.dirs["unified"]):
            return
        fsutil.kill_pids(self.procs)

    def remove(self) -> None:
        """Kill what is left and rmdir each directory (only the container's own; parents stay,
        like Docker's /docker). Gone already is fine."""
        if self.procs():  # [] when gone already
            self.kill_all()
        for d in self._unique():
            try:
                fsutil.rmdir(d, timeout=0.2)  # gone already is fine
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                # a process in this hierarchy only (not in pids, nor in the unified twin that
                # cgroup.kill emptied): one place() left half-moved when it failed part-way.
                # Kill what this directory holds, then wait for it as usual.
                fsutil.kill_pids(lambda: fsutil.read_pids(d))
                fsutil.rmdir(d)

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs.values())

    def oom_kills(self) -> int:
        d = self.dirs.get("memory")
        if not d:
            return 0
        return fsutil.keyed(f"{d}/memory.oom_control").get("oom_kill", 0)

    def cpu_ns(self) -> int:
        """CPU time used by the container's processes, in ns (the first of stats' two samples
        needs nothing else)."""
        d = self.dirs.get("cpuacct")
        return fsutil.read_int(f"{d}/cpuacct.usage") if d else 0

    def stats(self) -> dict:
        """What `minirt stats` shows, in bytes / nanoseconds (Docker's v1 sources)."""
        out = {"cpu_ns": self.cpu_ns(), "mem_usage": 0, "mem_limit": 0, "blk_read": 0, "blk_write": 0, "pids": 0}
        d = self.dirs.get("memory")
        if d:
            usage = fsutil.read_int(f"{d}/memory.usage_in_bytes")
            # docker CLI (calculateMemUsageUnixNoCache): usage minus total_inactive_file on v1
            inactive = fsutil.keyed(f"{d}/memory.stat").get("total_inactive_file", 0)
            out["mem_usage"] = usage - inactive if inactive < usage else usage
            out["mem_limit"] = fsutil.read_int(f"{d}/memory.limit_in_bytes")
        d = self.dirs.get("blkio")
        if d:
            r, w = fsutil.blkio_v1(f"{d}/blkio.throttle.io_service_bytes")
            out["blk_read"], out["blk_write"] = r, w
        d = self.dirs.get("pids")
        if d:
            out["pids"] = fsutil.read_int(f"{d}/pids.current")
        return out

    def read(self, ctl: str, name: str) -> str:
        return fsutil.read(f"{self.dirs[ctl]}/{name}")
