"""Undo list: register the undo of a step before the step, run newest-first on failure.

Every undo must be idempotent ("already gone" is success), so a failure or Ctrl-C at any
point, even between a syscall returning and the next line, leaves nothing behind (CNI's
`success` flag + deferred undo, bubblewrap's steal_pointer). On success release() hands
the actions to the container's teardown.
"""

from minirt import explain
from minirt.errors import CleanupError

Undo = tuple  # (what, fn): fn() undoes `what`; no typing import on the start-up path


class Rollback:
    def __init__(self) -> None:
        self._undo: list[Undo] = []

    def add(self, what: str, fn, /, *args: object) -> None:
        self._undo.append((what, (lambda: fn(*args)) if args else fn))

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
    """Run every action, newest first, even if some fail (netavark NetavarkErrorList). A dry
    run made no change to undo (its undo entries only hold sockets and fds, which the process's
    exit closes): nothing is run, and no line is printed for a change never made."""
    if explain.dry:
        return []
    failures = []
    for what, fn in reversed(actions):
        if not what.startswith("#"):  # "# ..." names internal bookkeeping, not a host change
            explain.cmd(what)
        try:
            fn()
        except Exception as e:  # collect, keep going: teardown must do all it can
            failures.append(f"{what}: {e}")
    return failures
