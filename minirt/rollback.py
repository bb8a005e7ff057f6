"""Undo list: register the undo of a step before the step, run newest-first on failure.

Every undo must be idempotent ("already gone" is success), so a failure or Ctrl-C at any
point, even between a syscall returning and the next line, leaves nothing behind (CNI's
`success` flag + deferred undo, bubblewrap's steal_pointer). On success release() hands
the actions to the container's teardown.
"""

import functools
from collections.abc import Callable

from minirt import explain
from minirt.errors import CleanupError

Undo = tuple[str, Callable[[], None]]


class Rollback:
    def __init__(self) -> None:
        self._undo: list[Undo] = []

    def add(self, what: str, fn: Callable[..., None], /, *args: object) -> None:
        self._undo.append((what, functools.partial(fn, *args)))

    def release(self) -> list[Undo]:
        undo, self._undo = self._undo, []
        return undo

    def __enter__(self) -> "Rollback":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        failures = run_undo(self.release())
        if not failures:
            return
        if exc is not None:
            # Keep the first error in front (youki CreateContainerError).
            exc.add_note("cleanup also failed: " + "; ".join(failures))
        else:
            raise CleanupError(failures)


def run_undo(actions: list[Undo]) -> list[str]:
    """Run every action, newest first, even if some fail (netavark NetavarkErrorList)."""
    failures = []
    for what, fn in reversed(actions):
        explain.cmd(what)
        try:
            fn()
        except Exception as e:  # collect, keep going: teardown must do all it can
            failures.append(f"{what}: {e}")
    return failures
