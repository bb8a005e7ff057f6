"""Signals between minirt and its container: what is forwarded, and waiting for the exit.

Runs in: the minirt parent of a foreground `run`, and `minirt exec`. The forwarded signals and
SIGCHLD are blocked before fork (spawn.py, for every container, also under a supervisor) and
collected with sigwaitinfo, so no Python signal handler runs and no KeyboardInterrupt can land
in the middle of setup or teardown. A detached container's supervisor waits on the pidfd
instead (process/supervisor.py).
"""

import os
# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up).
import _signal as signal

from minirt.errors import exit_code_of

FORWARDED = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2})
WAITED = FORWARDED | {signal.SIGCHLD}
SI_KERNEL = 0x80  # si_code of signals the kernel raised itself, e.g. the tty's ^C (asm-generic/siginfo.h)


def reset_dispositions() -> None:
    """Every signal back to its default action before the container's command is exec'd.

    execve keeps SIG_IGN: without this the command would inherit what the Python interpreter
    ignores (SIGPIPE and SIGXFSZ, set at its start-up) and whatever the calling shell ignored
    (a background job's SIGINT and SIGQUIT), and a shell cannot even trap a signal ignored on
    entry (POSIX). A Docker container starts with none ignored (SigIgn: 0): its process comes
    from the daemon, not from the caller's shell.
    """
    from minirt._syscalls import default_signals

    default_signals()


def block() -> set:
    """Block what we wait for; returns the old mask for the child to restore before execve."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)


def wait_forwarding(child) -> int:
    """Wait for the container to exit, relaying signals sent to minirt; returns its exit code.

    A signal the terminal raised (^C, ^\\) is not relayed: the container shares our process
    group, or has made its own group the terminal's foreground (a job-control shell), so the
    kernel already delivered it there. Relaying would deliver it twice.
    """
    while True:
        info = signal.sigwaitinfo(WAITED)
        if info.si_signo == signal.SIGCHLD:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                child.reaped = True
                return exit_code_of(status)
        elif info.si_code != SI_KERNEL:
            child.signal(info.si_signo)
