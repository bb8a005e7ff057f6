"""The OCI process's identity and terminal, shared by the container's init and `exec`.

Runs in: the forked init (minirt/oci/init.py) or exec child (minirt/oci/execproc.py), inside the
container's namespaces, last before execve. Nothing here is imported after pivot_root: the init
imports this module up front.

The order is runc's finalizeNamespace (libcontainer/init_linux.go): drop the bounding set,
keep capabilities across the uid change (PR_SET_KEEPCAPS), setgroups/setgid/setuid, clear
keep-caps, then set effective/permitted/inheritable with one capset(2) and raise the ambient
ones. Capabilities this kernel does not know are left out, as runc does (with a warning there).
"""

import fcntl
import os
import resource
import sys

from minirt import _syscalls
from minirt.process.init import resolve_command

PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL = 47, 2, 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
TIOCSCTTY, TIOCSPTLCK, TIOCGPTN, TIOCSWINSZ = 0x540E, 0x40045431, 0x80045430, 0x5414
CONSOLE_NAME = b"/dev/ptmx"  # what runc sends as the message's data (console.NewPty's file name)


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def set_rlimits(rlimits: list) -> None:
    for rtype, soft, hard in rlimits or ():
        try:
            resource.prlimit(0, rtype, (soft, hard))
        except (OSError, ValueError) as e:
            reason = e.strerror.lower() if isinstance(e, OSError) and e.strerror else str(e)
            raise OSError(getattr(e, "errno", 0) or 1, f"error setting rlimit type {rtype}: {reason}") from None


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """HOME for a process whose env has none: the uid's passwd entry, else "/" (runc setupUser)."""
    try:
        with open(passwd) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def fix_stdio(uid: int, gid: int) -> None:
    """Hand the stdio fds to the process's user, as runc's fixStdioPermissions: a non-root
    process must be able to reopen its /proc/self/fd/1. /dev/null is left alone."""
    if uid == 0:
        return
    try:
        null = os.stat("/dev/null").st_rdev
    except OSError:
        null = -1
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
            if st.st_rdev == null or st.st_uid == uid:
                continue
            os.fchown(fd, uid, gid)
        except OSError:
            pass  # EINVAL/EPERM: not ours to change (runc ignores these too)


def finalize(caps: dict | None, user: dict, no_new_privs: bool) -> None:
    """Capabilities and identity, runc's order; then no_new_privs."""
    mask = (1 << (last_cap() + 1)) - 1
    sets = None
    if caps is not None:
        sets = {k: sum(1 << c for c in v) & mask for k, v in caps.items()}
        for c in range(last_cap() + 1):
            if not sets["bounding"] >> c & 1:
                _syscalls.prctl(24, c)  # PR_CAPBSET_DROP
    _syscalls.prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups(user.get("additionalGids") or [])
    os.setresgid(user["gid"], user["gid"], user["gid"])
    os.setresuid(user["uid"], user["uid"], user["uid"])
    _syscalls.prctl(PR_SET_KEEPCAPS, 0)
    if sets is not None:
        _syscalls.capset(sets["effective"], sets["permitted"], sets["inheritable"])
        _syscalls.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        # The kernel raises an ambient capability only when it is both permitted and inheritable;
        # `runc spec` lists ambient ones without inheritable, which runc tries and skips (1.2
        # logs "unable to raise ambient capability"): the same here, no error.
        can = sets["ambient"] & sets["permitted"] & sets["inheritable"]
        for c in range(last_cap() + 1):
            if can >> c & 1:
                _syscalls.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c)
    if no_new_privs:
        _syscalls.prctl(PR_SET_NO_NEW_PRIVS, 1)


def resolve(argv0: str, env: dict) -> str:
    """exec.LookPath as runc does before the point of no return: a missing program fails create."""
    return resolve_command(argv0, env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))


def open_pty(pts: str = "/dev/pts") -> tuple[int, int]:
    """A new pty of the devpts instance mounted at `pts` (the container's: /dev/pts inside it,
    /proc/<pid>/root/dev/pts from outside): (master, slave), both close-on-exec. /dev/ptmx is
    a link to pts/ptmx in a runc-built /dev, so this is the same device runc opens."""
    master = os.open(f"{pts}/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")  # unlockpt
        n = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"), sys.byteorder)  # ptsname
        slave = os.open(f"{pts}/{n}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def set_size(fd: int, size: list | None) -> None:
    """process.consoleSize {height, width} -> TIOCSWINSZ (runc: pty.Resize)."""
    if not size or not (size[0] or size[1]):
        return
    rows, cols = size
    fcntl.ioctl(fd, TIOCSWINSZ, rows.to_bytes(2, sys.byteorder) + cols.to_bytes(2, sys.byteorder) + b"\0" * 4)


def send_console(sock, master: int) -> None:
    """The master to the console socket: exactly one message, CONSOLE_NAME as data and the fd
    as SCM_RIGHTS (runc utils.SendFile; conmon and go-runc's console.ReceiveMaster read it)."""
    import _socket

    sock.sendmsg([CONSOLE_NAME], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, sys.byteorder))])


def take_tty(slave: int) -> None:
    """The slave as stdin/stdout/stderr and controlling terminal (the caller already called
    setsid(): runc's init is a session leader, and an exec'd process becomes one here)."""
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
