"""A tiny conmon for the minirt-oci tests: a child subreaper that runs one command (create or
exec --detach) and then reaps whatever is re-parented to it (the container's init, a detached
exec'd process), as conmon and containerd's shim do for runc.

    python -m tests.helpers.ocishim [--stdout FILE] [--stderr FILE] -- COMMAND...

stdout gets one line per reaped process: "cmd <exit code>" for COMMAND itself, then
"<pid> <exit code>" for each other one (128+N for a signal). It exits once it has no child
left.
"""

import os
import sys

import prctl


def code_of(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main() -> None:
    sep = sys.argv.index("--")
    opts, argv = sys.argv[1:sep], sys.argv[sep + 1:]
    files = dict(zip(opts[::2], opts[1::2]))
    prctl.set_child_subreaper(1)
    cmd = os.fork()
    if cmd == 0:
        try:
            # COMMAND's stdio (the container's, for create): files, not our status pipe
            for flag, fd in (("--stdout", 1), ("--stderr", 2)):
                if flag in files:
                    f = os.open(files[flag], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    os.dup2(f, fd)
                    os.close(f)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return
        name = "cmd" if pid == cmd else str(pid)
        sys.stdout.write(f"{name} {code_of(status)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
