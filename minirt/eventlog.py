"""Reading the event log: Docker's --since/--until times, --filter rules, the two output forms,
and following the file across rotation.

Runs in: `minirt events` (everything here), and the sentinel or `gc` after a kill -9
(last_action only, to write `die` once). The writer is minirt/events.py; the file layout is
drawn there. Nothing here is on `run`'s path, so this module may import what it likes, but it
does so inside the functions: the crash path only needs last_action().
"""

import os
import time

from minirt.errors import ConfigError
from minirt.events import LOG

FILTER_KEYS = ("container", "event", "network", "type")


# --- times: Docker's GetTimestamp (docker/api/types/time/timestamp.go) ------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip


def parse_duration(value: str) -> int | None:
    """Go's time.ParseDuration ("10m", "1h30m", "1.5h", "-2s") -> nanoseconds; None if it is not one."""
    import re

    m = re.fullmatch(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)", value)
    if not m:
        return None
    total = 0.0
    for number, unit in re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)", m.group(2)):
        total += float(number) * _UNITS[unit]
    return int(-total if m.group(1) == "-" else total)


def parse_time(value: str, now_ns: int | None = None) -> int:
    """--since/--until -> nanoseconds since the epoch. Docker's forms: a Go duration before now
    ("10m", "1h30m"); RFC3339 (Nano) with Z or an offset; 2006-01-02T15:04:05[.999999999],
    2006-01-02T15:04, 2006-01-02T15, 2006-01-02 in local time; 2006-01-02Z07:00; Unix
    seconds[.nanoseconds]."""
    import re

    now_ns = time.time_ns() if now_ns is None else now_ns
    d = parse_duration(value)
    if d is not None and value != "0":
        # Docker rounds this down to whole seconds (reference.Add(-d).Unix()); we keep the
        # nanoseconds, so `--until 0s` includes what happened in the current second
        return now_ns - d
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
                     r"([zZ]|[+-]\d{2}:\d{2})?", value)  # fmt: skip
    if m:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24 and fields[4] < 60 and fields[5] < 61):
            raise ConfigError(f"{value!r}: not a valid time")
        if zone:  # in that zone
            import calendar

            secs = calendar.timegm(fields + (0, 0, 0))
            if zone not in ("z", "Z"):
                sign = -1 if zone[0] == "-" else 1
                secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        else:  # "the local timezone on the client will be used"
            secs = int(time.mktime(fields + (0, 0, -1)))
        return secs * 1_000_000_000 + int((frac or "").ljust(9, "0"))
    m = re.fullmatch(r"(\d+)(?:\.(\d{0,9}))?", value)
    if m:  # seconds[.nanoseconds]; Docker scales a short fraction: "1.5" is 1.500000000
        return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "").ljust(9, "0"))
    raise ConfigError(f"failed to parse value as time or duration: {value!r}")


# --- filters: Docker's daemon/events/filter.go -------------------------------------------------


def parse_filters(specs: list[str]) -> dict[str, set[str]]:
    """--filter key=value, repeatable: values of one key are alternatives (OR), different keys
    must all match (AND), as Docker's filters.Args."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise ConfigError(f"bad format of filter (expected name=value): {spec!r}")
        if key not in FILTER_KEYS:
            raise ConfigError(f"invalid filter {key!r} (known: {', '.join(FILTER_KEYS)})")
        out.setdefault(key, set()).add(value)
    return out


def _fuzzy(values: set[str] | None, source: str) -> bool:
    """filters.Args.FuzzyMatch: no values match everything; else equal to, or prefixed by, one."""
    return values is None or any(source.startswith(v) for v in values)


def matches(ev: dict, filters: dict[str, set[str]]) -> bool:
    """Include(): event and type match exactly; container and network match the actor's ID or
    its name attribute, by prefix, for any event (so `container=web` shows web's container
    events, not the networks' connect events that name it: Docker does the same)."""
    actor = ev.get("Actor") or {}
    aid, name = actor.get("ID", ""), (actor.get("Attributes") or {}).get("name", "")
    if "event" in filters and ev.get("Action") not in filters["event"]:
        return False
    if "type" in filters and ev.get("Type") not in filters["type"]:
        return False
    for key in ("container", "network"):
        if key in filters and not (_fuzzy(filters[key], aid) or _fuzzy(filters[key], name)):
            return False
    return True


# --- output -------------------------------------------------------------------------------------


def format_time(time_ns: int) -> str:
    """The docker CLI's RFC3339NanoFixed ("2006-01-02T15:04:05.000000000Z07:00") in local time."""
    lt = time.localtime(time_ns // 1_000_000_000)
    off = lt.tm_gmtoff
    zone = "Z" if off == 0 else f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{time_ns % 1_000_000_000:09d}{zone}"


def format_text(ev: dict) -> str:
    """The docker CLI's line: `<time> <type> <action> <actor id> (k=v, k=v)`, keys sorted."""
    actor = ev.get("Actor") or {}
    out = f"{format_time(ev['timeNano'])} {ev['Type']} {ev['Action']} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        out += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return out


# --- reading the files --------------------------------------------------------------------------


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def last_action(root: str, cid: str, actions: tuple[str, ...]) -> str | None:
    """The last of `actions` written for container `cid` (events.log.1, then events.log), or
    None. Lines are matched as events.encode() writes them, without parsing JSON."""
    keys = {a: f'"Type":"container","Action":"{a}","Actor":{{"ID":"{cid}"'.encode() for a in actions}
    path = f"{root}/{LOG}"
    for p in (path, path + ".1"):  # newest file first
        fd = _open(p)
        if fd is None:
            continue
        try:
            data = _read_all(fd)
        finally:
            os.close(fd)
        for line in reversed(data.split(b"\n")):
            for a, key in keys.items():
                if key in line:
                    return a
    return None


class Reader:
    """Past and live events of one MINIRT_ROOT, as complete lines in the order written.

    The writer renames events.log to events.log.1 under its lock, after its last write to it
    (events.py). So: open events.log first, then .1 (if .1 is the file we just opened, it was
    rotated in between: skip it); a follower that sees another inode at events.log reads its
    old file to the end (it is .1 now and complete), then moves to the new one."""

    def __init__(self, root: str, history: bool):
        self.path = f"{root}/{LOG}"
        self.fd = _open(self.path)
        self.pending = b""
        self.backlog = b""
        if history:
            old = _open(self.path + ".1")
            if old is not None:
                if self.fd is not None and os.fstat(old).st_ino == os.fstat(self.fd).st_ino:
                    os.close(old)
                else:
                    try:
                        self.backlog = _read_all(old)
                    finally:
                        os.close(old)
        elif self.fd is not None:
            os.lseek(self.fd, 0, os.SEEK_END)  # only new events (Docker without --since)

    def lines(self) -> list[bytes]:
        """Every complete line written since the last call (none: nothing new)."""
        data, self.backlog = self.backlog, b""
        if self.fd is None:
            self.fd = _open(self.path)
        while self.fd is not None:
            data += _read_all(self.fd)
            if not self._rotated():
                break
            # renamed after its writer's last write: what it holds now is all it will hold
            data += _read_all(self.fd)
            os.close(self.fd)
            self.fd = _open(self.path)  # None until the next event creates it
        data = self.pending + data
        lines = data.split(b"\n")
        self.pending = lines.pop()
        return [line for line in lines if line]

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def stream(root: str, out, since: int | None = None, until: int | None = None,
           filters: dict | None = None, as_json: bool = False, poll: float = 0.1) -> None:  # fmt: skip
    """Docker's `events`: with --since or --until, the past events in that window first;
    then, unless --until has passed, new events as they are written, until --until (or
    forever). `out(text)` gets each line, without its newline."""
    from minirt import jsonenc

    filters = filters or {}
    reader = Reader(root, history=since is not None or until is not None)
    try:
        while True:
            # decided before reading: what was written before --until passed is still printed
            done = until is not None and time.time_ns() > until
            for line in reader.lines():
                try:
                    ev = jsonenc.loads(line.decode())
                    t = ev["timeNano"]
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    continue  # not an event of ours: skip it rather than end the stream
                if (since is not None and t < since) or (until is not None and t > until):
                    continue
                if matches(ev, filters):
                    out(line.decode() if as_json else format_text(ev))
            if done:
                return
            time.sleep(poll)
    finally:
        reader.close()
