"""The event log: one JSON line per container or network event, in Docker's event shape.

Runs in: whichever minirt process acts. The foreground `run` and the detached supervisor
(create, start, die, oom, destroy, network connect/disconnect), the sentinel and `gc` after a
kill -9 of the owner (die, oom, destroy), `stop`/`kill`/`rm`, and the `network` verbs. There is
no daemon to hand events to, so each writer appends to one file itself:

    $MINIRT_ROOT/events.log     one event per line, appended under flock(LOCK_EX), one write each
    $MINIRT_ROOT/events.log.1   the previous file: events.log is renamed to it past MAX_SIZE
                                (the older .1 is dropped); readers read .1, then events.log

A line is Docker's events.Message (moby api/types/events), minus the deprecated status/id/from:

    {"Type":"container","Action":"die","Actor":{"ID":"<64 hex>","Attributes":{"exitCode":"3",
     "image":"<rootfs>","name":"<name>"}},"scope":"local","time":<s>,"timeNano":<ns>}

Cheap on purpose: it is on `run`'s path (create, connect, start). No json import (strings are
escaped by json's own C routine, as jsonenc does), fcntl is already loaded by state.py, and an
event costs open + flock + fstat + stat + write + close. Reading, filtering and formatting are
minirt/eventlog.py's, imported by `minirt events` only. Writing never fails a lifecycle step: a
full disk loses the event, not the container.
"""

import os
import time

from _json import encode_basestring_ascii as _s

LOG = "events.log"
MAX_SIZE = 1 << 20  # 1 MiB, then events.log -> events.log.1 (one old file kept)

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def encode(type_: str, action: str, actor_id: str, attributes: dict, time_ns: int) -> bytes:
    """One event as a JSON line; attribute keys sorted and values strings, as Go encodes a
    map[string]string."""
    attrs = ",".join(f"{_s(k)}:{_s(str(v))}" for k, v in sorted(attributes.items()))
    return (f'{{"Type":{_s(type_)},"Action":{_s(action)},"Actor":{{"ID":{_s(actor_id)},'
            f'"Attributes":{{{attrs}}}}},"scope":"local","time":{time_ns // 1_000_000_000},'
            f'"timeNano":{time_ns}}}\n').encode()  # fmt: skip


def emit(root: str, type_: str, action: str, actor_id: str, attributes: dict) -> None:
    """Append one event to $root/events.log (best effort: an OSError loses the event only).
    A dry run (--dry-run) happens nowhere, so it writes no event either."""
    from minirt import explain

    if explain.dry:
        return
    line = encode(type_, action, actor_id, attributes, time.time_ns())
    try:
        append(f"{root}/{LOG}", line)
    except FileNotFoundError:  # no MINIRT_ROOT yet (a first `network create`)
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            append(f"{root}/{LOG}", line)
        except OSError:
            pass
    except OSError:
        pass


def append(path: str, line: bytes) -> None:
    """One write under an exclusive flock of the file. A writer that locked a file another one
    has just rotated away (its inode is no longer at `path`) opens the new one instead, so no
    event lands in events.log.1 after the rename. The writer that takes the file past MAX_SIZE
    renames it, still under the lock."""
    import fcntl

    for _ in range(8):  # more rotations than this while we wait would need 8 MiB of events
        fd = os.open(path, _FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != st.st_ino:
                continue  # rotated while we waited for the lock
            os.write(fd, line)
            if st.st_size + len(line) > MAX_SIZE:
                os.replace(path, path + ".1")
            return
        finally:
            os.close(fd)


# --- container and network events --------------------------------------------------------------


def container(root: str, action: str, rec: dict, **extra) -> None:
    """A container event; Actor.Attributes are Docker's image and name (minirt's image is the
    rootfs directory) plus `extra` (exitCode for die, signal for kill)."""
    cfg = rec.get("config") or {}
    attrs = {"image": cfg.get("rootfs", ""), "name": rec.get("name") or cfg.get("name", "")}
    attrs.update(extra)
    emit(root, "container", action, rec.get("id") or cfg.get("id", ""), attrs)


def network(root: str, action: str, net, container_id: str | None = None) -> None:
    """A network event (net: a netrecord.Network). connect/disconnect name the container, as
    Docker's do (attributes container, name, type)."""
    attrs = {"name": net.name, "type": "bridge"}
    if container_id:
        attrs["container"] = container_id
    emit(root, "network", action, net.id, attrs)
