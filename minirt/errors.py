"""Error tree and exit codes; str(error) is the one line the user sees.

Exit codes follow `docker run` (docs.docker.com/engine/containers/run/#exit-status):
125 the runtime itself failed, 126 the command cannot be executed, 127 it was not
found, 128+N the command was killed by signal N.
"""

EXIT_RUNTIME = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


class MinirtError(Exception):
    """Something the user can act on. str() is the single line we print."""

    exit_code = EXIT_RUNTIME


class ConfigError(MinirtError):
    """Bad flag, missing rootfs, bad -v."""


class ConflictError(MinirtError):
    """Name, interface or address already in use."""


class NoSuchObject(MinirtError):
    """Unknown or ambiguous container reference."""


class NetworkError(MinirtError):
    """A netlink step failed; the message names the step and the object."""


class FirewallError(NetworkError):
    """The packet filter refused a change (libnftables rc != 0); nothing was changed.

    str() is one line: `nft <step> for network <name>: <libnftables' error>`. batch_text holds
    the rendered batch (`nft ...` lines a person can replay) and is attached as a note, which
    cli.main prints under the error line (libnftables' JSON errors say neither which command
    failed nor where: moby logs its generated input for the same reason).
    """

    def __init__(self, message: str, batch_text: str = ""):
        super().__init__(message)
        self.batch_text = batch_text
        if batch_text:
            self.add_note("the refused batch (one transaction, nothing was applied), as nft commands:\n" + batch_text)


class StateError(MinirtError):
    """The state directory is unreadable or inconsistent."""


class CleanupError(MinirtError):
    """Teardown could not undo everything; the message lists what is left."""

    def __init__(self, failures: list[str]):
        super().__init__("cleanup failed: " + "; ".join(failures))
        self.failures = failures


class InitError(MinirtError):
    """The container process broke the protocol or died before exec."""


class ExecError(MinirtError):
    """Relayed from the container process: 126 (cannot execute) or 127 (not found)."""

    def __init__(self, message: str, exit_code: int = EXIT_RUNTIME):
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_of(wait_status: int) -> int:
    """Wait status -> shell-style exit code: the command's, or 128+N for signal N (bash, bubblewrap)."""
    if wait_status & 0x7F == 0:  # WIFEXITED
        return (wait_status >> 8) & 0xFF
    return 128 + (wait_status & 0x7F)  # WTERMSIG
