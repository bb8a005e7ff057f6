"""minirt rm [-f] CONTAINER...: remove stopped containers (-f: kill running ones first)."""

from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError, MinirtError
from minirt.state import Store

AHEAD = 8  # containers killed ahead of their removal by `rm -f` (two cores: more only adds contention)

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
    # rm -f of many: the next AHEAD containers are killed before their turn, so their owners
    # tear down (veth, addresses, published ports, cgroup) concurrently with the removals in
    # front of them, instead of one after the other (docker rm removes its arguments in
    # parallel). Removal itself stays in order, one at a time; the look-ahead stops at the
    # first reference that does not resolve, beyond which nothing is touched, as before.
    ahead = opts["force"] and len(refs) > 1 and not explain.enabled
    killed = 0
    for i, ref in enumerate(refs):
        while ahead and killed < min(i + 1 + AHEAD, len(refs)):
            if killed > i:
                try:
                    control.kill_ahead(store, store.resolve(refs[killed]))
                except MinirtError:
                    ahead = False  # that reference fails below, when its turn comes
                    break
            killed += 1
        control.remove(store, store.resolve(ref), opts["force"])
        print(ref)
    return 0
