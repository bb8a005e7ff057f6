"""minirt kill [-s SIGNAL] CONTAINER...: send a signal (default KILL) to the container's init."""

from minirt.cliparse import FLAG, Option, VALUE, parse
from minirt.commands.stop import parse_signal
from minirt.errors import ConfigError
from minirt.state import Store

OPTIONS = [Option(("-s", "--signal"), VALUE, "signal (default KILL)", "SIG"),
           Option(("--explain",), FLAG, "print the signal sent (and, for KILL, the cgroup's kill) as a command")]


def main(args: list[str]) -> int:
    from minirt import control, explain

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt kill [OPTIONS] CONTAINER [CONTAINER...]")
    explain.enabled = opts["explain"]
    if not refs:
        raise ConfigError("kill: give at least one container")
    sig = parse_signal(opts["signal"] or "KILL")
    store = Store()
    for ref in refs:
        cid = store.resolve(ref)
        if sig == 9:
            open(store.container_dir(cid) + "/stop-requested", "w").close()
        control.send_signal(store.load(cid), sig, store.root)
        print(ref)
    return 0
