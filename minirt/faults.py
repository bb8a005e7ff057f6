"""Test-only fault points: MINIRT_FAULT=fail:<point> raises there, kill:<point> SIGKILLs us there.

Modelled on CNI's debugPostIPAMError: tests use it to prove that a failure between any two
setup steps leaves nothing behind. One string compare when unset.
"""

import os

from minirt.errors import MinirtError

_action, _, _point = os.environ.get("MINIRT_FAULT", "").partition(":")


class InjectedFault(MinirtError):
    pass


def point(name: str) -> None:
    if _point != name:
        return
    if _action == "kill":
        os.kill(os.getpid(), 9)
    raise InjectedFault(f"injected fault at {name}")
