"""minirt rm [-f] CONTAINER...: remove stopped containers (-f: kill running ones first)."""

from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError
from minirt.state import Store

OPTIONS = [Option(("-f", "--force"), FLAG, "kill a running container first"),
           Option(("--explain",), FLAG, "print each host change (signals, and the teardown of a container a crash "
                  "left behind) as the equivalent command")]  # fmt: skip


def main(args: list[str]) -> int:
    from minirt import control, explain

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt rm [OPTIONS] CONTAINER [CONTAINER...]")
    explain.enabled = opts["explain"]
    if not refs:
        raise ConfigError("rm: give at least one container")
    store = Store()
    for ref in refs:
        control.remove(store, store.resolve(ref), opts["force"])
        print(ref)
    return 0
