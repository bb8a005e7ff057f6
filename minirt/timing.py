"""Start-up timeline for `make bench`: MINIRT_TIMING=1 prints "timing <monotonic ms> <pid> <step>"
on stderr at each milestone of the parent and the container init. One bool test when unset."""

import os
import time

enabled = bool(os.environ.get("MINIRT_TIMING"))


def mark(step: str) -> None:
    if enabled:
        os.write(2, f"timing {time.clock_gettime(time.CLOCK_MONOTONIC) * 1000:.3f} {os.getpid()} {step}\n".encode())
