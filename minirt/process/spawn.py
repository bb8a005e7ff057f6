"""Fork the container process as PID 1 of a new pid namespace, holding it by pidfd.

Runs in: the minirt parent, host namespaces. unshare(CLONE_NEWPID) only changes where our
*children* go (pid_namespaces(7)), so the parent unshares, forks the one child that becomes
PID 1, and at once setns()es back so later forks stay in the host pid namespace. The child is
our direct child: plain waitpid works, no subreaper is needed. The child unshares the other
namespaces itself (process/init.py).

With a user namespace (--uidmap, --userns-remap) the child is instead cloned with
CLONE_NEWUSER|CLONE_NEWPID in one clone3 call, as runc does: a pid namespace is owned by the
user namespace its creator was in, and only a pid namespace owned by the container's user
namespace lets container root mount /proc. The namespaces the child unshares afterwards are
owned by its user namespace too (sysfs needs that of the net namespace). The parent then
writes the maps and sends USERNS with the idmapped rootfs (minirt/userns.py) before anything
else: the child waits for it before it takes uid 0 of its namespace.
"""

import os

from minirt import faults, timing
from minirt.process import signals
from minirt.process.child import Child  # noqa: F401 - runtime.py imports it from here
from minirt.process.sync import Channel


def spawn(child: Child, cfg, cdir: str, seccomp_bpf: bytes | None = None) -> None:
    """Fork the container init into `child`. The caller registered child.kill as undo first.
    seccomp_bpf: the compiled filter the init attaches last before execve (None: unconfined)."""
    if cfg.uidmap:
        return _spawn_userns(child, cfg, cdir, seccomp_bpf)
    parent_ch, child_ch = Channel.pair()
    old_mask = signals.block()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.unshare(os.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            _child(parent_ch, child_ch, cfg, cdir, old_mask, seccomp_bpf)
        child.pid = pid
        child.pidfd = os.pidfd_open(pid)
    finally:
        os.setns(own_pidns, os.CLONE_NEWPID)
        os.close(own_pidns)
        child_ch.close()
    child.channel = parent_ch


def _spawn_userns(child: Child, cfg, cdir: str, seccomp_bpf: bytes | None) -> None:
    from minirt import _syscalls, userns
    from minirt.process.sync import USERNS

    userns.prepare_dirs(cdir, cfg.uidmap, cfg.gidmap, len(cfg.lowerdirs or ()))
    parent_ch, child_ch = Channel.pair()
    old_mask = signals.block()
    try:
        pid, pidfd = _syscalls.clone_fork(userns.CLONE_NEWUSER | os.CLONE_NEWPID)
        if pid == 0:
            _child(parent_ch, child_ch, cfg, cdir, old_mask, seccomp_bpf)
        child.pid, child.pidfd = pid, pidfd
    finally:
        child_ch.close()
    child.channel = parent_ch
    # maps first: until they are written the child's ids are unmapped, and it waits for USERNS
    userns.write_maps(pid, cfg.uidmap, cfg.gidmap)
    timing.mark("userns-maps")
    fds = userns.detached_trees(pid, cfg.lowerdirs or [cfg.rootfs], cfg.volumes)
    timing.mark("userns-trees")
    try:
        faults.point("after-idmap")  # a detached idmapped mount exists: closing its fd frees it
        parent_ch.send_fds(USERNS, fds)
        timing.mark("userns-sent")
    finally:
        for fd in fds:
            os.close(fd)


def _child(parent_ch: Channel, child_ch: Channel, cfg, cdir: str, old_mask: set,
           seccomp_bpf) -> "NoReturn":  # noqa: F821
    """The forked init: never returns into the parent's code (a copy of its finally blocks and
    undo list would otherwise run here)."""
    try:
        parent_ch.close()
        from minirt.process import init

        init.child_main(child_ch, cfg, cdir, old_mask, seccomp_bpf)
    finally:
        os._exit(125)
