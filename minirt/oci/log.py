"""--log / --log-format / --debug: where minirt-oci's messages go.

runc logs through logrus: with --log FILE every message is a line of that file, JSON with
--log-format json ({"level","msg","time"}); containerd's shim reports the last
{"level":"error"} line of log.json, podman reads the runtime's stderr. So an error goes both to
stderr and, when --log is given, to the file. Warnings (a failed poststop hook) and --debug
lines go to the file only, or to stderr without --log.
"""

import os
import sys
import time

_path: str | None = None
_json = False
_debug = False


def configure(path: str | None, fmt: str, debug: bool) -> None:
    global _path, _json, _debug
    _path, _json, _debug = path, fmt == "json", debug


def _now() -> str:
    """RFC 3339 with nanoseconds and the zone, as logrus writes time."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def line(level: str, msg: str) -> str:
    import json

    if _json:
        return json.dumps({"level": level, "msg": msg, "time": _now()}) + "\n"
    # logrus's text formatter: the message quoted as Go's %q, which JSON's escaping matches for
    # the characters messages hold
    return f'time="{_now()}" level={level} msg={json.dumps(msg)}\n'


def _write_file(text: str) -> bool:
    if not _path:
        return False
    try:
        fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return True


def error(msg: str) -> None:
    _write_file(line("error", msg))
    sys.stderr.write(f"minirt-oci: {msg}\n")
    sys.stderr.flush()


def warning(msg: str) -> None:
    if not _write_file(line("warning", msg)):
        sys.stderr.write(f"minirt-oci: warning: {msg}\n")
        sys.stderr.flush()


def debug(msg: str) -> None:
    if _debug and not _write_file(line("debug", msg)):
        sys.stderr.write(f"minirt-oci: debug: {msg}\n")
