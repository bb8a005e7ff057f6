"""minirt events [--since T] [--until T] [--filter K=V]... [--format json]: container and network
events as Docker prints them, from $MINIRT_ROOT/events.log (written by minirt/events.py).

Without --since only new events are printed, as they happen, until ^C; with --since the past
ones from then on first; with --until it stops at that time (at once if it has passed)."""

import sys

from minirt.cliparse import LIST, VALUE, Option, parse
from minirt.errors import ConfigError

OPTIONS = [
    Option(("--since",), VALUE, "show events since this time (RFC3339, Unix seconds, or a duration: 10m)", "T"),
    Option(("--until",), VALUE, "stream events until this time, then exit", "T"),
    Option(("-f", "--filter"), LIST, "container=, event=, network=, type= (same key: any; keys: all)", "K=V"),
    Option(("--format",), VALUE, "json: one JSON object per line (default: Docker's text line)", "FORMAT"),
]
USAGE = "minirt events [OPTIONS]"


def main(args: list[str]) -> int:
    from minirt import eventlog
    from minirt.state import root_dir

    opts, operands = parse(OPTIONS, args, stop_at_operand=False, prog=USAGE)
    if operands:
        raise ConfigError(f"events: unexpected argument {operands[0]!r}")
    fmt = (opts["format"] or "").strip()
    if fmt not in ("", "json", "{{json .}}"):
        raise ConfigError(f"events: --format {fmt!r}: only json is supported")
    since = eventlog.parse_time(opts["since"]) if opts["since"] else None
    until = eventlog.parse_time(opts["until"]) if opts["until"] else None
    filters = eventlog.parse_filters(opts["filter"])

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()  # a pipe is block-buffered: a follower must see each event now

    try:
        eventlog.stream(root_dir(), out, since, until, filters, as_json=bool(fmt))
    except BrokenPipeError:  # `minirt events | head`
        return 0
    return 0
