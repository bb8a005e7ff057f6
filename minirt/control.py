"""Control of existing containers: signals, stop and removal.

Runs in: `minirt kill`, `stop`, `rm`, host namespaces. Liveness is liveness.py's (pid + start
time, runc's check); undoing the host side is teardown.py's: `rm` of a container that a crash
left "dead" carries out its plan as `gc` does.
"""

import os
import time

from minirt import explain, procfs
from minirt.errors import ConflictError
from minirt.liveness import init_alive, owner_alive
from minirt.state import Store


def send_signal(rec: dict, sig: int, root: str | None = None) -> None:
    """Signal the container's init, safely: by pidfd after checking the start time. Writes
    Docker's `kill` event (attribute signal) to the event log of `root` (default MINIRT_ROOT)."""
    import signal as _sig

    gone = ConflictError(f"container {rec['id'][:12]} is not running")
    if not init_alive(rec):
        raise gone
    try:
        fd = os.pidfd_open(rec["pid"])
    except ProcessLookupError:
        raise gone from None
    try:
        # checked after opening: the pidfd pins the process we checked, not a reused pid
        if not procfs.is_alive(rec["pid"], rec.get("start_time")):
            raise gone
        _sig.pidfd_send_signal(fd, sig)
        explain.cmd(explain.render_kill(sig, rec["pid"]))
    except ProcessLookupError:
        raise gone from None
    finally:
        os.close(fd)
    from minirt import events
    from minirt.state import root_dir

    events.container(root or root_dir(), "kill", rec, signal=sig)
    if sig == _sig.SIGKILL:
        kill_all(rec)


def kill_all(rec: dict) -> None:
    """SIGKILL every process in the container's cgroup, not only its init: a process that
    left the init's process group, or one an --init did not pass the signal to (runc kill
    --all; `docker kill` of SIGKILL ends them all when the pid namespace's init dies, but only
    the cgroup also finds an `exec`'d process while it is being set up)."""
    from minirt import cgroups

    cg = cgroups.driver(rec.get("cgroup"))
    if cg is not None and cg.exists():
        try:
            cg.kill_all()
        except OSError:
            pass  # gone meanwhile: the exit path removes it


def wait_exited(store: Store, cid: str, timeout: float) -> bool:
    """Until the init is gone and its owner has recorded the exit (or is gone itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = store.load(cid)
        except FileNotFoundError:
            return True
        if not init_alive(rec) and (rec.get("status") not in ("running", "created") or not owner_alive(rec)):
            return True
        time.sleep(0.02)
    return False


def stop(store: Store, cid: str, timeout: float, sig: int, announce: bool = True) -> None:
    """Docker's stop: the stop signal, then SIGKILL after `timeout` seconds. Events as Docker's:
    kill (signal), then (from the owner) die, then stop once the exit is recorded; `rm -f`
    (announce False) has no stop. Under --explain, the signals sent, then the owner's teardown
    lines (explain.relay_request)."""
    rec = store.load(cid)
    relay, request = explain.relay_request() if explain.enabled else (None, "")
    with open(store.container_dir(cid) + "/stop-requested", "w") as f:  # no restart after a stop
        f.write(request)
    try:
        _stop(store, cid, rec, timeout, sig, announce)
    finally:
        if relay is not None:
            os.write(2, explain.relayed(relay).encode())
            os.close(relay)


def _stop(store: Store, cid: str, rec: dict, timeout: float, sig: int, announce: bool) -> None:
    if not init_alive(rec):
        return
    try:
        send_signal(rec, sig, store.root)
    except ConflictError:
        return
    if sig == 9:  # SIGKILL was the stop signal (`rm -f`): no second one
        wait_exited(store, cid, 30)
    elif not wait_exited(store, cid, timeout):
        try:
            send_signal(store.load(cid), 9, store.root)
        except (ConflictError, FileNotFoundError):
            pass
        wait_exited(store, cid, 30)
    if announce:
        from minirt import events

        events.container(store.root, "stop", rec)


def kill_ahead(store: Store, cid: str) -> None:
    """`rm -f` of many containers: SIGKILL this one now, as remove() would when its turn comes
    (stop-requested first: no restart), so that its owner's teardown runs while the ones before
    it are removed. Its removal stays remove()'s, in order; a container already gone or not
    running is left to it too."""
    try:
        rec = store.load(cid)
        if not init_alive(rec):
            return
        with open(store.container_dir(cid) + "/stop-requested", "w"):
            pass
        send_signal(rec, 9, store.root)
    except (OSError, ValueError, ConflictError):
        pass


def remove(store: Store, cid: str, force: bool) -> None:
    rec = store.load(cid)
    if init_alive(rec):
        if not force:
            raise ConflictError(
                f"cannot remove container {cid[:12]}: it is running (stop it first, or use rm -f)"
            )
        stop(store, cid, 0, 9, announce=False)
        rec = store.load(cid) if os.path.exists(store.container_dir(cid) + "/state.json") else rec
    elif owner_alive(rec) and rec.get("status") in ("created", "running"):
        wait_exited(store, cid, 10)
    if not os.path.isdir(store.container_dir(cid)):
        return
    from minirt import teardown

    # a crash left it "dead", or its exit left failed steps: the plan first (raises what is left)
    teardown.finalize_dead(store, cid)
    try:
        rec = store.load(cid)
    except FileNotFoundError:
        return  # it was a --rm container: finalizing removed it
    store.release_name(rec.get("name", ""), cid)
    store.remove(cid)
    from minirt import events

    events.container(store.root, "destroy", rec)
