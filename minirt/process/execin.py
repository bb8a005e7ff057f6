"""`minirt exec`: run a command inside a running container's namespaces and root.

Runs in: the minirt parent (host), then a forked child that joins the container.

Joining, in runc's setns order: the parent setns()es its pid_for_children into the container's
pid namespace (as spawn.py does for a new one) and forks, so the child is born inside it and
shows up in the container's `ps`; the child then joins the container's cgroup, and ipc, uts,
net, mnt (and cgroup, when private) with os.setns. A remapped container's user namespace is
joined before all of them, then uid/gid 0 of it taken.
Joining a mount namespace resets root and cwd to that namespace's root (setns(2)), which is
the container's pivoted root. The child applies the container's capability set, no_new_privs,
its environment (plus -e) and working directory, resolves the command
(126/127 reported through a close-on-exec pipe before exec, CPython's errpipe idea), and
execs; last before execve it attaches the container's seccomp filter (the program the container
started with, from the cache by the key in its record). With -t it gets a new pty of the
container's devpts whose master the parent relays to the user's terminal.
"""

import errno
import os

# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up)
import _signal as signal

from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUNTIME, ConflictError, ExecError, exit_code_of
from minirt.process import signals
from minirt.process.child import Child

JOINED = (("ipc", os.CLONE_NEWIPC), ("uts", os.CLONE_NEWUTS), ("net", os.CLONE_NEWNET), ("mnt", os.CLONE_NEWNS))


def exec_in(rec: dict, argv: list[str], env_extra: list[str], workdir: str | None, tty: bool,
            user: str | None = None, seccomp_bpf: bytes | None = None) -> int:
    from minirt import procfs
    from minirt.config import parse_env

    pid = rec["pid"]
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise ConflictError(f"container {rec['id'][:12]} is not running") from None
    if not procfs.is_alive(pid, rec.get("start_time")):
        os.close(pidfd)
        raise ConflictError(f"container {rec['id'][:12]} is not running")
    cfg = rec["config"]
    joined = JOINED + (("cgroup", os.CLONE_NEWCGROUP),) if cfg.get("cgroupns") == "private" else JOINED
    if cfg.get("uidmap"):
        # the user namespace first (runc's nsenter order): the others are owned by it, and
        # once in it we hold capabilities over them; joining it also needs a single thread
        joined = (("user", os.CLONE_NEWUSER),) + joined
    fds = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name, _ in joined + (("pid", 0),)}
    env = dict(e.partition("=")[::2] for e in cfg.get("env") or [])
    env.update(dict(e.partition("=")[::2] for e in parse_env(env_extra, os.environ)))
    if tty:
        env.setdefault("TERM", os.environ.get("TERM", "xterm"))
        master, slave = _container_pty(pid)
    errr, errw = os.pipe()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED | {signal.SIGWINCH})
    os.setns(fds["pid"], os.CLONE_NEWPID)
    from minirt import cgroups, timing

    cgroup = cgroups.driver(rec.get("cgroup"))
    timing.mark("exec-fork")
    child, born = _fork_into(cgroup)
    if child == 0:
        os.close(errr)
        code = EXIT_RUNTIME
        try:
            _child(fds, joined, cgroup, born, cfg, argv, env, workdir, slave if tty else None, old_mask, user,
                   seccomp_bpf)
        except ExecError as e:
            code = e.exit_code
            os.write(errw, f"{code} {e}".encode())
        except BaseException as e:  # noqa: BLE001 - report and never return into the parent's code
            os.write(errw, f"{code} exec: {e}".encode())
        os._exit(code)
    os.setns(own_pidns, os.CLONE_NEWPID)
    os.close(errw)
    for fd in fds.values():
        os.close(fd)
    if tty:
        os.close(slave)
    report = os.read(errr, 4096)
    os.close(errr)
    if report:
        os.waitpid(child, 0)
        code, _, message = report.decode(errors="replace").partition(" ")
        raise ExecError(message, int(code))
    try:
        code = wait_exec_child(child, master if tty else None)
        timing.mark("exec-child-reaped")
        return code
    finally:
        os.close(pidfd)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def wait_exec_child(child: int, master: int | None) -> int:
    """Until the exec'd process ends: relaying its pty (master) or forwarding our signals to it;
    its exit code, 128+N when a signal killed it. Shared with minirt-oci exec."""
    if master is not None:
        return _relay_tty(master, child)
    c = Child()
    c.pid, c.pidfd = child, os.pidfd_open(child)
    try:
        return signals.wait_forwarding(c)
    finally:
        os.close(c.pidfd)


def _fork_into(cgroup) -> tuple[int, bool]:
    """fork(), with the child born in the container's cgroup2 directory when there is one
    (clone3 CLONE_INTO_CGROUP: no cgroup.procs write, so no grace-period wait; runc does the
    same for exec on cgroup v2). Returns (pid, born): 0 in the child, born telling whether it
    is in that directory already."""
    where = cgroup.born_into() if cgroup is not None else None
    if not where:
        return os.fork(), False
    from minirt._syscalls import clone_fork

    try:
        fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return os.fork(), False
    try:
        pid, pidfd = clone_fork(0, fd)
    except OSError:  # a kernel before 5.7, or the directory refused: join after fork
        os.close(fd)
        return os.fork(), False
    if pid:
        os.close(pidfd)
        os.close(fd)
    return pid, True


def _child(fds, joined, cgroup, born, cfg, argv, env, workdir, slave, old_mask, user, seccomp_bpf) -> None:
    # everything used below, prctl (caps.apply) and minirt.users (exec_user) included: nothing
    # is importable after setns(mnt)
    import _prctl  # noqa: F401

    if slave is not None:
        import fcntl
        import termios
    from minirt import caps, timing
    from minirt._syscalls import seccomp_set_filter
    from minirt.process.program import exec_user, resolve_command, set_rlimits

    timing.mark("exec-child-imported")

    # the container's cgroup first, while the host's /sys/fs/cgroup is still in view (runc:
    # the exec'd process joins the container's cgroups before it enters its namespaces);
    # limits, accounting and `stop` then cover it like every other process of the container
    if cgroup is not None:
        cgroup.join_self(born)
    timing.mark("exec-child-in-cgroup")
    for name, flag in joined:
        os.setns(fds[name], flag)
    timing.mark("exec-child-joined")
    if cfg.get("uidmap"):
        # container root, as the init became after its maps (process/init.py _become_root)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        os.setgroups([])
    try:
        os.chdir(workdir or cfg.get("workdir") or "/")
    except OSError as e:
        raise ExecError(f"workdir {workdir or cfg.get('workdir')}: {e.strerror}", EXIT_CANNOT_EXEC) from None
    # Docker: exec runs as the container's user unless -u says otherwise, resolved in the
    # container's own /etc/passwd; Docker's exec reports a bad one as runc's exec failure (126).
    try:
        who = exec_user(user or cfg.get("user"), cfg.get("group_add"))
    except ExecError as e:
        raise ExecError(str(e), EXIT_CANNOT_EXEC) from None
    env.setdefault("HOME", who.home)
    exe = resolve_command(argv[0], env.get("PATH", ""))
    if slave is not None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(slave)
    set_rlimits(cfg.get("ulimits"))  # exec'd processes get the container's --ulimit too (runc exec)
    caps.apply(frozenset(cfg.get("caps") or []), cfg.get("no_new_privs", True), who)
    signals.reset_dispositions()
    if seccomp_bpf:
        seccomp_set_filter(seccomp_bpf)  # the container's filter, last before execve, as in init.py
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    timing.mark("exec-child-execve")
    try:
        os.execve(exe, argv, env)
    except OSError as e:
        raise ExecError(f'exec "{argv[0]}": {e.strerror.lower()}', EXIT_NOT_FOUND if e.errno == errno.ENOENT
                        else EXIT_CANNOT_EXEC) from None  # fmt: skip


def _container_pty(pid: int) -> tuple[int, int]:
    """A pty from the container's own devpts instance (opened through /proc/<pid>/root), so
    `tty` inside names a device that exists there, as with `docker exec -t`."""
    import fcntl
    import struct

    pts = f"/proc/{pid}/root/dev/pts"
    master = os.open(f"{pts}/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, 0x40045431, struct.pack("i", 0))  # TIOCSPTLCK: unlockpt()
    n = struct.unpack("i", fcntl.ioctl(master, 0x80045430, struct.pack("i", 0)))[0]  # TIOCGPTN: ptsname()
    slave = os.open(f"{pts}/{n}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave


def _relay_tty(master: int, child: int) -> int:
    """Copy between the user's terminal (raw mode) and the pty master until the command exits."""
    import select
    import termios
    import tty as ttymod

    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None
    if stdin_tty:
        _copy_winsize(0, master)
        ttymod.setraw(0)
    try:
        fds = [master, 0]
        while True:
            r, _, _ = select.select(fds, [], [], 0.2)
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in r:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds.remove(0)
            pending = signal.sigpending()
            if signal.SIGWINCH in pending:
                signal.sigwait({signal.SIGWINCH})
                if stdin_tty:
                    _copy_winsize(0, master)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    _, status = os.waitpid(child, 0)
    return exit_code_of(status)


def _copy_winsize(src: int, dst: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8))
