"""Docker-style option parsing, with options declared as data.

argparse costs ~8 ms to import (it pulls in re and gettext), a quarter of our start-up
budget, and cannot stop at the first operand the way `docker run IMAGE CMD...` does. This
parser handles what docker's CLI accepts: `--opt value`, `--opt=value`, `-e A=1`, `-eA=1`,
bundled short flags (`-it`), repeatable options, `--` and the first operand ending the options.

Every command gets `--help` from here, as docker's cobra commands do: given the usage line
(`prog`), parse() prints usage() on stdout and ends the command with exit 0. `-h` means help
too unless the command uses it for something else (`run -h` is --hostname), as in cobra. After
the first operand nothing is an option, so `exec CONTAINER CMD --help` passes --help to CMD.
"""

import sys

from minirt.errors import ConfigError

FLAG, VALUE, LIST = "flag", "value", "list"


class Option:
    __slots__ = ("names", "dest", "kind", "help", "metavar")

    def __init__(self, names: tuple[str, ...], kind: str, help: str, metavar: str = ""):
        self.names, self.kind, self.help, self.metavar = names, kind, help, metavar
        self.dest = names[-1].lstrip("-").replace("-", "_")


def parse(
    options: list[Option], args: list[str], stop_at_operand: bool = True, prog: str = ""
) -> tuple[dict, list[str]]:
    """Returns ({dest: value}, operands). Unknown options and missing values raise ConfigError.
    With prog, --help (and -h where no option takes it) prints the usage and raises SystemExit(0)."""
    by_name = {n: o for o in options for n in o.names}
    help_names = tuple(n for n in ("-h", "--help") if prog and n not in by_name)
    help_opt = Option(help_names, FLAG, "print this help") if help_names else None
    by_name.update((n, help_opt) for n in help_names)
    values: dict = {o.dest: ([] if o.kind == LIST else False if o.kind == FLAG else None) for o in options}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            if stop_at_operand:
                operands.extend(args[i:])
                break
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            opt = by_name.get(name)
            if opt is None:
                raise ConfigError(f"unknown flag: {name}")
            if opt is help_opt:
                _help(prog, options + [opt])
            if opt.kind == FLAG:
                if eq:
                    values[opt.dest] = value.lower() not in ("false", "0", "no")
                else:
                    values[opt.dest] = True
                continue
            if not eq:
                if i >= len(args):
                    raise ConfigError(f"flag needs an argument: {name}")
                value = args[i]
                i += 1
            _store(values, opt, value)
            continue
        # short options, possibly bundled: -it, -eA=1, -e A=1
        j = 1
        while j < len(arg):
            name = "-" + arg[j]
            opt = by_name.get(name)
            if opt is None:
                raise ConfigError(f"unknown shorthand flag: {arg[j]!r} in {arg}")
            j += 1
            if opt is help_opt:
                _help(prog, options + [opt])
            if opt.kind == FLAG:
                values[opt.dest] = True
                continue
            value = arg[j:]
            if not value:
                if i >= len(args):
                    raise ConfigError(f"flag needs an argument: {name}")
                value = args[i]
                i += 1
            _store(values, opt, value.removeprefix("=") if value.startswith("=") else value)
            break
    return values, operands


def _store(values: dict, opt: Option, value: str) -> None:
    if opt.kind == LIST:
        values[opt.dest].append(value)
    else:
        values[opt.dest] = value


def _help(prog: str, options: list[Option]) -> None:
    """cli.main turns the SystemExit into the exit code; stdout, as `docker ps --help`."""
    sys.stdout.write(usage(prog, options))
    raise SystemExit(0)


def usage(prog: str, options: list[Option]) -> str:
    lines = [f"Usage: {prog}", "", "Options:"]
    names = [", ".join(o.names) + (f" {o.metavar}" if o.metavar else "") for o in options]
    width = max([28] + [len(n) + 1 for n in names])  # one column of help, however long the names
    for n, o in zip(names, options):
        lines.append(f"  {n:<{width}} {o.help}")
    return "\n".join(lines) + "\n"
