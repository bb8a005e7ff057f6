"""`minirt-oci create`: fork the container's init, make its cgroup, run the runtime-side hooks,
and exit once the init is parked on exec.fifo (runc's model: no minirt process stays behind).

Runs in: the engine's `create` call (conmon, containerd's shim), host namespaces apart from the
moment of the fork. Steps, each undone on failure (nothing is left: no init, no cgroup, no
state directory):

    config.json checked (spec.py) -> seccomp compiled -> <root>/<id>/ (O_EXCL: one owner) with
    state.json "creating" -> exec.fifo -> the cgroup's place written in the state
    -> namespaces joined by path (setns here, so the fork inherits them; restored right after)
    -> fork (unshare(CLONE_NEWPID) first, or clone3 with CLONE_NEWUSER|CLONE_NEWPID)
    -> [uid_map, gid_map -> MAPS] -> cgroup made, resources and device rules written, init moved
    in, oom_score_adj -> CGROUP -> NS_READY -> HOOKS: prestart, createRuntime -> HOOKS_DONE
    -> PARKED -> pid file, state "created" -> exit 0

The init does the rest inside (minirt/oci/init.py). Networking is the engine's: minirt-oci
makes a new network namespace or joins the given one, and nothing else (as runc).
"""

import json
import os
import time

from minirt import procfs
from minirt.errors import ConflictError, MinirtError
from minirt.oci import cgroup as ocicg
from minirt.oci import fds, hooks, log
from minirt.oci import state as ocistate
from minirt.oci.spec import NAMESPACES, SPEC_VERSION
from minirt.process.sync import CGROUP, NS_READY, Channel

O_PATH = 0o10000000


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def create(root: str, sp, console_path: str | None, pid_file: str | None, no_pivot: bool, preserve: int) -> None:
    from minirt.oci import init as ociinit

    cid = sp.cfg.id
    bpf = _seccomp(sp)
    os.makedirs(root, 0o700, exist_ok=True)
    cdir = ocistate.container_dir(root, cid)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        raise ConflictError(f"container with id exists: {cid}") from None
    rec = {
        "ociVersion": SPEC_VERSION, "id": cid, "status": "creating", "pid": 0, "start_time": None,
        "bundle": sp.bundle, "rootfs": sp.root, "created": _now(), "annotations": sp.annotations,
        "creator": {"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())},
        "process": sp.process, "namespaces": sp.namespaces, "uidmap": sp.cfg.uidmap, "gidmap": sp.cfg.gidmap,
        "hooks": {k: [h.to_dict() for h in v] for k, v in sp.hooks.items() if k in ("poststart", "poststop")},
        "seccomp_flags": sp.seccomp_flags, "no_new_privs": sp.no_new_privs,
    }  # fmt: skip
    child_pid, pidfd, cg, console = 0, -1, None, None
    fifo_fd = -1
    ok = False
    try:
        ocistate.save(root, rec)
        if bpf:
            with open(f"{cdir}/seccomp.bpf", "wb") as f:
                f.write(bpf)
        fifo = ocistate.fifo_path(root, cid)
        old = os.umask(0)
        try:
            os.mkfifo(fifo, 0o622)  # runc: writable by the container's root, whoever it maps to
        finally:
            os.umask(old)
        if sp.cfg.uidmap:
            from minirt import userns

            os.chown(fifo, userns.to_host(sp.cfg.uidmap, 0), userns.to_host(sp.cfg.gidmap, 0))
        fifo_fd = os.open(fifo, O_PATH | os.O_CLOEXEC)  # the init reopens it via /proc/self/fd
        if console_path:
            console = fds.connect_console(console_path)
        cg = ocicg.for_spec(sp)
        rec["cgroup"] = cg.to_dict()
        ocistate.save(root, rec)  # persist before the point of no return: delete finds the cgroup
        ctx = ociinit.Context(fifo_fd=fifo_fd, console=console, preserve_fds=preserve, no_pivot=no_pivot,
                              seccomp_bpf=bpf or None, seccomp_flags=sp.seccomp_flags)  # fmt: skip
        ch, child_pid, pidfd = _fork(sp, ctx)
        if sp.cfg.uidmap:
            from minirt import userns
            from minirt.oci.init import MAPS

            userns.write_maps(child_pid, sp.cfg.uidmap, sp.cfg.gidmap)
            ch.send(MAPS)
        cg.create()
        if sp.resources:
            ocicg.apply_resources(cg, sp.resources)
        cg.apply_devices(sp.device_rules)
        cg.place(child_pid)
        if sp.process["oomScoreAdj"] is not None:
            with open(f"/proc/{child_pid}/oom_score_adj", "w") as f:
                f.write(str(sp.process["oomScoreAdj"]))
        ch.send(CGROUP, **cg.to_dict())
        ch.expect(NS_READY)
        ch.expect(ociinit.HOOKS)
        st = {"ociVersion": SPEC_VERSION, "id": cid, "status": "creating", "pid": child_pid, "bundle": sp.bundle,
              "annotations": sp.annotations}  # fmt: skip
        for kind in ("prestart", "createRuntime"):
            if sp.hooks.get(kind):
                try:
                    hooks.run(sp.hooks[kind], st, cwd=sp.bundle)
                except hooks.HookError as e:
                    raise MinirtError(f"{kind} hook: {e}") from None
        ch.send(ociinit.HOOKS_DONE, state=st)
        ch.expect(ociinit.PARKED)
        ch.close()
        rec.update(status="created", pid=child_pid, start_time=procfs.start_time(child_pid))
        ocistate.save(root, rec)
        if pid_file:
            fds.write_pid_file(pid_file, child_pid)
        ok = True
    finally:
        if console is not None:
            console.close()
        if fifo_fd >= 0:
            os.close(fifo_fd)
        if not ok:
            _rollback(cdir, child_pid, pidfd, cg)
        elif pidfd >= 0:
            os.close(pidfd)
    log.debug(f"created {cid}: init {child_pid}")


def _seccomp(sp) -> bytes:
    """The filter, compiled before anything exists (a bad profile fails create with nothing to
    undo). OCI profiles name no capabilities, so none are passed; names this libseccomp does
    not know are skipped as runc does, with a debug line."""
    if sp.seccomp is None:
        return b""
    from minirt.seccomp.compile import compile_profile

    bpf, skipped = compile_profile(json.dumps(sp.seccomp).encode(), (), where="(config.json linux.seccomp)")
    if skipped:
        log.debug(f"seccomp: syscalls unknown to libseccomp skipped: {', '.join(skipped)}")
    return bpf


def _fork(sp, ctx) -> tuple[Channel, int, int]:
    """Fork the init. Namespaces given by path are entered here first and left right after
    the fork, so the init starts in them (it cannot setns into a network namespace once inside
    a new user namespace: that one would not own it); a new pid namespace comes with the fork
    (unshare(CLONE_NEWPID) before it, or clone3 with the new user namespace, as spawn.py)."""
    parent_ch, child_ch = Channel.pair()
    saved: list[tuple[int, int]] = []
    try:
        for typ, path in sp.namespaces.items():
            if not path:
                continue
            name, flag = NAMESPACES[typ]
            saved.append((os.open(f"/proc/self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag))
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise MinirtError(f"joining the {typ} namespace {path}: {e.strerror}") from None
            try:
                os.setns(fd, flag)
            except OSError as e:
                raise MinirtError(f"joining the {typ} namespace {path}: {e.strerror}") from None
            finally:
                os.close(fd)
        new_pid = "pid" in sp.namespaces and not sp.namespaces["pid"]
        if sp.cfg.uidmap:
            from minirt import _syscalls, userns

            pid, pidfd = _syscalls.clone_fork(userns.CLONE_NEWUSER | (os.CLONE_NEWPID if new_pid else 0))
        else:
            if new_pid:
                saved.append((os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC), os.CLONE_NEWPID))
                os.unshare(os.CLONE_NEWPID)
            pid = os.fork()
            pidfd = -1
        if pid == 0:
            try:
                parent_ch.close()
                from minirt.oci import init

                init.child_main(child_ch, sp, ctx)
            finally:
                os._exit(1)
        if pidfd < 0:
            pidfd = os.pidfd_open(pid)
    finally:
        for fd, flag in reversed(saved):
            os.setns(fd, flag)
            os.close(fd)
        child_ch.close()
    return parent_ch, pid, pidfd


def _rollback(cdir: str, pid: int, pidfd: int, cg) -> None:
    """create failed: kill and reap the init, remove the cgroup and the state directory."""
    import shutil
    import signal

    if pid:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(pidfd)
    if cg is not None:
        try:
            cg.remove()
        except OSError as e:
            log.warning(f"removing the cgroup after a failed create: {e}")
    shutil.rmtree(cdir, ignore_errors=True)
