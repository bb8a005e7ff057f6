"""minirt.errors: exit codes and the error tree."""

import os
import signal

import pytest

from minirt import errors
from minirt.errors import (
    EXIT_CANNOT_EXEC,
    EXIT_NOT_FOUND,
    EXIT_RUNTIME,
    CleanupError,
    ConfigError,
    ExecError,
    MinirtError,
    exit_code_of,
)


def status_of_exit(code: int) -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def status_of_signal(sig: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            if sig != signal.SIGKILL:  # SIGKILL cannot be caught, so it has no handler to reset
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        finally:
            os._exit(99)  # only if the signal did not kill us
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), status
    return status


@pytest.mark.parametrize("code", [0, 1, 3, 125, 126, 127, 255])
def test_normal_exit(code):
    status = status_of_exit(code)
    assert exit_code_of(status) == code
    assert exit_code_of(status) == os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("sig, want", [(signal.SIGKILL, 137), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_killed_by_signal(sig, want):
    status = status_of_signal(sig)
    assert exit_code_of(status) == want
    assert exit_code_of(status) == 128 - os.waitstatus_to_exitcode(status)


def test_core_dump_flag_is_ignored():
    # SIGSEGV (11) with WCOREDUMP (0x80) set, as waitpid reports a core-dumping crash
    assert exit_code_of(0x80 | signal.SIGSEGV) == 139
    assert exit_code_of(signal.SIGSEGV) == 139


def test_exit_codes_follow_docker():
    assert (EXIT_RUNTIME, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND) == (125, 126, 127)


def test_error_tree_exit_codes():
    for cls in (ConfigError, errors.ConflictError, errors.NoSuchObject, errors.StateError, errors.InitError):
        assert issubclass(cls, MinirtError)
        assert cls("x").exit_code == 125
        assert str(cls("one line")) == "one line"


def test_exec_error_carries_its_code():
    assert ExecError("x").exit_code == 125
    e = ExecError('exec "nope": executable file not found in $PATH', 127)
    assert e.exit_code == 127
    assert str(e) == 'exec "nope": executable file not found in $PATH'
    assert ExecError.exit_code == 125  # the instance's code does not leak into the class


def test_cleanup_error():
    e = CleanupError(["a: x", "b: y"])
    assert str(e) == "cleanup failed: a: x; b: y"
    assert e.failures == ["a: x", "b: y"]
    assert e.exit_code == 125
