"""Reading and writing cgroupfs files, for both versions; each change printed under --explain.

Runs in: whoever touches a container's cgroup. Files are opened per call (no caching): a cgroup
file is a kernel interface and each read is a fresh answer.

Dry run (explain.dry): mkdir, writes and rmdir print their line and change nothing. What the
rest of the walk reads back from a directory the dry run "made" is what the kernel would show
there: the values the dry run "wrote", else a new cgroup's (empty cpuset.cpus/mems and
cgroup.subtree_control; cgroup.controllers = the parent's cgroup.subtree_control), so the
plan prints the same copies and enables the executed run would.
"""

import errno
import os
import time

from minirt import explain


_dry_dirs: set[str] = set()  # made by a dry run
_dry_files: dict[str, str] = {}  # written by a dry run


def write(path: str, value: str) -> None:
    explain.cmd(f"echo {value} > {path}")
    if explain.dry:
        _dry_files[path] = _dry_written(path, value)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    except OSError as e:
        # the kernel's errno alone ("Invalid argument") does not say which file refused what
        raise OSError(e.errno, f"{e.strerror} (writing {value!r})", path) from None
    finally:
        os.close(fd)


def slurp(path: str) -> str:
    """The whole file, through os.read: a fifth of open()'s cost on a cgroup file (its buffered
    text layer dominates; measured ~20 us against ~100 us), which `minirt stats` pays ~8 times
    per container. Loops until EOF: a large seq_file may come in several reads."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read(path: str) -> str:
    if explain.dry and (path in _dry_files or os.path.dirname(path) in _dry_dirs):
        return _dry_read(path)
    return slurp(path).strip()


def _dry_written(path: str, value: str) -> str:
    """What reading the file back would show: cgroup.subtree_control lists the controllers
    ("cpu memory"), after "+cpu -memory" edits; other files show the value."""
    if not path.endswith("/cgroup.subtree_control"):
        return value
    on = read(path).split()
    for word in value.split():
        name = word[1:]
        if word[0] == "+" and name not in on:
            on.append(name)
        elif word[0] == "-" and name in on:
            on.remove(name)
    return " ".join(on)


def _dry_read(path: str) -> str:
    if path in _dry_files:
        return _dry_files[path]
    d, name = os.path.split(path)
    if name == "cgroup.controllers":
        return read(f"{os.path.dirname(d)}/cgroup.subtree_control")
    return ""  # cpuset.cpus, cpuset.mems, cgroup.subtree_control of a new cgroup


def isdir(d: str) -> bool:
    return os.path.isdir(d) or (explain.dry and d in _dry_dirs)


def read_int(path: str) -> int:
    try:
        v = read(path)
    except FileNotFoundError:
        return 0
    return -1 if v == "max" else int(v)


def keyed(path: str) -> dict[str, int]:
    """`key value` lines (memory.stat, memory.oom_control, memory.events, cpu.stat)."""
    out: dict[str, int] = {}
    try:
        text = slurp(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def read_pids(d: str) -> list[int]:
    try:
        return [int(x) for x in slurp(f"{d}/cgroup.procs").split()]
    except FileNotFoundError:
        return []


def mkdirs(d: str, cpuset: bool = False) -> None:
    """mkdir -p; on a v1 cpuset hierarchy each level gets its parent's cpus and mems, or it
    would refuse tasks (ENOSPC; runc fs/cpuset.go ensureParent + copyIfNeeded)."""
    if isdir(d):
        if cpuset:
            _inherit_cpuset(d)  # made by someone else, who may not have filled it (yet)
        return
    mkdirs(os.path.dirname(d), cpuset)
    explain.cmd(f"mkdir {d}")
    if explain.dry:
        _dry_dirs.add(d)  # a dry run makes nothing
    else:
        try:
            os.mkdir(d)
        except FileExistsError:
            pass  # another container created the shared parent at the same moment
    if cpuset:
        _inherit_cpuset(d)


def _inherit_cpuset(d: str) -> None:
    """Fill an empty cpuset.cpus/cpuset.mems from the parent (itself first when it is empty
    too). Checked on every level, not only on those we make: a cgroup made by another `run`
    is empty until that run has written it, for good if that run was killed in between, and a
    container under it would then be refused (ENOSPC) after its init had joined the
    hierarchies before cpuset: the init was left in those. The hierarchy's root is never empty."""
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not read(f"{d}/{name}"):
            if not read(f"{parent}/{name}"):
                _inherit_cpuset(parent)
            write(f"{d}/{name}", read(f"{parent}/{name}"))


def enable_controllers(d: str, wanted: tuple[str, ...]) -> None:
    """v2: a cgroup's controllers come from its parent's cgroup.subtree_control (cgroups(7),
    "Enabling and disabling controllers"). Enable the wanted ones the parent offers."""
    offered = read(f"{d}/cgroup.controllers").split()
    on = read(f"{d}/cgroup.subtree_control").split()
    missing = [c for c in wanted if c in offered and c not in on]
    if missing:
        write(f"{d}/cgroup.subtree_control", " ".join("+" + c for c in missing))


def kill_v2(d: str) -> bool:
    """cgroup.kill (Linux 5.14+): SIGKILL to every process of the subtree in one write."""
    try:
        write(f"{d}/cgroup.kill", "1")
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EINVAL, errno.EACCES):
            return False
        raise


def kill_pids(procs) -> None:
    """SIGKILL each pid listed until none is left: a process forking meanwhile shows up in the
    next read (runc's v1 answer freezes first; SIGKILL'd processes cannot fork any more)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pids = procs()
        if not pids:
            return
        for pid in pids:
            explain.cmd(explain.render_kill(9, pid))
            if explain.dry:
                continue
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if explain.dry:
            return  # nothing was killed: the list would never empty
        time.sleep(0.005)


def rmdir(d: str, timeout: float = 2.0) -> None:
    """rmdir, retried while the kernel still counts exiting tasks (EBUSY for a moment after
    the last SIGKILL). Gone already is fine: removal is idempotent."""
    explain.cmd(f"rmdir {d}")
    if explain.dry:
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise OSError(e.errno, f"cannot remove cgroup: {e.strerror}{_holders(d)}", d) from None
        time.sleep(0.005)


def _holders(d: str) -> str:
    """" (still holding: PID comm state, ...)" for a cgroup rmdir refused: who is left."""
    try:
        with open(f"{d}/tasks" if os.path.exists(f"{d}/tasks") else f"{d}/cgroup.threads") as f:
            tids = f.read().split()
    except OSError:
        return ""
    held = []
    for tid in tids[:5]:
        try:
            with open(f"/proc/{tid}/stat") as f:
                stat = f.read()
            held.append(f"{tid} {stat[stat.index('(') : stat.rindex(')') + 1]} {stat[stat.rindex(')') + 2]}")
        except (OSError, ValueError):
            held.append(tid)
    return f" (still holding: {', '.join(held)})" if held else ""


def blkio_v1(path: str) -> tuple[int, int]:
    """Read and Write totals of blkio.throttle.io_service_bytes (`MAJ:MIN Op bytes` lines)."""
    return _read_write(path, lambda fields: [fields[1:]] if len(fields) == 3 else [], "Read", "Write")


def io_v2(path: str) -> tuple[int, int]:
    """rbytes and wbytes totals of io.stat (`MAJ:MIN rbytes=N wbytes=N ...` lines)."""
    return _read_write(path, lambda fields: [kv.split("=", 1) for kv in fields[1:]], "rbytes", "wbytes")


def _read_write(path: str, pairs, read_key: str, write_key: str) -> tuple[int, int]:
    """Sum the read and write byte counts over every device line; pairs(fields) gives a
    line's (key, value) pairs. A missing file (no blkio/io controller) counts as nothing."""
    totals = {read_key: 0, write_key: 0}
    try:
        text = slurp(path)
    except FileNotFoundError:
        return 0, 0
    for line in text.splitlines():
        for k, v in pairs(line.split()):
            if k in totals:
                totals[k] += int(v)
    return totals[read_key], totals[write_key]
