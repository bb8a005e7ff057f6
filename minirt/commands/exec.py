"""minirt exec [-i] [-t] [-e NAME=VALUE] [-w DIR] CONTAINER COMMAND [ARG...]"""

import os

from minirt.cliparse import FLAG, LIST, VALUE, Option, parse
from minirt.errors import ConfigError, ConflictError
from minirt.state import Store

OPTIONS = [
    Option(("-i", "--interactive"), FLAG, "keep stdin open (always: stdin passes through)"),
    Option(("-t", "--tty"), FLAG, "give the command a new pseudo-terminal"),
    Option(("-e", "--env"), LIST, "set an environment variable", "NAME[=VALUE]"),
    Option(("-w", "--workdir"), VALUE, "working directory inside the container", "DIR"),
    Option(("-u", "--user"), VALUE, "run as this user (default: the container's --user)", "USER[:GROUP]"),
]
USAGE = "minirt exec [OPTIONS] CONTAINER COMMAND [ARG...]"


def main(args: list[str]) -> int:
    from minirt import cgroups, liveness

    cgroups.warm_up_attach()  # the exec'd process joins the container's cgroup (see there)
    from minirt.process.execin import exec_in

    opts, rest = parse(OPTIONS, args, prog=USAGE)
    if len(rest) < 2:
        raise ConfigError(f"exec: usage: {USAGE}")
    if os.geteuid() != 0:
        raise ConfigError("must run as root (joining namespaces needs CAP_SYS_ADMIN)")
    store = Store()
    cid = store.resolve(rest[0])
    rec = store.load(cid)
    if not liveness.init_alive(rec):
        raise ConflictError(f"container {rest[0]} is not running")
    return exec_in(rec, rest[1:] if rest[1] != "--" else rest[2:], opts["env"], opts["workdir"], opts["tty"],
                   user=opts["user"])
