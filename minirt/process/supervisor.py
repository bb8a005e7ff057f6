"""Detached containers: a small supervisor process per container (the conmon/shim idea).

Runs in: a process forked from `minirt run -d` / `minirt start`, in its own session, that
outlives the calling shell. It is the container init's parent, so it owns the pid (held by
pidfd), collects the exit status, writes the logs, tears the network down when the container
ends, and carries out the restart policy. The caller waits on a pipe until the container has
exec'd (or failed with 125/126/127), prints the id and exits.

    minirt run -d                      supervisor (setsid)                    container
    -------------                      -------------------                    ---------
    fork ------------------------->    stdio: /dev/null, log pipes
                                       create + start (the usual steps) --->  execve
    read "ok <id>" <----------------   report
    print id, exit 0                   execve: the idle form (process/idle.py)
                                       poll: pidfd + stdout/stderr pipes ---> logs
                                       exit -> after_exit: teardown, restart policy

No sentinel: the caller finalizes the container if the supervisor dies before its report (EOF
on the pipe); after that a killed supervisor takes the init with it (PDEATHSIG) and leaves the
plan to the next `gc`/`rm`/`start` (docs/architecture.md, "who cleans up a detached container").

Logs: containers/<id>/container.log (process/logfile.py).
Stop requests: `minirt stop` creates containers/<id>/stop-requested before signalling, so the
supervisor does not restart what the user stopped (Docker: a stopped container is not restarted).
"""

import os

from minirt import procfs
from minirt.errors import EXIT_RUNTIME, MinirtError
from minirt.process.logfile import LogWriter

# The idle form's -c program (python -I -S: no site, no cwd on sys.path). Named by text, not
# imported: idle.py imports this module (after the exit), and this one never needs it loaded.
IDLE_CODE = "import sys; sys.path.insert(0, {!r}); from minirt.process import idle; idle.main(sys.argv[2:])"
IDLE_ARGV0 = "minirt-supervisor"  # argv[1] of the idle form: /proc/PID/cmdline shows it


def parse_restart(policy: str | None) -> tuple[str, int]:
    """no | on-failure[:N] | always  ->  (kind, max retries; 0 = unlimited)."""
    from minirt.errors import ConfigError

    policy = policy or "no"
    kind, _, n = policy.partition(":")
    if kind not in ("no", "on-failure", "always", "unless-stopped") or (n and kind != "on-failure"):
        raise ConfigError(f"restart policy {policy!r}: expected no, on-failure[:N] or always")
    if n and not n.isdigit():
        raise ConfigError(f"restart policy {policy!r}: N must be a number")
    return kind, int(n or 0)


def should_restart(policy: str | None, code: int, restarts_done: int, stop_requested: bool) -> bool:
    """Docker's rules (pure): never after a user's stop; on-failure only for a non-zero exit,
    at most N times when N is given; always (and unless-stopped) every time."""
    if stop_requested:
        return False
    kind, limit = parse_restart(policy)
    if kind == "no":
        return False
    if kind == "on-failure":
        return code != 0 and (limit == 0 or restarts_done < limit)
    return True


def run_detached(cfg, store, record: dict | None = None) -> int:
    """Fork the supervisor; return once the container runs (printing its id) or failed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = EXIT_RUNTIME
        try:
            code = _supervise(cfg, store, record, w)
        except BaseException:  # noqa: BLE001 - never return into the caller's code
            pass
        finally:
            os._exit(code)
    os.close(w)
    # our child, not reaped until below: its pid and start time cannot be reused meanwhile
    owner = {"pid": pid, "start_time": procfs.start_time(pid)}
    data = b""
    while not data.endswith(b"\n"):  # one line; EOF only if the supervisor died first
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    data = data.rstrip(b"\n")
    if not data:
        # Killed during setup (the only watchdog a detached container has: docs/architecture.md,
        # "who cleans up"): carry out what its plan holds, as the sentinel of a foreground run does
        os.waitpid(pid, 0)
        from minirt import sentinel

        sentinel.owner_died(store.root, cfg.id, owner)
        raise MinirtError("the supervisor died before the container started")
    os.waitpid(pid, os.WNOHANG)  # the supervisor lives on; it is reparented when we exit
    kind, _, rest = data.decode(errors="replace").partition(" ")
    if kind == "ok":
        print(rest)
        return 0
    if kind == "err":
        code, _, message = rest.partition(" ")
        raise _Relayed(message, int(code))
    raise MinirtError("the supervisor died before the container started")


class _Relayed(MinirtError):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _supervise(cfg, store, record: dict | None, report_fd: int) -> int:
    from minirt import runtime

    os.setsid()
    from minirt import explain

    # `run -d --explain`: the setup's lines go to the caller's stderr, not into the log pipe
    # that becomes our fd 2 below; the teardown, much later, has no terminal to print to
    # (`stop --explain` asks for its lines: explain.relay_request)
    explain_fd = -1
    if explain.enabled:
        try:
            explain_fd = os.dup(2)
        except OSError:  # no stderr at all (2>&-): nowhere to print
            explain.to_fd(None)
    if explain_fd >= 0:
        explain.to_fd(explain_fd)
    devnull = os.open("/dev/null", os.O_RDWR)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.dup2(devnull, 0)
    # The container inherits fds 1 and 2 at fork: the log pipes. Our own errors go to the report pipe.
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (out_w, err_w):
        os.close(fd)
    restarts = (record or {}).get("restart_count", 0)
    try:
        c = runtime.create(cfg, store, record)
        c.record.update(detached=True, restart_policy=cfg.restart or "no", restart_count=restarts,
                        supervisor={"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())})  # fmt: skip
        runtime.start(c)
    except MinirtError as e:
        os.write(report_fd, f"err {e.exit_code} {e}".replace("\n", " ").encode() + b"\n")
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - a bug or an OSError: the caller prints it, not "died"
        os.write(report_fd, f"err {EXIT_RUNTIME} {e}".replace("\n", " ").encode() + b"\n")
        return EXIT_RUNTIME
    finally:
        if explain_fd >= 0:  # before the report: the caller's stderr reaches EOF when it exits
            explain.to_fd(None)
            os.close(explain_fd)
    # the log exists before `run -d` returns (`logs` right after it; a state snapshot taken
    # then is final), although the idle form is what writes to it
    os.close(os.open(store.container_dir(cfg.id) + "/container.log",
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640))  # fmt: skip
    os.write(report_fd, f"ok {cfg.id}\n".encode())
    os.close(report_fd)
    # From here on nothing of ours may write to the log pipes: only the container holds them.
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    become_idle(c, out_r, err_r)


def become_idle(c, out_r: int, err_r: int) -> None:
    """execve() into the idle form (minirt/process/idle.py), handing over the init's pidfd, its
    output pipes and the sockets that hold its published host ports; everything else is
    close-on-exec (PEP 446) and goes, with the setup's heap."""
    import sys

    import minirt

    ports = [s.fileno() for s in c.ports_held]
    for fd in (c.child.pidfd, out_r, err_r, *ports):
        os.set_inheritable(fd, True)
    pkg_dir = os.path.dirname(os.path.dirname(os.path.abspath(minirt.__file__)))
    argv = [sys.executable, "-I", "-S", "-c", IDLE_CODE.format(pkg_dir), IDLE_ARGV0, c.cfg.id,
            str(c.child.pid), str(c.child.pidfd), str(out_r), str(err_r), ",".join(map(str, ports))]  # fmt: skip
    # the state root by environment, as for every minirt process (`ps` and tools find a
    # root's processes by it); resolved already, so the idle form needs no config to find it
    os.execve(sys.executable, argv, dict(os.environ, MINIRT_ROOT=c.store.root))


def after_exit(root: str, cid: str, code: int, ports: list[int]) -> int:
    """In the idle form, once the init has exited and been reaped: tear down (the plan, the die
    event, the record), then follow the restart policy. Imports the runtime only now."""
    from minirt import runtime
    from minirt.config import ContainerConfig
    from minirt.state import Store

    store = Store(root)
    try:
        rec = store.load(cid)
    except (FileNotFoundError, ValueError):
        return 0
    cfg = ContainerConfig.from_dict(rec["config"])
    cfg.detach = True
    c = runtime.resumed(cfg, store, rec, ports)
    restarts = rec.get("restart_count", 0)
    stop_requested = os.path.exists(store.container_dir(cid) + "/stop-requested")
    again = should_restart(cfg.restart, code, restarts, stop_requested)
    try:
        runtime.finish(c, code, remove=cfg.rm and not again)
    except MinirtError:
        pass
    if not again:
        return 0
    restarts += 1
    devnull = os.open("/dev/null", os.O_RDWR)
    out_r, err_r = _new_pipes()
    try:
        c = runtime.create(cfg, store, dict(c.record, restart_count=restarts))
        c.record["supervisor"] = {"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}
        runtime.start(c)
    except MinirtError as e:
        log = LogWriter(store.container_dir(cid))
        log.write("stderr", f"minirt: restart failed: {e}\n".encode())
        log.close()
        return 0
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    become_idle(c, out_r, err_r)
    return 0


def _new_pipes() -> tuple[int, int]:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)
    return out_r, err_r
