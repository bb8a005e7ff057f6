"""Process liveness by pid + start time (runc libcontainer: a pid alone can be reused)."""

import os


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat from field 3 (state) on, or None if the process is gone.

    Parsed after the last ')' because comm may contain spaces and parentheses (proc(5)).
    """
    try:  # os.open/os.read: no buffered file object (ps asks this of every container)
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        data = os.read(fd, 4096)  # one read: the kernel builds the whole line for it
    except ProcessLookupError:  # the process went away between open and read
        return None
    finally:
        os.close(fd)
    return data[data.rindex(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot), or None if the process is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int, started: int | None) -> bool:
    """The same process still runs: same start time and not a zombie (runc's hasInit check:
    a zombie keeps its /proc entry, and start time, until its parent reaps it)."""
    if pid <= 0 or started is None:
        return False
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in (b"Z", b"X") and int(fields[19]) == started


def read_pid_file(path: str) -> tuple[int, int | None]:
    """A "<pid> <start time>" file (a container's owner, a DNS responder): (pid, start_time),
    or (0, None) when it is missing or damaged, which callers treat as "nobody"."""
    try:
        with open(path) as f:
            pid, started = f.read().split()
        return int(pid), int(started)
    except (OSError, ValueError):
        return 0, None
