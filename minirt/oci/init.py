"""The OCI container's init, from fork to execve: namespaces, the bundle's rootfs and mounts,
identity, then parked on exec.fifo until `start`.

Runs in: the process `minirt-oci create` forks; after create exits it is re-parented to the
engine's subreaper (conmon, containerd's shim), which waits for it. Nothing here may depend on
the create process once PARKED is sent: the parent-death signal that protects the set-up is
cleared just before, and the sync socket is closed.

Order (runc's nsexec + standard_init_linux.go + rootfs_linux.go prepareRootfs):

    [user ns: wait for the maps, become uid/gid 0]
    unshare the new namespaces (those joined by path, and pid, came with the fork)
    setsid, NS_READY  ->                  parent: cgroup made, limits written, we are moved in
                      <-  CGROUP
    [cgroup ns]  propagation of / (rslave or rootfsPropagation), rootfs bound on itself,
    config.json's mounts in order, /dev nodes and links
    HOOKS             ->                  parent: prestart + createRuntime hooks
                      <-  HOOKS_DONE {state}
    createContainer hooks (our namespaces, before pivot_root)
    pivot_root (or MS_MOVE + chroot with --no-pivot)
    umask, console (pty sent to --console-socket), /dev read-only, read-only root, hostname,
    domainname, sysctl, readonlyPaths, maskedPaths, no_new_privs, [seccomp without
    no_new_privs], rlimits, cwd, program resolved (a missing one fails create), capabilities
    and user
    PARKED            ->                  parent: pid file, state "created", exit 0
    open exec.fifo for writing (blocks until `start` opens it to read), write one byte
    startContainer hooks, [seccomp with no_new_privs], close fds, execve
"""

# Every module the init needs is imported here, up front: after the uid change of a user
# namespace the interpreter's files may be out of reach, after pivot_root they are gone.
import errno
import os
import resource  # noqa: F401 - proc.set_rlimits
import shutil  # tmpcopyup
import _signal as signal
import _socket
import stat
import subprocess  # noqa: F401 - hooks
import traceback  # MINIRT_DEBUG error locations

from minirt import _syscalls, libc, rootfs
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, MinirtError
from minirt.net import loopback
from minirt.oci import hooks, proc
from minirt.oci.spec import MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SHARED, MS_SLAVE, NAMESPACES
from minirt.process import signals
from minirt.process.sync import CGROUP, NS_READY, Channel

MAPS, HOOKS, HOOKS_DONE, PARKED = "maps", "hooks", "hooks-done", "parked"
MS_MOVE, MS_PRIVATE = 0x2000, 1 << 18
# rootfs.DEVICES: null, zero, full, random, urandom, tty, as runc's default devices
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"))  # fmt: skip
_ST_FLAGS = ((os.ST_NOSUID, 0x2), (os.ST_NODEV, 0x4), (os.ST_NOEXEC, 0x8), (os.ST_NOATIME, 0x400),
             (os.ST_NODIRATIME, 0x800), (os.ST_RELATIME, 1 << 21))  # fmt: skip


class Context:
    """What create hands the init besides the spec: fds it opened, flags it was given."""

    __slots__ = ("fifo_fd", "console", "preserve_fds", "no_pivot", "seccomp_bpf", "seccomp_flags")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))


def child_main(ch: Channel, sp, ctx: Context) -> "NoReturn":  # noqa: F821
    code = 1
    parked = False
    try:
        # Protect the set-up: if create dies now, so do we (cleared before PARKED: after it the
        # init belongs to the engine's subreaper, not to create).
        _syscalls.prctl(proc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if sp.cfg.uidmap:
            ch.expect(MAPS)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            os.setgroups([])
            _syscalls.prctl(proc.PR_SET_PDEATHSIG, signal.SIGKILL)  # the credential change cleared it
        flags = 0
        for typ, path in sp.namespaces.items():
            if path is None and typ not in ("pid", "user", "cgroup"):
                flags |= NAMESPACES[typ][1]
        os.unshare(flags)
        if "network" in sp.namespaces and not sp.namespaces["network"]:
            # runc sets up its "loopback" network for a namespace it made (specconv), none for a
            # joined one: the engine owns that
            loopback.up()
        os.setsid()  # runc's init is a session leader (nsexec), the tty's controlling process
        ch.send(NS_READY)
        cg = ch.expect(CGROUP)
        if "cgroup" in sp.namespaces and sp.namespaces["cgroup"] is None:
            os.unshare(os.CLONE_NEWCGROUP)  # now that we are in our cgroup: it is the new root
        dev_ro = prepare_rootfs(sp, cg)
        ch.send(HOOKS)
        state = ch.expect(HOOKS_DONE)["state"]
        if sp.hooks.get("createContainer"):
            hooks.run(sp.hooks["createContainer"], state)
        if ctx.no_pivot:
            move_root(sp.root)
        else:
            rootfs.pivot(sp.root)
        if sp.propagation & MS_SHARED:
            libc.mount("none", "/", None, sp.propagation)  # pivot_root left / rslave
        finalize_rootfs(sp, ctx, dev_ro)
        env = dict(e.partition("=")[::2] for e in sp.process["env"])
        exe = configure_process(sp.process, env)
        identity(sp, ctx)
        _syscalls.prctl(proc.PR_SET_PDEATHSIG, 0)
        ch.send(PARKED)
        ch.close()
        parked = True
        wait_for_start(ctx.fifo_fd)
        if sp.hooks.get("startContainer"):
            state["status"] = "created"
            hooks.run(sp.hooks["startContainer"], state)
        exec_process(exe, sp.process, env, ctx, seccomp_now=sp.no_new_privs)
    except MinirtError as e:
        code = e.exit_code if e.exit_code in (EXIT_CANNOT_EXEC, EXIT_NOT_FOUND) else 1
        _report(ch, parked, str(e), code)
    except hooks.HookError as e:
        _report(ch, parked, str(e), code)
    except OSError as e:
        where = ""
        if os.environ.get("MINIRT_DEBUG"):
            frames = reversed(traceback.extract_tb(e.__traceback__))
            where = " [" + " <- ".join(f"{f.name}:{f.lineno}" for f in frames) + "]"
        _report(ch, parked, f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else "") + where,
                code)
    except BaseException as e:  # noqa: BLE001 - never return into create's code
        _report(ch, parked, f"internal error in container init: {e!r}", code)
    finally:
        os._exit(code)


def _report(ch: Channel, parked: bool, message: str, code: int) -> None:
    """Before PARKED create reports the error; after it nobody listens but the container's own
    stderr (the engine's log), where runc's init writes its late errors too."""
    if not parked:
        ch.report_error(message, code)
        return
    try:
        os.write(2, f"minirt-oci: {message}\n".encode(errors="replace"))
    except OSError:
        pass


# --- the filesystem ------------------------------------------------------------------------------

def prepare_rootfs(sp, cg: dict) -> bool:
    """Everything before pivot_root (runc prepareRootfs). Returns whether /dev is to be made
    read-only at the end (its nodes are created first)."""
    root = sp.root
    # runc prepareRoot: rslave by default, so nothing we mount reaches the host
    libc.mount("none", "/", None, sp.propagation or (MS_SLAVE | MS_REC))
    if sp.propagation & MS_SHARED:
        _parent_mount_private(root)  # pivot_root refuses a new root whose parent mount is shared
    libc.mount(root, root, None, MS_BIND | MS_REC)  # a mount point of its own, for pivot_root
    dev_bound = any(m.destination == "/dev" and m.bind for m in sp.mounts)
    dev_ro = False
    userns = bool(sp.cfg.uidmap)
    for m in sp.mounts:
        if m.destination == "/dev" and not m.bind and m.flags & MS_RDONLY:
            dev_ro = True  # runc: /dev gets its nodes first, read-only at finalizeRootfs
            m = type(m)(m.destination, m.type, m.source, m.flags & ~MS_RDONLY, m.propagation, m.data, m.options,
                        m.copyup)
        mount_entry(root, m, cg, sp)
    if not dev_bound:
        setup_dev(root, sp.cfg.devices or [], userns)
    cwd = rootfs.secure_join(root, sp.process["cwd"])
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)  # runc creates a missing cwd (createCwd)
    return dev_ro


def _parent_mount_private(root: str) -> None:
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if (root == point or root.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    libc.mount("none", best, None, MS_PRIVATE)


def _statfs_flags(path: str) -> int:
    """The locked per-mount flags of what is at path, to keep on a remount (a user namespace
    may not clear nosuid/nodev/noexec of a mount it did not make: runc reads statfs the same)."""
    st = os.statvfs(path)
    return sum(flag for st_bit, flag in _ST_FLAGS if st.f_flag & st_bit)


def _remount(dest: str, flags: int) -> None:
    try:
        libc.mount("none", dest, None, flags | MS_REMOUNT | MS_BIND)
    except PermissionError:
        libc.mount("none", dest, None, flags | MS_REMOUNT | MS_BIND | _statfs_flags(dest))


def mount_entry(root: str, m, cg: dict, sp) -> None:
    """One entry of config.json's mounts (runc mountToRootfs): the destination resolved inside
    the rootfs (securejoin: a symlink in the image cannot send a mount to the host), created if
    missing (a file for a bind of a file), then the mount, a remount for the flags a bind cannot
    take at once, and the propagation changes."""
    dest = rootfs.secure_join(root, m.destination)
    if m.type in ("cgroup", "cgroup2"):
        os.makedirs(dest, 0o755, exist_ok=True)
        _mount_cgroup(dest, m, cg, "cgroup" in sp.namespaces)
    elif m.bind:
        try:
            src_is_dir = stat.S_ISDIR(os.stat(m.source).st_mode)
        except FileNotFoundError:
            raise MinirtError(f"mount {m.destination}: source {m.source} does not exist") from None
        if src_is_dir:
            os.makedirs(dest, 0o755, exist_ok=True)
        elif not os.path.exists(dest):
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        libc.mount(m.source, dest, None, MS_BIND | (m.flags & MS_REC))
        rest = m.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
        if rest:
            _remount(dest, rest)  # mount(2) ignores the other flags on the MS_BIND call itself
    elif m.copyup:
        _mount_tmpfs_copyup(dest, m)
    else:
        os.makedirs(dest, 0o755, exist_ok=True)
        try:
            libc.mount(m.source or m.type, dest, m.type, m.flags, m.data or None)
        except PermissionError:
            if m.type != "sysfs":
                raise
            # sysfs needs a network namespace our user namespace owns; runc binds /sys then
            libc.mount("/sys", dest, None, MS_BIND | MS_REC)
            _remount(dest, m.flags & ~MS_REC)
    for p in m.propagation:
        libc.mount("none", dest, None, p)


def _mount_tmpfs_copyup(dest: str, m) -> None:
    """tmpcopyup (runc's extension, podman's --tmpfs on an image directory): the tmpfs starts
    with what the image has there. The directory underneath stays reachable through an fd taken
    before the mount (/proc/self/fd/N walks the covered tree), so no staging mount is needed;
    the flags (ro) are applied after the copy."""
    os.makedirs(dest, 0o755, exist_ok=True)
    under = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc.mount(m.source or "tmpfs", dest, "tmpfs", m.flags & ~MS_RDONLY, m.data or None)
        shutil.copytree(f"/proc/self/fd/{under}", dest, symlinks=True, dirs_exist_ok=True)
    finally:
        os.close(under)
    if m.flags & MS_RDONLY:
        libc.mount("none", dest, None, MS_REMOUNT | (m.flags & ~MS_REC))


def _mount_cgroup(dest: str, m, cg: dict, private: bool) -> None:
    """A `cgroup` mount as runc makes it: v1, a tmpfs with a bind of the container's directory
    per controller (the hierarchy's root as the container sees it); v2, cgroup2 in a private
    cgroup namespace, else a bind of the container's directory. Read-only unless asked rw."""
    ro = m.flags & MS_RDONLY
    safe = 0x2 | 0x4 | 0x8  # nosuid, nodev, noexec
    dirs = cg.get("dirs") or {}
    if cg.get("version") == 2:
        if private:
            libc.mount("cgroup2", dest, "cgroup2", safe | ro)
        else:
            libc.mount(dirs[""], dest, None, MS_BIND)
            _remount(dest, safe | ro)
        return
    libc.mount("tmpfs", dest, "tmpfs", safe, "mode=755")
    for name, d in dirs.items():
        if name == "unified":
            continue  # hybrid mode's v2 twin: runc on v1 shows the controllers only
        os.mkdir(f"{dest}/{name}")
        libc.mount(d, f"{dest}/{name}", None, MS_BIND)
        _remount(f"{dest}/{name}", safe | ro)
    if ro:
        libc.mount("none", dest, None, MS_REMOUNT | MS_RDONLY | safe, "mode=755")


def setup_dev(root: str, devices: list, userns: bool) -> None:
    """runc's createDevices + setupPtmx + setupDevSymlinks for a /dev that is not the host's:
    the default nodes (null, zero, full, random, urandom, tty), linux.devices, /dev/ptmx ->
    pts/ptmx and the fd links. In a user namespace nodes are bind mounts of the host's."""
    dev = root + "/dev"
    os.makedirs(dev, 0o755, exist_ok=True)
    old = os.umask(0)
    try:
        for name, major, minor in rootfs.DEVICES:
            path = f"{dev}/{name}"
            if os.path.lexists(path):
                continue
            if userns:
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
                libc.mount(f"/dev/{name}", path, None, MS_BIND)
            else:
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for d in devices:
            if d["type"] == "p":
                dest = rootfs.secure_join(root, d["path_in_container"])
                os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
                if os.path.lexists(dest):
                    os.unlink(dest)
                os.mkfifo(dest, d["mode"])
                os.chown(dest, d["uid"], d["gid"])
                continue
            rootfs.make_device(root, dict(d, path_on_host=d["path_in_container"]), bind=userns)
    finally:
        os.umask(old)
    ptmx = dev + "/ptmx"
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)
    for name, target in DEV_LINKS:
        if not os.path.lexists(f"{dev}/{name}"):
            os.symlink(target, f"{dev}/{name}")


def move_root(root: str) -> None:
    """--no-pivot (runc msMoveRoot): move the rootfs mount onto / and chroot into it. For
    ramdisk roots where pivot_root cannot work; weaker than pivot_root, since the old root
    stays underneath (a process with CAP_SYS_CHROOT can get back to it), as runc warns."""
    os.chdir(root)
    libc.mount(root, "/", None, MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def finalize_rootfs(sp, ctx: Context, dev_ro: bool) -> None:
    """After pivot_root, runc's standard_init order: console, /dev and / read-only, hostname,
    domainname, sysctl, readonlyPaths, maskedPaths."""
    os.umask(0o022 if sp.umask is None else sp.umask)
    if sp.terminal:
        master, slave = proc.open_pty("/dev/pts")
        proc.set_size(slave, sp.console_size)
        proc.send_console(ctx.console, master)
        os.close(master)
        ctx.console.close()
        ctx.console = None
        proc.take_tty(slave)
    if dev_ro:
        _remount("/dev", MS_RDONLY)
    if sp.readonly:
        try:
            rootfs.remount_root_readonly()
        except PermissionError:
            libc.mount("none", "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | _statfs_flags("/"))
    if sp.cfg.hostname:
        _socket.sethostname(sp.cfg.hostname)
    if sp.domainname:
        _write("/proc/sys/kernel/domainname", sp.domainname)  # our UTS namespace's
    for key, value in (sp.cfg.sysctls or {}).items():
        _write("/proc/sys/" + key.replace(".", "/"), value)
    for p in sp.readonly_paths:
        try:
            libc.mount(p, p, None, MS_BIND | MS_REC)
        except FileNotFoundError:
            continue
        _remount(p, MS_RDONLY | MS_REC)
    for p in sp.masked_paths:
        try:
            libc.mount("/dev/null", p, None, MS_BIND)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno != errno.ENOTDIR:
                raise
            libc.mount("tmpfs", p, "tmpfs", MS_RDONLY)  # a directory: an empty read-only tmpfs


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


# --- the process ---------------------------------------------------------------------------------

def configure_process(p: dict, env: dict) -> str:
    """Rlimits, cwd, HOME, the program resolved, stdio handed over, capabilities and user.
    Returns the program's path. The seccomp filter without no_new_privs comes before the
    capabilities are cut (runc: loading it needs CAP_SYS_ADMIN then)."""
    proc.set_rlimits(p["rlimits"])
    user = p["user"]
    try:
        os.chdir(p["cwd"])
    except OSError as e:
        raise MinirtError(f"chdir to cwd ({p['cwd']!r}) set in config.json failed: {e.strerror.lower()}") from None
    if "HOME" not in env:
        env["HOME"] = proc.home_of(user["uid"])
    exe = proc.resolve(p["args"][0], env)
    proc.fix_stdio(user["uid"], user["gid"])
    return exe


def wait_for_start(fifo_fd: int) -> None:
    """Block until `start` opens exec.fifo for reading, then write the byte it reads (runc: the
    fifo is reopened through /proc/self/fd, since its path is outside our root now)."""
    fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
        os.close(fifo_fd)


def exec_process(exe: str, p: dict, env: dict, ctx: Context, seccomp_now: bool) -> None:
    """The last steps: only stdio and --preserve-fds cross into the program (runc
    CVE-2024-21626), every signal at its default, the filter, execve."""
    first_closed = 3 + (ctx.preserve_fds or 0)
    for fd in range(3, first_closed):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    os.closerange(first_closed, 1 << 16)
    signals.reset_dispositions()
    if ctx.seccomp_bpf and seccomp_now:
        _syscalls.seccomp_set_filter(ctx.seccomp_bpf, ctx.seccomp_flags or 0)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        os.execve(exe, p["args"], env)
    except OSError as e:
        raise MinirtError(f'exec "{p["args"][0]}": {e.strerror.lower()}') from None


def identity(sp, ctx: Context) -> None:
    """no_new_privs, the early seccomp filter, capabilities and user (runc finalizeNamespace)."""
    if ctx.seccomp_bpf and not sp.no_new_privs:
        _syscalls.seccomp_set_filter(ctx.seccomp_bpf, ctx.seccomp_flags or 0)
    proc.finalize(sp.caps, sp.user, sp.no_new_privs)
