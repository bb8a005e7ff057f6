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
    from minirt import liveness, timing
    from minirt.process.execin import exec_in

    timing.mark("exec-imported")

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
    bpf = _seccomp_program(rec, store.root)
    timing.mark("exec-record-loaded")
    return exec_in(rec, rest[1:] if rest[1] != "--" else rest[2:], opts["env"], opts["workdir"], opts["tty"],
                   user=opts["user"], seccomp_bpf=bpf)


def _seccomp_program(rec: dict, root: str) -> bytes | None:
    """The filter the container was started with (runc exec applies the container's seccomp
    config too): from the cache by the key its record keeps; compiled again from the container's
    profile if the cache lost it, and refused if that no longer gives the same program."""
    key = rec.get("seccomp_program")
    if not key:
        return None
    from minirt import seccomp

    bpf = seccomp.cached(root, key)
    if bpf is not None:
        return bpf
    cfg = rec["config"]
    prog = seccomp.program(seccomp.effective(cfg.get("seccomp"), bool(cfg.get("privileged"))),
                           frozenset(cfg.get("caps") or []), root)  # fmt: skip
    if prog is None or prog.key != key:
        raise ConflictError(f"exec: the seccomp profile of container {rec['id'][:12]} changed since it started "
                            "and its compiled filter is no longer cached: restart the container")  # fmt: skip
    return prog.bpf
