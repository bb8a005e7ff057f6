"""--init: a minimal PID 1 that forwards signals to the command and reaps every zombie.

Runs in: the container init after pivot_root, as PID 1 of the container's pid namespace. Like
tini (Docker's --init) and bubblewrap's do_init: the command runs as PID 2, so signals with
default handlers work on it (the kernel ignores them for a pid namespace's init), and orphans
re-parented to PID 1 are reaped. Exit status: the command's, or 128+N if signal N killed it.
"""

import errno
import os
# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up).
import _signal as signal

from minirt._syscalls import seccomp_set_filter
from minirt.errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, exit_code_of

FORWARDED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGCONT}  # fmt: skip


def run(ch, exe: str, argv: list[str], env: dict[str, str], old_mask: set,
        seccomp_bpf: bytes | None = None) -> "NoReturn":  # noqa: F821
    waited = FORWARDED | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    if seccomp_bpf:
        # before the fork, so the command inherits the filter and PID 1 runs under it too, as
        # Docker's tini does (it is the container's process); what PID 1 does next (clone
        # without namespace flags, kill, wait4, rt_sigtimedwait) Docker's profile allows
        seccomp_set_filter(seccomp_bpf)
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        try:
            os.execve(exe, argv, env)
        except OSError as e:
            code = EXIT_NOT_FOUND if e.errno == errno.ENOENT else EXIT_CANNOT_EXEC
            ch.report_error(f'exec "{argv[0]}": {e.strerror.lower()}', code)
            os._exit(code)
    ch.close()  # the parent sees EOF once the command's copy closes at execve
    while True:
        info = signal.sigwaitinfo(waited)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:
            try:
                reaped, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if reaped == 0:
                break
            if reaped == pid:
                # PID 1 exiting makes the kernel SIGKILL everyone left in the namespace.
                os._exit(exit_code_of(status))
