"""The container's filesystem view: private propagation, overlay, /proc /sys /dev, volumes, pivot_root.

Runs in: the container init, inside its new mount namespace, before pivot_root. Nothing here is
visible on the host: propagation is made slave first, so every mount below lives and dies with
the container's mount namespace (the overlay included: the host never holds a minirt mount).

The order follows runc's prepareRootfs (libcontainer/rootfs_linux.go): rootfs mount, then
/proc /sys /dev, then user mounts, then masks, then pivot_root; Docker's defaults come from
moby oci/defaults.go (mounts, masked and read-only paths).
"""

import errno
import os
import stat

from minirt import libc
from minirt.libc import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE

# moby oci/defaults.go DefaultLinuxSpec: MaskedPaths / ReadonlyPaths.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# (name, major, minor): the character devices runc/Docker create by default (AllowedDevices).
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))  # fmt: skip


def make_private() -> None:
    """Stop mount events flowing from us to the host: MS_SLAVE|MS_REC on / (runc's default
    rootfsPropagation). Host mounts still reach us; ours never reach the host."""
    libc.mount("none", "/", None, MS_REC | MS_SLAVE)


def mount_overlay(lower: str, upper: str, work: str, merged: str) -> None:
    """The shared rootfs is the read-only lower layer; writes go to the per-container upper."""
    libc.mount("overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")


# mount(2) copies at most one page of options (copy_mount_options): lowerdir lists longer than
# this go through fsconfig(2)'s "lowerdir+", one layer per call (Linux 6.8).
MOUNT_DATA_MAX = 4095


def mount_image_overlay(lowers: list[str], upper: str, work: str, merged: str, userxattr: bool = False) -> None:
    """An image's layers as lowerdirs (top first). Layers are <store>/layers/<hex>/root (or,
    in a user namespace, <container>/lower/<i>, each idmapped), so the options name them
    relative to their common parent, after a chdir there, as Docker's overlay2 does with its
    short l/ links: 69 bytes a layer from the store, ~58 layers in one page. More than fit
    (a page of options) go through the new mount API instead of failing."""
    if not lowers[0].startswith("/"):
        # relative to the cwd already (a user namespace: the init works from its container
        # directory, the parents above it are out of container root's reach)
        data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}" + (",userxattr" if userxattr else "")
        if len(data) <= MOUNT_DATA_MAX:
            libc.mount("overlay", merged, "overlay", 0, data)
            return
        _mount_overlay_fsconfig(lowers, upper, work, merged, userxattr)
        return
    base = os.path.commonpath([os.path.dirname(p) for p in lowers])
    if base != "/":
        rel = [p[len(base) + 1 :] for p in lowers]
        data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work}" + (",userxattr" if userxattr else "")
        if len(data) <= MOUNT_DATA_MAX:
            cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # O_PATH: no read right needed
            try:
                os.chdir(base)
                libc.mount("overlay", merged, "overlay", 0, data)
            finally:
                os.fchdir(cwd)
                os.close(cwd)
            return
    _mount_overlay_fsconfig(lowers, upper, work, merged, userxattr)


def _mount_overlay_fsconfig(lowers: list[str], upper: str, work: str, merged: str, userxattr: bool = False) -> None:
    """fsopen("overlay"), one FSCONFIG_SET_STRING "lowerdir+" per layer (no page limit on the
    whole list), upperdir, workdir, create, fsmount, move_mount. ctypes (4 ms) only here: an
    image this deep is rare. Syscall numbers are the same on every architecture since 5.2."""
    import ctypes

    from minirt._syscalls import move_mount

    libc_ = ctypes.CDLL(None, use_errno=True)
    sysc = libc_.syscall
    sysc.restype = ctypes.c_long
    SYS_fsopen, SYS_fsconfig, SYS_fsmount = 430, 431, 432
    FSOPEN_CLOEXEC, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE, FSMOUNT_CLOEXEC = 1, 0, 1, 6, 1

    def check(rc: int, what: str) -> int:
        if rc < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return rc

    fs = check(sysc(SYS_fsopen, b"overlay", FSOPEN_CLOEXEC), "fsopen overlay")
    try:
        for p in lowers:
            rc = sysc(SYS_fsconfig, fs, FSCONFIG_SET_STRING, b"lowerdir+", p.encode(), 0)
            if rc < 0 and ctypes.get_errno() == errno.EINVAL:
                raise OSError(errno.EINVAL, f"overlay lowerdir+ (an image of {len(lowers)} layers needs Linux 6.8)")
            check(rc, f"overlay lowerdir+ {p}")
        for key, value in (("upperdir", upper), ("workdir", work)):
            check(sysc(SYS_fsconfig, fs, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0), f"overlay {key}")
        if userxattr:
            check(sysc(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, b"userxattr", None, 0), "overlay userxattr")
        check(sysc(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, None, None, 0), "overlay create")
        mnt = check(sysc(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0), "fsmount overlay")
    finally:
        os.close(fs)
    try:
        move_mount(mnt, merged)
    finally:
        os.close(mnt)


def attach(fd: int, target: str) -> None:
    """Attach a detached mount (open_tree from the parent, passed over the sync socket) at
    target in our mount namespace, then close our copy of its fd."""
    from minirt._syscalls import move_mount

    try:
        move_mount(fd, target)
    finally:
        os.close(fd)


def secure_join(root: str, path: str) -> str:
    """root + path with every symlink resolved inside root (runc's securejoin), so a rootfs link
    such as /data -> /etc cannot send a mount to the host's /etc."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join(resolved + [part])
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, "too many symlinks", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root + "/" + "/".join(resolved)


def _mkdir(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def mount_proc_sys(root: str, new_netns: bool, privileged: bool) -> None:
    _mkdir(root + "/proc")
    libc.mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mkdir(root + "/sys")
    ro = 0 if privileged else MS_RDONLY
    if new_netns:
        libc.mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro)
    else:
        # sysfs may only be mounted by the owner of the current netns view; with --net host we
        # bind the host's /sys instead (runc does the same when it shares the netns).
        libc.mount("/sys", root + "/sys", None, MS_BIND | MS_REC)
        if ro:
            libc.mount("none", root + "/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def mount_cgroups(root: str, cg: dict, private: bool, privileged: bool) -> None:
    """/sys/fs/cgroup as Docker shows it: the container's own cgroup as each hierarchy's root,
    read-only (writable with --privileged). v1: a tmpfs holding one bind of the container's
    directory per controller (runc mounts each at its cgroup path the same way). v2: a cgroup2
    mount in a private cgroup namespace (its root is the container's cgroup), a bind of the
    directory otherwise."""
    dest = root + "/sys/fs/cgroup"
    ro = 0 if privileged else MS_RDONLY
    safe = MS_NOSUID | MS_NODEV | MS_NOEXEC
    dirs = cg.get("dirs") or {}
    if cg.get("version") == 2:
        if private:
            libc.mount("cgroup2", dest, "cgroup2", safe | ro)
        else:
            _bind(dirs[""], dest, ro | safe)
        return
    libc.mount("tmpfs", dest, "tmpfs", safe, "mode=755")
    for name, d in dirs.items():
        if name != "unified":  # hybrid mode's v2 twin: Docker on v1 shows only the controllers
            os.mkdir(f"{dest}/{name}")
            _bind(d, f"{dest}/{name}", ro | safe)
    if ro:
        libc.mount("none", dest, None, MS_REMOUNT | MS_RDONLY | safe, "mode=755")


def _bind(source: str, dest: str, flags: int) -> None:
    """A bind mount with `flags` (MS_RDONLY, MS_NOSUID, ...): those need a second, remounting
    call, since mount(2) ignores them on the MS_BIND call itself."""
    libc.mount(source, dest, None, MS_BIND)
    if flags:
        libc.mount("none", dest, None, MS_REMOUNT | MS_BIND | flags)


def mount_dev(root: str, bind_nodes: bool = False) -> None:
    """A minimal /dev on tmpfs, as Docker builds it: device nodes, devpts (newinstance), shm,
    mqueue and the fd/stdin/stdout/stderr links. bind_nodes (user namespace): mknod(2) of a
    device needs CAP_MKNOD in the initial user namespace, so the host's nodes are bound onto
    empty files instead, as runc does (rootfs_linux.go bindMountDeviceNode)."""
    dev = root + "/dev"
    _mkdir(dev)
    libc.mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        if bind_nodes:
            os.close(os.open(f"{dev}/{name}", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            libc.mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
            continue
        os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)  # mknod honours the umask
    os.mkdir(dev + "/pts")
    # newinstance: a private pty namespace; ptmxmode so /dev/ptmx -> pts/ptmx is usable.
    libc.mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(dev + "/shm")
    libc.mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    os.mkdir(dev + "/mqueue")
    libc.mount("mqueue", dev + "/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")


def make_device(root: str, dev: dict, bind: bool = False) -> None:
    """--device: a node with the host node's type, numbers, mode and owner (runc's mknodDevice:
    mknod with the spec's FileMode, then chown to its uid/gid; moby copies those from the host
    node). One already there, such as our own /dev/null for `--device /dev/null`, is replaced.
    Creating it needs `m` in the devices cgroup: the default rules allow it for every char and
    block device (cgroups/devices.py); opening it is what they guard. bind (user namespace):
    no mknod there, so the host's node is bound onto an empty file, as mount_dev does."""
    dest = secure_join(root, dev["path_in_container"])
    _mkdir(os.path.dirname(dest))
    if os.path.lexists(dest):
        if bind and os.path.ismount(dest):
            libc.umount2(dest, libc.MNT_DETACH)
        os.unlink(dest)
    if bind:
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        libc.mount(dev["path_on_host"], dest, None, MS_BIND)
        return
    kind = stat.S_IFBLK if dev["type"] == "b" else stat.S_IFCHR
    os.mknod(dest, kind | dev["mode"], os.makedev(dev["major"], dev["minor"]))
    os.chmod(dest, dev["mode"])  # mknod honours the umask
    os.chown(dest, dev["uid"], dev["gid"])


def remount_root_readonly() -> None:
    """--read-only, after pivot_root: the root mount itself becomes read-only (runc's
    setReadonly: MS_BIND|MS_REMOUNT|MS_RDONLY on "/"). A bind remount changes only this mount's
    flags, not the overlay's superblock, and no submount: /dev, /dev/shm, /dev/mqueue, /proc,
    --tmpfs and -v mounts stay as they were. Writes elsewhere get EROFS."""
    libc.mount("none", "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def mount_volume(root: str, source: str, target: str, readonly: bool, tree: int = -1) -> None:
    """-v: recursive bind (Docker's rbind), then a read-only remount for :ro. tree (user
    namespace): the source as a detached recursive clone the parent made (userns.py)."""
    dest = secure_join(root, target)
    # the tree's own fd: container root may not be able to stat the source by its host path
    if stat.S_ISDIR(os.fstat(tree).st_mode) if tree >= 0 else os.path.isdir(source):
        _mkdir(dest)
    elif not os.path.exists(dest):
        _mkdir(os.path.dirname(dest))
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    if tree >= 0:
        attach(tree, dest)
    else:
        libc.mount(source, dest, None, MS_BIND | MS_REC)
    if readonly:
        libc.mount("none", dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def mount_tmpfs(root: str, target: str, options: str) -> None:
    """--tmpfs: Docker's defaults are noexec,nosuid,nodev (docs: "--tmpfs")."""
    dest = secure_join(root, target)
    _mkdir(dest)
    libc.mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options or "mode=1777")


def mask_paths(root: str) -> None:
    """Hide kernel information Docker hides: /dev/null over files, an empty read-only tmpfs
    over directories. Missing paths are skipped (not every kernel has every file)."""
    for p in MASKED_PATHS:
        dest = root + p
        try:
            st = os.stat(dest)
        except (FileNotFoundError, PermissionError):
            continue
        if stat.S_ISDIR(st.st_mode):
            libc.mount("tmpfs", dest, "tmpfs", MS_RDONLY)
        else:
            libc.mount(root + "/dev/null", dest, None, MS_BIND)
    for p in READONLY_PATHS:
        dest = root + p
        if not os.path.exists(dest):
            continue
        libc.mount(dest, dest, None, MS_BIND | MS_REC)
        libc.mount("none", dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC)


def pivot(root: str) -> None:
    """pivot_root(".", ".") then detach the old root (runc pivotRoot): no temporary directory,
    and the old root is made slave first so our unmount does not propagate to the host."""
    os.chdir(root)
    libc.pivot_root(".", ".")
    libc.mount("none", ".", None, MS_SLAVE | MS_REC)
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")


def write_etc_file(name: str, content: str) -> None:
    """Write /etc/<name> inside the container (after pivot_root, so a symlink in the image can
    only point inside it). A symlink is replaced, as Docker's bind mount would shadow it."""
    path = "/etc/" + name
    _mkdir("/etc")
    if os.path.islink(path):
        os.unlink(path)
    with open(path, "w") as f:
        f.write(content)
