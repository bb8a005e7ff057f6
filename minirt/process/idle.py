"""The detached supervisor's idle form: what runs beside a container for days, and nothing else.

Runs in: the supervisor process (the container init's parent), after `run -d`'s setup, which
execve()s itself into this (supervisor.become_idle). The pid, the start time, the session, the
child (init) and the fds handed over (the init's pidfd, its stdout/stderr pipes, the sockets
holding its published host ports) survive execve; the setup's heap does not. A fork of the setup
process would keep every module setup imported (pyroute2, the seccomp compiler, the network
code: ~8 MiB, private once `run -d` has exited, since no long-lived process shares its pages);
a fresh `python -I -S` that imports this module and two C modules costs ~3 MiB PSS, most of it
libpython's own relocated data (docs/architecture.md, "the supervisor's footprint"). The same
idea as podman's conmon and containerd's shim: a small process per container.

While the container runs it blocks in one poll() without a timeout on the pidfd and the pipes:
no timer, no thread, so 0 wakeups while the container is quiet. Output wakes it to write the
log (Docker's json-file shape, rotated past MAX_LOG). When the init exits it is reaped here, and
only then are the runtime's modules imported (supervisor.after_exit): teardown, the die event,
the restart policy, and for a restart the setup again, after which this form is exec'd anew.

Only posix, select, minirt.process.logfile, and with the first output time and minirt.jsonenc (the
C _json module), are imported: keep it so (tests/unit/test_idle_imports.py).
"""

import posix  # not os: its import (posix.path, stat, abc) adds ~150 KiB to every idle supervisor
import select

from minirt.process.logfile import LogWriter


def main(argv: list[str]) -> None:
    root, cid, (pid, pidfd, out_r, err_r) = posix.environ[b"MINIRT_ROOT"].decode(), argv[0], map(int, argv[1:5])
    ports = [int(fd) for fd in argv[5].split(",") if fd]
    log = LogWriter(f"{root}/containers/{cid}")
    code = wait(pid, pidfd, out_r, err_r, log)
    log.close()
    posix.close(pidfd)
    from minirt.process import supervisor

    posix._exit(supervisor.after_exit(root, cid, code, ports))


def wait(pid: int, pidfd: int, out_r: int, err_r: int, log: LogWriter) -> int:
    """Copy the container's output into the log until its init exits; return its exit code."""
    poller = select.poll()
    streams = {out_r: "stdout", err_r: "stderr"}
    for fd in streams:
        poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)  # a pidfd polls readable when the process exits
    exited = False
    while streams and not exited:
        for fd, _ev in poller.poll():  # no timeout: the one syscall an idle supervisor sleeps in
            if fd == pidfd:
                exited = True
                continue
            data = posix.read(fd, 65536)
            if data:
                log.write(streams[fd], data)
            else:
                poller.unregister(fd)
                posix.close(fd)
                del streams[fd]
    if not exited:
        poller.poll()  # both pipes closed; wait for the exit itself
    # drain what is left without blocking: orphans of the container may hold the pipes
    for fd in list(streams):
        posix.set_blocking(fd, False)
        try:
            while data := posix.read(fd, 65536):
                log.write(streams[fd], data)
        except BlockingIOError:
            pass
        posix.close(fd)
    _, status = posix.waitpid(pid, 0)
    # errors.exit_code_of's rule, inlined: the command's code, or 128+N for signal N
    return (status >> 8) & 0xFF if status & 0x7F == 0 else 128 + (status & 0x7F)
