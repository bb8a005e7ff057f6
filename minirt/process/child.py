"""The parent's handle on a process it forked: the container's init (spawn.py) or an exec'd
command (execin.py). A module of its own so that `exec` gets it without spawn.py's imports
(the channel, its socket module and the fault points: ~1 ms).
"""

import os
# _signal, not signal: signal.py wraps every constant in an enum (~6 ms at start-up).
import _signal as signal


class Child:
    """The container process as the parent sees it. kill() is idempotent and pid-reuse safe."""

    def __init__(self) -> None:
        self.pid = 0
        self.pidfd = -1
        self.reaped = False
        self.channel = None  # sync.Channel to the init while it is being set up (spawn.py)

    def signal(self, sig: int) -> None:
        if self.pidfd >= 0 and not self.reaped:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL and reap. PID 1 dying takes the whole pid namespace with it."""
        if self.pid and not self.reaped:
            self.signal(signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.reaped = True
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
