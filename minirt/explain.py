"""--explain: print each host change as the `ip`/`nft`/`sysctl`/`mount` line a person would type.

The line is printed by the same function that makes the change, from the same data, so the
two cannot drift (the idea of CNI's knftables Fake/Dump: one model, two renderings). Off by
default: one attribute check per call.
"""

import os

enabled = False


def cmd(line: str) -> None:
    if enabled:
        os.write(2, f"+ {line}\n".encode())
