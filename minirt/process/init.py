"""The container process from fork to execve: namespaces, rootfs, identity, capabilities, exec.

Runs in: the forked child, PID 1 of the new pid namespace. It never returns into the parent's
code (a forked copy would otherwise run the parent's finally blocks and undo list): every path
ends in execve or os._exit. After pivot_root no module can be imported any more (the host's
filesystem is gone), so everything needed later is imported up front.

Order (after runc's standard_init_linux.go): namespaces -> NS_READY -> lo up -> mounts ->
pivot_root -> wait for NET_READY -> /etc files -> hostname -> resolve the command (126/127
before the point of no return) -> capabilities and no_new_privs -> EXEC -> seccomp filter
-> execve. The
filesystem is built before NET_READY because it needs nothing from the network: it runs while
the parent sets up the host side.
"""

import errno
import os
# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up).
import _signal as signal
import _socket
import stat

import prctl  # imported before pivot_root: caps.apply needs it afterwards

from minirt import caps, rootfs, timing
from minirt._syscalls import seccomp_set_filter
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUNTIME, ExecError, MinirtError
from minirt.process import reaper, signals
from minirt.process.sync import CGROUP, EXEC, NET_READY, NS_READY, Channel

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
        prctl.set_pdeathsig(signal.SIGKILL)
        flags = os.CLONE_NEWNS | os.CLONE_NEWUTS | os.CLONE_NEWIPC
        if cfg.net not in ("host", "container"):
            flags |= os.CLONE_NEWNET
        timing.mark("child-imported")
        host_files = _read_host_files(cfg)
        if cfg.net == "container":  # join the other container's netns
            netns = os.open(f"/proc/{cfg.net_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            os.setns(netns, os.CLONE_NEWNET)
            os.close(netns)
        os.unshare(flags)
        ch.send(NS_READY)
        if cfg.net not in ("host", "container"):
            from minirt.net import loopback

            loopback.up()
        # In our cgroup from here on (the parent moved us in before sending CGROUP): a private
        # cgroup namespace made now has it as its root (cgroup_namespaces(7)).
        cg = ch.expect(CGROUP)
        if cfg.cgroupns == "private":
            os.unshare(os.CLONE_NEWCGROUP)
        # The filesystem needs nothing from the network: build it while the parent sets up
        # the host side (2 cores: this runs in parallel with the parent's netlink work).
        _prepare_rootfs(cfg, cdir, cg)
        net = ch.expect(NET_READY)
        timing.mark("net-ready")
        _configure_and_exec(ch, cfg, net, host_files, old_mask, seccomp_bpf)
    except MinirtError as e:
        code = e.exit_code
        ch.report_error(str(e), code)
    except OSError as e:
        ch.report_error(f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), code)
    except BaseException as e:  # noqa: BLE001 - report anything, never return into the parent's code
        ch.report_error(f"internal error in container init: {e!r}", code)
    finally:
        os._exit(code)


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


def resolve_command(argv0: str, path_var: str) -> str:
    """Find the executable as execvp would, deciding 126 vs 127 before the point of no return.

    Messages follow Docker's (`exec: "x": executable file not found in $PATH`).
    """
    if "/" in argv0:
        candidates = [argv0]
    else:
        candidates = [f"{d or '.'}/{argv0}" for d in path_var.split(":")]
    denied = None
    for c in candidates:
        try:
            st = os.stat(c)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            denied = denied or (c, "is a directory")
            continue
        if not os.access(c, os.X_OK):
            denied = denied or (c, "permission denied")
            continue
        return c
    if denied:
        raise ExecError(f'exec "{argv0}": {denied[1]}', EXIT_CANNOT_EXEC)
    if "/" in argv0:
        raise ExecError(f'exec "{argv0}": no such file or directory', EXIT_NOT_FOUND)
    raise ExecError(f'exec "{argv0}": executable file not found in $PATH', EXIT_NOT_FOUND)


def _prepare_rootfs(cfg, cdir: str, cg: dict) -> None:
    os.umask(0o022)
    merged = cdir + "/merged"
    rootfs.make_private()
    rootfs.mount_overlay(cfg.rootfs, cdir + "/upper", cdir + "/work", merged)
    rootfs.mount_proc_sys(merged, new_netns=cfg.net != "host", privileged=cfg.privileged)
    rootfs.mount_cgroups(merged, cg, private=cfg.cgroupns == "private", privileged=cfg.privileged)
    rootfs.mount_dev(merged)
    for v in cfg.volumes:
        rootfs.mount_volume(merged, v.source, v.target, v.readonly)
    for t in cfg.tmpfs:
        rootfs.mount_tmpfs(merged, t.target, t.options)
    if not cfg.privileged:
        rootfs.mask_paths(merged)
    rootfs.pivot(merged)
    timing.mark("pivoted")


def _configure_and_exec(ch: Channel, cfg, net: dict, host_files: dict, old_mask: set,
                        seccomp_bpf: bytes | None) -> None:
    for name, content in etc_files(cfg, net, host_files).items():
        rootfs.write_etc_file(name, content)
    _socket.sethostname(cfg.hostname)

    try:
        os.makedirs(cfg.workdir, exist_ok=True)  # Docker creates a missing -w directory
        os.chdir(cfg.workdir)
    except OSError as e:
        raise ExecError(f"workdir {cfg.workdir}: {e.strerror}", EXIT_CANNOT_EXEC) from None
    env = dict(e.partition("=")[::2] for e in cfg.env)
    exe = resolve_command(cfg.argv[0], env.get("PATH", ""))

    timing.mark("resolved")
    caps.apply(cfg.caps, cfg.no_new_privs)
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


def _close_inherited_fds(keep: int) -> None:
    """Only stdio and our (close-on-exec) sync socket may cross into the container: a leaked
    host fd is a way out of it (runc CVE-2024-21626)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
