"""Is a container alive, and who owns it: predicates on a record, read against /proc.

Runs in: any minirt process. A leaf module (it imports only procfs): every layer asks these
questions, from `ps` to the sentinel and `gc`, so they sit below all of them.

The kernel is the source of truth: a record says "running", but its init is checked by
pid + start time (runc's hasInit: a pid alone can be reused), and a container whose owner
(the foreground `minirt run` or the detached supervisor) is gone while its record still says
created/running was left by a crash: its status is "dead" until `minirt gc` carries out its
teardown plan (teardown.py).
"""

from minirt import procfs


def init_alive(rec: dict) -> bool:
    return bool(rec.get("pid")) and procfs.is_alive(rec["pid"], rec.get("start_time"))


def owner_alive(rec: dict) -> bool:
    for key in ("supervisor", "owner"):
        o = rec.get(key)
        if o and procfs.is_alive(o.get("pid", 0), o.get("start_time")):
            return True
    return False


def status(rec: dict) -> str:
    if rec.get("status") in ("running", "created") and init_alive(rec):
        return "running"
    if rec.get("status") in ("running", "created") and not owner_alive(rec):
        return "dead"  # a crash left it: `minirt gc` cleans it
    return rec.get("status", "unknown")


def live(rec: dict) -> bool:
    """The container may still hold host resources: its init runs, or its owner does (it is
    being set up or torn down right now). Only what no live record claims is reclaimed."""
    return rec.get("status") in ("running", "created") and (init_alive(rec) or owner_alive(rec))
