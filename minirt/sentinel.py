"""A watchdog that carries out a container's teardown plan if minirt itself dies.

Runs in: a small process forked from the process that owns a foreground container (`minirt
run` without -d; a detached container has none: its `run -d` watches the supervisor during
setup, and `gc` finalizes it if the supervisor is killed later: docs/architecture.md, "who
cleans up a detached container"), after the container's record and plan are written
and before anything is allocated in the network. It blocks on a pipe whose only write end the
owner holds (close-on-exec, so the container never has it). The owner writes "d" (done) once it
has torn down or rolled back itself; EOF without "d" means the owner was killed (kill -9, OOM),
and the sentinel finalizes the container exactly as `gc` would (teardown.finalize_dead): the
plan in the record, then the record itself. It waits for the container's init first, which
PR_SET_PDEATHSIG kills together with the owner, and acts only while the dead process is still
the record's owner, so a container restarted meanwhile is left to its new owner. Every step is
idempotent, so racing `gc` or the kernel's own veth removal is harmless. This is sshuttle's
firewall helper idea (undo on stdin EOF).
"""

import os

from minirt import explain


def start(root: str, cid: str, owner: dict) -> int:
    """Fork the sentinel; returns the write end to pass to dismiss()."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(w)
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):  # hold no one's terminal, log pipe or report pipe open
                os.dup2(devnull, fd)
            os.closerange(3, r)
            os.closerange(r + 1, 1 << 16)
            os.setsid()  # out of minirt's process group: the terminal's ^C is not for us
            explain.enabled = False
            if os.read(r, 1) != b"d":
                owner_died(root, cid, owner)
        except BaseException as e:  # noqa: BLE001 - a watchdog never returns into minirt's code
            code = 1
            _log(root, f"sentinel of {cid[:12]}: {e!r}")
        finally:
            os._exit(code)
    os.close(r)
    return w


def owner_died(root: str, cid: str, owner: dict) -> None:
    """Finalize the container once its owner (and so its init) is gone, if that process still
    owns it. Also called by `minirt run -d` when the supervisor dies before reporting."""
    import time

    from minirt import liveness, procfs, teardown
    from minirt.state import Store

    store = Store(root)
    deadline = time.monotonic() + 10
    # EOF comes as the owner's files are closed, early in its exit: it still counts as alive
    # for a moment after that, and its init dies by PDEATHSIG a moment later still
    while time.monotonic() < deadline:
        try:
            rec = store.load(cid)
        except (FileNotFoundError, ValueError):
            return
        if not liveness.init_alive(rec) and not procfs.is_alive(owner["pid"], owner["start_time"]):
            break
        time.sleep(0.005)
    teardown.finalize_dead(store, cid, expect_owner=owner)


def dismiss(w: int) -> None:
    """minirt has cleaned up itself: let the sentinel exit without doing anything."""
    try:
        os.write(w, b"d")
    except OSError:
        pass
    os.close(w)


def _log(root: str, message: str) -> None:
    """A sentinel has no terminal: what went wrong goes to $MINIRT_ROOT/sentinel.log."""
    try:
        fd = os.open(f"{root}/sentinel.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        os.write(fd, f"{message}\n".encode())
        os.close(fd)
    except OSError:
        pass
