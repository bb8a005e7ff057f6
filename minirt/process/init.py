"""The container process from fork to execve: namespaces, rootfs, identity, capabilities, exec.

Runs in: the forked child, PID 1 of the new pid namespace. It never returns into the parent's
code (a forked copy would otherwise run the parent's finally blocks and undo list): every path
ends in execve or os._exit. After pivot_root no module can be imported any more (the host's
filesystem is gone), so everything needed later is imported up front.

Order (after runc's standard_init_linux.go): namespaces -> NS_READY -> lo up -> mounts (and
--device nodes) -> pivot_root -> wait for NET_READY -> --sysctl -> /etc files -> hostname ->
--user resolved (125) -> --read-only remount -> resolve the command (126/127 before the point
of no return) -> --ulimit -> bounding set, user, capabilities, no_new_privs -> EXEC -> seccomp
filter -> execve. The
filesystem is built before NET_READY because it needs nothing from the network: it runs while
the parent sets up the host side.
"""

import errno
import os
# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up).
import _signal as signal
import _socket

import _prctl  # python-prctl's C interface (caps.py says why); imported before pivot_root

from minirt import caps, rootfs, secopts, timing
from minirt._syscalls import seccomp_set_filter
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUNTIME, ExecError, MinirtError
from minirt.process import reaper, signals
from minirt.process.program import exec_user, resolve_command, set_rlimits
from minirt.process.sync import CGROUP, EXEC, NET_READY, NS_READY, USERNS, Channel

STANDARD_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)  # Docker's /etc/hosts preamble (libnetwork/etchosts)


def child_main(ch: Channel, cfg, cdir: str, old_mask: set,
               seccomp_bpf: bytes | None = None) -> "NoReturn":  # noqa: F821
    code = EXIT_RUNTIME
    try:
        # If minirt dies, so does the container (bubblewrap --die-with-parent). The parent may
        # already be gone before this line: the socket EOF at NET_READY catches that case.
        _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)  # prctl.set_pdeathsig
        flags = os.CLONE_NEWNS | os.CLONE_NEWUTS | os.CLONE_NEWIPC
        if cfg.net not in ("host", "container"):
            flags |= os.CLONE_NEWNET
        timing.mark("child-imported")
        host_files = _read_host_files(cfg)
        if cfg.net == "container":  # join the other container's netns
            netns = os.open(f"/proc/{cfg.net_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            os.setns(netns, os.CLONE_NEWNET)
            os.close(netns)
        if cfg.net not in ("host", "container"):
            # imported here: once we are container root the interpreter's own files may be
            # out of reach (a Python installed below a 0700 home directory)
            from minirt.net import loopback
        trees = []
        if cfg.uidmap:
            # Still host uid 0 (unmapped in our namespace, so shown as 65534), which owns the
            # 0700 state directories above cdir; container root will not be able to search
            # them. From cdir down the paths are relative (cdir is 0711: userns.prepare_dirs).
            os.chdir(cdir)
            cdir = "."
            # root of our namespace before the others are made (runc's nsexec order): an ipc
            # namespace's mqueue and the like belong to the ids of their creator
            trees = _become_root(ch, cfg)
        os.unshare(flags)
        ch.send(NS_READY)
        if cfg.net not in ("host", "container"):
            loopback.up()
        # In our cgroup from here on (the parent moved us in before sending CGROUP): a private
        # cgroup namespace made now has it as its root (cgroup_namespaces(7)).
        cg = ch.expect(CGROUP)
        if cfg.cgroupns == "private":
            os.unshare(os.CLONE_NEWCGROUP)
        # The filesystem needs nothing from the network: build it while the parent sets up
        # the host side (2 cores: this runs in parallel with the parent's netlink work).
        sysctl_dir = _prepare_rootfs(cfg, cdir, cg, trees)
        net = ch.expect(NET_READY)
        timing.mark("net-ready")
        _configure_and_exec(ch, cfg, net, host_files, old_mask, sysctl_dir, seccomp_bpf)
    except MinirtError as e:
        code = e.exit_code
        ch.report_error(str(e), code)
    except OSError as e:
        ch.report_error(f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), code)
    except BaseException as e:  # noqa: BLE001 - report anything, never return into the parent's code
        ch.report_error(f"internal error in container init: {e!r}", code)
    finally:
        os._exit(code)


def _become_root(ch: Channel, cfg) -> list[int]:
    """User namespace: wait until the parent has written our maps (USERNS, with the detached
    rootfs and volume trees), then become uid/gid 0 of the namespace: host uid/gid = the maps'
    start. We keep our capabilities: they are those of our namespace, and the kernel only
    clears them when the ids leave that namespace's root (cap_emulate_setxuid compares with
    the namespace's root uid). The credential change clears the parent-death signal
    (commit_creds), so it is set again, and the parent checked once more."""
    _, trees = ch.expect_fds(USERNS, len(cfg.lowerdirs or [cfg.rootfs]) + len(cfg.volumes))
    ppid = os.getppid()
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.setgroups([])  # host root's supplementary groups would show as 65534 (unmapped)
    _prctl.prctl(_prctl.PR_SET_PDEATHSIG, signal.SIGKILL)  # prctl.set_pdeathsig
    if os.getppid() != ppid:
        raise MinirtError("minirt exited while the container was starting")
    # A new user namespace starts with a full bounding set (set_cred_user_ns), not the host's
    # (which may lack some, e.g. CAP_SYS_RESOURCE in a VM): caps.apply must drop what we
    # hold here: read ours again (now, while /proc and every module are still reachable).
    caps._supported = None
    caps.supported_here()
    timing.mark("userns-root")
    return trees


def _read_host_files(cfg) -> dict[str, str]:
    """What the container's /etc files copy from the host, read before we leave its mount ns."""
    out = {"hostname": _socket.gethostname()}
    names = ("resolv.conf", "hosts") if cfg.net in ("host", "container") else ("resolv.conf",)
    # --net container: the other container's files, seen through its root
    etc = f"/proc/{cfg.net_pid}/root/etc/" if cfg.net == "container" else "/etc/"
    for name in names:
        try:
            with open(etc + name) as f:
                out[name] = f.read()
        except OSError:
            out[name] = ""
    return out


def etc_files(cfg, net: dict, host_files: dict) -> dict[str, str]:
    """Content of /etc/hostname, /etc/hosts and /etc/resolv.conf for this container (Docker's)."""
    if cfg.net in ("host", "container"):
        # Docker: --net host gets the host's files unchanged, --net container:X gets X's.
        return {"hostname": cfg.hostname + "\n", "hosts": host_files["hosts"], "resolv.conf": host_files["resolv.conf"]}
    hosts = STANDARD_HOSTS
    if net.get("address"):
        hosts += f"{net['address']}\t{cfg.hostname}\n"
    if net.get("address6"):  # dual-stack networks (Docker lists both)
        hosts += f"{net['address6']}\t{cfg.hostname}\n"
    resolv = net.get("resolv_conf", host_files["resolv.conf"])
    return {"hostname": cfg.hostname + "\n", "hosts": hosts, "resolv.conf": resolv}


def _prepare_rootfs(cfg, cdir: str, cg: dict, trees: list[int]) -> int:
    """Build the container's filesystem and pivot into it. trees (user namespace only): the
    idmapped rootfs (or one per image layer, top first), then one detached tree per volume. Returns a directory fd on the
    container's /proc/sys (or -1 without --sysctl), taken before /proc/sys is made read-only:
    the sysctls are written through it after NET_READY, when the container's interfaces exist
    (Docker writes them in an already-wired netns too), and lookups from it stay in the proc
    mount underneath the read-only bind."""
    os.umask(0o022)
    merged = cdir + "/merged"
    rootfs.make_private()
    lower = cfg.rootfs
    lowerdirs = cfg.lowerdirs
    volume_trees = trees[len(cfg.lowerdirs or [cfg.rootfs]):]
    if trees and lowerdirs:  # an image in a user namespace: each layer idmapped on its own
        lowerdirs = [f"{cdir}/lower/{i}" for i in range(len(cfg.lowerdirs))]
        for fd, path in zip(trees, lowerdirs):
            rootfs.attach(fd, path)
    elif trees:
        lower = cdir + "/lower"
        rootfs.attach(trees[0], lower)
    if lowerdirs:  # an image: its layers, top first
        # in a user namespace overlayfs cannot read trusted.* xattrs: `userxattr` makes it
        # read the user.overlay.* twins the unpacker writes (opaque directories)
        rootfs.mount_image_overlay(lowerdirs, cdir + "/upper", cdir + "/work", merged, userxattr=bool(trees))
    else:
        rootfs.mount_overlay(lower, cdir + "/upper", cdir + "/work", merged)
    rootfs.mount_proc_sys(merged, new_netns=cfg.net != "host", privileged=cfg.privileged)
    sysctl_dir = -1
    if cfg.sysctls:
        sysctl_dir = os.open(merged + "/proc/sys", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    rootfs.mount_cgroups(merged, cg, private=cfg.cgroupns == "private", privileged=cfg.privileged)
    rootfs.mount_dev(merged, bind_nodes=bool(trees))
    for d in cfg.devices or ():
        rootfs.make_device(merged, d, bind=bool(trees))
    for i, v in enumerate(cfg.volumes):
        rootfs.mount_volume(merged, v.source, v.target, v.readonly, tree=volume_trees[i] if trees else -1)
    for t in cfg.tmpfs:
        rootfs.mount_tmpfs(merged, t.target, t.options)
    if not cfg.privileged:
        rootfs.mask_paths(merged)
    rootfs.pivot(merged)
    timing.mark("pivoted")
    return sysctl_dir


def _configure_and_exec(ch: Channel, cfg, net: dict, host_files: dict, old_mask: set, sysctl_dir: int,
                        seccomp_bpf: bytes | None) -> None:
    if sysctl_dir >= 0:
        write_sysctls(sysctl_dir, cfg.sysctls)
    for name, content in etc_files(cfg, net, host_files).items():
        rootfs.write_etc_file(name, content)
    _socket.sethostname(cfg.hostname)

    try:
        os.makedirs(cfg.workdir, exist_ok=True)  # Docker creates a missing -w directory
        os.chdir(cfg.workdir)
    except OSError as e:
        raise ExecError(f"workdir {cfg.workdir}: {e.strerror}", EXIT_CANNOT_EXEC) from None
    user = exec_user(cfg.user, cfg.group_add)
    if cfg.read_only:
        # runc remounts the root read-only last, after every mount (finalizeRootfs); minirt
        # also writes /etc/hostname, hosts and resolv.conf itself, so those come first
        rootfs.remount_root_readonly()
    env = dict(e.partition("=")[::2] for e in cfg.env)
    env.setdefault("HOME", user.home)  # runc: HOME from the passwd entry unless already set
    exe = resolve_command(cfg.argv[0], env.get("PATH", ""))

    timing.mark("resolved")
    set_rlimits(cfg.ulimits)
    caps.apply(cfg.caps, cfg.no_new_privs, user)
    timing.mark("caps")
    _close_inherited_fds(keep=ch.sock.fileno())
    signals.reset_dispositions()
    ch.send(EXEC)
    if cfg.init:
        reaper.run(ch, exe, cfg.argv, env, old_mask, seccomp_bpf)  # does not return
    if seccomp_bpf:
        # Last before execve, after no_new_privs (caps.apply): the filter then holds only what
        # is left to do, sigprocmask and execve (Docker's profile allows both), and a custom
        # profile's failure still reaches the parent as ERROR after EXEC (runc also loads the
        # filter as late as it can, standard_init_linux.go). One seccomp(2) call: the program
        # was compiled by the parent, libseccomp is never loaded here.
        seccomp_set_filter(seccomp_bpf)
    timing.mark("seccomp-attached")
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    try:
        os.execve(exe, cfg.argv, env)
    except OSError as e:
        code = EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
        raise ExecError(f'exec "{cfg.argv[0]}": {e.strerror.lower()}', code) from None


def write_sysctls(dir_fd: int, values: dict[str, str]) -> None:
    """--sysctl, written as runc does (the key's dots become slashes under /proc/sys). The
    files follow the writer's namespaces: net.* our netns, kernel.shm*/msg*/sem and fs.mqueue.*
    our IPC namespace, so the host's values never change."""
    try:
        for key, value in values.items():
            fd = os.open(secopts.sysctl_path(key), os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.write(fd, value.encode())
            except OSError as e:
                raise ExecError(f"write /proc/sys/{secopts.sysctl_path(key)}: {e.strerror.lower()}") from None
            finally:
                os.close(fd)
    except FileNotFoundError:
        raise ExecError(f"open /proc/sys/{secopts.sysctl_path(key)}: no such file or directory") from None
    finally:
        os.close(dir_fd)


def _close_inherited_fds(keep: int) -> None:
    """Only stdio and our (close-on-exec) sync socket may cross into the container: a leaked
    host fd is a way out of it (runc CVE-2024-21626)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
