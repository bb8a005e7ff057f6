"""`minirt-oci exec`: a new process in a running container (runc exec's setns process).

Runs in: the engine's exec call (conmon: `exec --pid-file P --process F --detach [--tty
--console-socket S]`; containerd's shim the same without --tty). The process comes from
--process (an OCI process JSON, which then decides everything) or from the container's own
process (config.json's, kept in the state) with ARGS, --cwd, --env, --user, --cap,
--additional-gids, --no-new-privs, --tty layered on it, as runc's getProcess does.

Joining follows minirt/process/execin.py: the parent enters the container's pid namespace for
its children and forks; the child joins the container's cgroup (while the host's cgroupfs is in
view), then its user namespace first, then ipc, uts, net, cgroup and mnt; then the process's
identity as the init's (proc.py) and the container's seccomp filter. A failure before execve
comes back through a close-on-exec pipe. --detach returns once the program runs: its pid is in
--pid-file and, when we exit, it is re-parented to the caller's subreaper.
"""

import errno
import fcntl  # noqa: F401 - proc.py's ioctls run after setns(mnt), where nothing can be imported
import os
import _signal as signal

from minirt import _syscalls
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, ExecError, MinirtError
from minirt.oci import fds, proc
from minirt.oci import state as ocistate
from minirt.oci.spec import NAMESPACES
from minirt.process import signals

JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")


def build_process(rec: dict, args: list[str], opts: dict) -> dict:
    """The process to run: --process wins whole (runc); else the container's with overrides."""
    from minirt.oci import spec

    if opts.get("process"):
        import json

        try:
            with open(opts["process"]) as f:
                obj = json.load(f)
        except OSError as e:
            raise MinirtError(f"--process {opts['process']}: {e.strerror}") from None
        except ValueError as e:
            raise MinirtError(f"--process {opts['process']}: not valid JSON ({e})") from None
        return spec.parse_process(obj, "process")
    if not args:
        raise MinirtError("exec: no command given (ARGS or --process)")
    base = dict(rec["process"])
    p = dict(base, args=list(args), terminal=bool(opts.get("tty")))
    if opts.get("cwd"):
        p["cwd"] = opts["cwd"]
    if opts.get("env"):
        p["env"] = list(base["env"]) + list(opts["env"])
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        try:
            p["user"] = dict(base["user"], uid=int(uid), gid=int(gid) if gid else base["user"]["gid"])
        except ValueError:
            raise MinirtError(f"--user {opts['user']!r}: expected UID[:GID] (numbers)") from None
    if opts.get("additional-gids"):
        try:
            p["user"] = dict(p["user"], additionalGids=[int(g) for g in opts["additional-gids"]])
        except ValueError:
            raise MinirtError("--additional-gids: expected numbers") from None
    if opts.get("cap"):
        caps = {k: list(v) for k, v in (base["capabilities"] or {}).items()} or {s: [] for s in spec.CAP_SETS}
        extra = spec.parse_caps({"bounding": opts["cap"]}, "--cap")["bounding"]
        for s in ("bounding", "effective", "permitted"):
            caps[s] = sorted(set(caps.get(s, [])) | set(extra))
        if caps.get("inheritable"):  # runc: ambient only when the spec has inheritable bits
            caps["ambient"] = sorted(set(caps.get("ambient", [])) | set(extra))
        p["capabilities"] = caps
    if opts.get("no-new-privs"):
        p["noNewPrivileges"] = True
    return p


def main(root: str, cid: str, args: list[str], opts: dict) -> int:
    if opts.get("process-label") or opts.get("apparmor"):
        raise MinirtError("exec: SELinux labels and AppArmor profiles are not supported by minirt-oci")
    if opts.get("cgroup"):
        raise MinirtError("exec: --cgroup (a sub-cgroup) is not supported by minirt-oci")
    rec = ocistate.load(root, cid)
    st = ocistate.status(root, rec)
    if st == "stopped":
        raise MinirtError("cannot exec in a stopped container")
    if st == "paused" and not opts.get("ignore-paused"):
        raise MinirtError("cannot exec in a paused container (use --ignore-paused to override)")
    if st == "creating":
        raise MinirtError("cannot exec in a container that is being created")
    p = build_process(rec, args, opts)
    preserve = fds.preserve_fds(opts)
    console_path = opts.get("console-socket")
    detach = bool(opts.get("detach"))
    if p["terminal"] and detach and not console_path:
        raise MinirtError("cannot allocate tty if runc will detach without setting console socket")
    if console_path and not p["terminal"]:
        raise MinirtError("cannot use console socket if runc will not detach or allocate tty")
    bpf = None
    try:
        with open(f"{ocistate.container_dir(root, cid)}/seccomp.bpf", "rb") as f:
            bpf = f.read()
    except FileNotFoundError:
        pass
    pid = rec["pid"]
    pidfd = os.pidfd_open(pid)
    try:
        if not ocistate.init_alive(rec):
            raise MinirtError("cannot exec in a stopped container")
        child, master = _spawn(rec, p, preserve, bpf, console_path)
    finally:
        os.close(pidfd)
    if opts.get("pid-file"):
        fds.write_pid_file(opts["pid-file"], child)
    if detach:
        if master is not None:
            os.close(master)
        return 0
    from minirt.process.execin import wait_exec_child

    return wait_exec_child(child, master)


def _spawn(rec: dict, p: dict, preserve: int, bpf: bytes | None, console_path: str | None) -> tuple[int, int | None]:
    """Fork the process into the container; returns (host pid, pty master to relay or None)."""
    from minirt import cgroups

    pid = rec["pid"]
    joined = [t for t in JOIN_ORDER if t in (rec.get("namespaces") or {})]
    nsfds = {t: os.open(f"/proc/{pid}/ns/{NAMESPACES[t][0]}", os.O_RDONLY | os.O_CLOEXEC) for t in joined}
    pidns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC) if "pid" in (rec.get("namespaces") or {}) else -1
    master = slave = None
    console = None
    if p["terminal"]:
        master, slave = proc.open_pty(f"/proc/{pid}/root/dev/pts")
        proc.set_size(slave, p.get("consoleSize"))
        if console_path:
            console = fds.connect_console(console_path)
            try:
                proc.send_console(console, master)
            finally:
                console.close()
            os.close(master)
            master = None
    cg = cgroups.driver(rec.get("cgroup"))
    errr, errw = os.pipe()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED | {signal.SIGWINCH})
    if pidns >= 0:
        os.setns(pidns, os.CLONE_NEWPID)
    try:
        child = os.fork()
        if child == 0:
            code = 1
            try:
                os.close(errr)
                _child(cg, nsfds, joined, rec, p, preserve, bpf, slave, errw)
            except ExecError as e:
                code = e.exit_code if e.exit_code in (EXIT_CANNOT_EXEC, EXIT_NOT_FOUND) else 1
                os.write(errw, f"{code} {e}".encode(errors="replace"))
            except OSError as e:
                os.write(errw, f"{code} exec: {e.strerror or e}{': ' + str(e.filename) if e.filename else ''}".encode())
            except BaseException as e:  # noqa: BLE001 - report and never return into the parent's code
                os.write(errw, f"{code} exec: {e}".encode(errors="replace"))
            finally:
                os._exit(code)
    finally:
        os.setns(own_pidns, os.CLONE_NEWPID)
        os.close(own_pidns)
        if pidns >= 0:
            os.close(pidns)
        for fd in nsfds.values():
            os.close(fd)
        os.close(errw)
        if slave is not None:
            os.close(slave)
    report = os.read(errr, 4096)
    os.close(errr)
    if report:
        os.waitpid(child, 0)
        if master is not None:
            os.close(master)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        code, _, message = report.decode(errors="replace").partition(" ")
        raise ExecError(message, int(code))
    return child, master


def _child(cg, nsfds, joined, rec, p, preserve, bpf, slave, errw) -> None:
    if cg is not None:
        cg.place(0)  # 0: the writer itself; before setns(mnt), while the host's cgroupfs is in view
    for t in joined:
        os.setns(nsfds[t], NAMESPACES[t][1])
    if rec.get("uidmap"):
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        os.setgroups([])
    if p["user"].get("umask") is not None:
        os.umask(p["user"]["umask"])
    env = dict(e.partition("=")[::2] for e in p["env"])
    proc.set_rlimits(p["rlimits"])
    try:
        os.chdir(p["cwd"])
    except OSError as e:
        raise ExecError(f"chdir to cwd ({p['cwd']!r}) failed: {e.strerror.lower()}") from None
    if "HOME" not in env:
        env["HOME"] = proc.home_of(p["user"]["uid"])
    exe = proc.resolve(p["args"][0], env)
    if slave is not None:
        os.setsid()
        proc.take_tty(slave)
    proc.fix_stdio(p["user"]["uid"], p["user"]["gid"])
    nnp = p["noNewPrivileges"]
    if bpf and not nnp:
        _syscalls.seccomp_set_filter(bpf, rec.get("seccomp_flags") or 0)  # needs CAP_SYS_ADMIN: before the cut
    proc.finalize(p["capabilities"], p["user"], nnp)
    first_closed = 3 + preserve
    for fd in range(3, first_closed):
        os.set_inheritable(fd, True)
    keep = errw  # close-on-exec: closing at execve is how the parent learns it succeeded
    os.closerange(first_closed, keep)
    os.closerange(keep + 1, 1 << 16)
    signals.reset_dispositions()
    if bpf and nnp:
        _syscalls.seccomp_set_filter(bpf, rec.get("seccomp_flags") or 0)
    # an empty mask, not the caller's: what the engine blocks is not the program's business
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        os.execve(exe, p["args"], env)
    except OSError as e:
        raise ExecError(f'exec "{p["args"][0]}": {e.strerror.lower()}', EXIT_NOT_FOUND if e.errno == errno.ENOENT
                        else EXIT_CANNOT_EXEC) from None  # fmt: skip
