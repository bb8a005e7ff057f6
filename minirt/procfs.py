"""Process liveness by pid + start time (runc libcontainer: a pid alone can be reused)."""


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot), or None if the process is gone.

    Parsed after the last ')' because comm may contain spaces and parentheses (proc(5)).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19])  # field 22 overall; fields here start at field 3


def is_alive(pid: int, started: int | None) -> bool:
    """The same process still runs: same start time and not a zombie (runc's hasInit check:
    a zombie keeps its /proc entry, and start time, until its parent reaps it)."""
    if pid <= 0 or started is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == started
