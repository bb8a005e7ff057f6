"""What a container process is exec'd as: its program resolved before the point of no
return (126/127, Docker's messages), the user from the container's own passwd and group
files, and its rlimits.

Runs in: the container's init (process/init.py) and `minirt exec`'s child (process/execin.py),
which imports this small module rather than the init's: its start-up cost is exec's."""

import os
import resource
import stat

from minirt import secopts, users
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUNTIME, ExecError


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


def exec_user(spec: str | None, group_add: list[str] | None, root: str = "") -> users.ExecUser:
    """The identity to exec as, from the container's /etc/passwd and /etc/group (read through
    `root`, "" once we are inside). A spec that does not resolve is Docker's 125 (moby resolves
    it in the daemon, before the container starts).

    The primary gid always heads the supplementary groups, as moby's getUser has done since
    20.10.18 (CVE-2022-36109: without it a process could shed its primary group and bypass a
    group-denies permission); `make compare` shows `groups=1000(app)` for `--user 1000:1000`."""
    try:
        user = users.resolve(spec, users.read_file(root + "/etc/passwd"), users.read_file(root + "/etc/group"),
                             group_add or ())  # fmt: skip
    except users.UserError as e:
        raise ExecError(str(e), EXIT_RUNTIME) from None
    user.sgids = [user.gid] + [g for g in user.sgids if g != user.gid]
    return user


def set_rlimits(limits: list[dict] | None) -> None:
    """--ulimit, with setrlimit on ourselves just before exec (runc: setupRlimits); execve keeps
    them. A negative value is Go's uint64 wrap of it (-1 = RLIM_INFINITY). Raising a hard limit
    needs CAP_SYS_RESOURCE; the error reads as runc's. prlimit, not setrlimit: CPython turns
    setrlimit's EPERM into a ValueError of its own wording."""
    for u in limits or ():
        rtype = secopts.ULIMITS[u["name"]]
        try:
            resource.prlimit(0, rtype, (u["soft"], u["hard"]))
        except (OSError, ValueError) as e:
            reason = e.strerror.lower() if isinstance(e, OSError) and e.strerror else str(e)
            raise ExecError(f"error setting rlimit type {rtype}: {reason}") from None
