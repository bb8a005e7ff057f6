"""minirt stop [-t SECONDS] [-s SIGNAL] CONTAINER...: SIGTERM, then SIGKILL after the timeout."""

from minirt.cliparse import FLAG, Option, VALUE, parse
from minirt.errors import ConfigError
from minirt.state import Store

OPTIONS = [Option(("-t", "--time"), VALUE, "seconds to wait before SIGKILL (default 10)", "N"),
           Option(("-s", "--signal", "--stop-signal"), VALUE,
                  "signal to send first (default: the container's stop signal, else TERM)", "SIG"),
           Option(("--explain",), FLAG, "print the signals sent, then the owner's teardown as the equivalent "
                  "commands")]  # fmt: skip


def parse_signal(name: str) -> int:
    import signal

    n = name.upper().removeprefix("SIG")
    if n.isdigit():
        return int(n)
    try:
        return int(getattr(signal, "SIG" + n))
    except AttributeError:
        raise ConfigError(f"signal {name!r}: unknown signal") from None


def main(args: list[str]) -> int:
    from minirt import control, explain

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt stop [OPTIONS] CONTAINER [CONTAINER...]")
    explain.enabled = opts["explain"]
    if not refs:
        raise ConfigError("stop: give at least one container")
    t = opts["time"] or "10"
    if not t.isdigit():
        raise ConfigError(f"stop: -t {t!r}: expected whole seconds")
    given = parse_signal(opts["stop_signal"]) if opts["stop_signal"] else None
    store = Store()
    for ref in refs:
        cid = store.resolve(ref)
        sig = given
        if sig is None:  # the container's --stop-signal or its image's StopSignal, else TERM
            sig = parse_signal((store.load(cid).get("config") or {}).get("stop_signal") or "TERM")
        control.stop(store, cid, float(t), sig)
        print(ref)
    return 0
