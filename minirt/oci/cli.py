"""minirt-oci's command line: runc's global flags and commands (runtime-spec's runtime.md
operations, plus runc's ps, pause, resume, update, exec, features).

Flags are parsed as runc's urfave/cli does: `--flag value`, `--flag=value`, `-flag value`, a
boolean alone or as `--flag=true|false`; global flags come before the command. exec and ps stop at
their first positional argument (runc's SkipArgReorder): what follows the id is the command or
ps's own arguments. Errors: one line on stderr (and in --log), exit 1, as runc's fatal().
"""

import os
import sys

from minirt.errors import MinirtError

FLAG, VALUE, LIST = "flag", "value", "list"

GLOBAL = {
    "root": VALUE, "log": VALUE, "log-format": VALUE, "debug": FLAG, "systemd-cgroup": FLAG,
    "rootless": VALUE, "criu": VALUE, "help": FLAG, "h": FLAG, "version": FLAG, "v": FLAG,
}  # fmt: skip

COMMANDS = {
    "create": ({"bundle": VALUE, "b": "bundle", "pid-file": VALUE, "console-socket": VALUE, "no-pivot": FLAG,
                "no-new-keyring": FLAG, "preserve-fds": VALUE}, "create a container (parked before its program)"),
    "start": ({}, "start the program of a created container"),
    "state": ({}, "print a container's state as JSON"),
    "kill": ({"all": FLAG, "a": "all"}, "send a signal (default TERM) to the init, or --all to every process"),
    "delete": ({"force": FLAG, "f": "force"}, "delete a stopped container (--force: kill it first)"),
    "exec": ({"process": VALUE, "p": "process", "pid-file": VALUE, "detach": FLAG, "d": "detach", "tty": FLAG,
              "t": "tty", "console-socket": VALUE, "cwd": VALUE, "env": LIST, "e": "env", "user": VALUE,
              "u": "user", "additional-gids": LIST, "g": "additional-gids", "cap": LIST, "c": "cap",
              "no-new-privs": FLAG, "preserve-fds": VALUE, "process-label": VALUE, "apparmor": VALUE,
              "ignore-paused": FLAG, "cgroup": LIST}, "run a process in a running container"),
    "ps": ({"format": VALUE, "f": "format"}, "list the container's processes (table, or --format json)"),
    "pause": ({}, "freeze every process of the container"),
    "resume": ({}, "thaw a paused container"),
    "update": ({"resources": VALUE, "r": "resources"}, "change resource limits (--resources FILE|-, OCI JSON)"),
    "events": ({"stats": FLAG, "interval": VALUE}, "print the container's statistics once (--stats; runc's "
               "event stream is not supported)"),
    "features": ({}, "print the runtime-spec features JSON"),
}  # fmt: skip
STOP_AT_POSITIONAL = ("exec", "ps")
USAGE = ("Usage: minirt-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID\n\n"
         "Commands:\n" + "".join(f"  {k:<9} {v[1]}\n" for k, v in COMMANDS.items()))  # fmt: skip


class UsageError(MinirtError):
    pass


def _truthy(v: str, name: str) -> bool:
    if v in ("true", "1", "t", "T", "TRUE", "True"):
        return True
    if v in ("false", "0", "f", "F", "FALSE", "False"):
        return False
    raise UsageError(f'invalid boolean value "{v}" for -{name}')


def parse_flags(table: dict, args: list[str], stop_at_positional: bool) -> tuple[dict, list[str]]:
    """(options by long name, positional arguments)."""
    opts: dict = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            pos += args[i:]
            break
        if not a.startswith("-") or a == "-":
            pos.append(a)
            if stop_at_positional:
                pos += args[i:]
                break
            continue
        name, eq, value = a.lstrip("-").partition("=")
        kind = table.get(name)
        if isinstance(kind, str) and kind not in (FLAG, VALUE, LIST):  # an alias
            name, kind = kind, table[kind]
        if kind is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if kind == FLAG:
            opts[name] = _truthy(value, name) if eq else True
            continue
        if not eq:
            if i >= len(args):
                raise UsageError(f"flag needs an argument: -{name}")
            value = args[i]
            i += 1
        if kind == LIST:
            opts.setdefault(name, []).append(value)
        else:
            opts[name] = value
    return opts, pos


def main(argv: list[str] | None = None) -> int:
    from minirt.oci import log

    args = sys.argv[1:] if argv is None else argv
    try:
        # global flags stop at the command's name
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "--":
            name = args[i].lstrip("-").partition("=")[0]
            i += 1
            if GLOBAL.get(name) == VALUE and "=" not in args[i - 1]:
                i += 1
        gopts, _ = parse_flags(GLOBAL, args[:i], False)
        log.configure(gopts.get("log"), gopts.get("log-format") or "text", bool(gopts.get("debug")))
        if gopts.get("version") or gopts.get("v"):
            return version()
        rest = args[i:]
        if gopts.get("help") or gopts.get("h") or not rest or rest[0] in ("help", "--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        fmt = gopts.get("log-format") or "text"
        if fmt not in ("text", "json"):
            raise UsageError(f"invalid log-format: {fmt}")
        if gopts.get("systemd-cgroup"):
            raise UsageError("--systemd-cgroup is not supported: minirt-oci drives cgroupfs only (this host's "
                             "PID 1 is not systemd); leave the flag out and give cgroupsPath as /a/b")  # fmt: skip
        if gopts.get("rootless") not in (None, "false", "auto"):
            raise UsageError("--rootless is not supported: minirt-oci runs as root")
        if gopts.get("criu"):
            raise UsageError("--criu: checkpoint/restore is not supported")
        root = os.path.abspath(gopts.get("root") or _default_root())
        cmd = rest[0]
        if cmd not in COMMANDS:
            raise UsageError(f"No help topic for '{cmd}'")
        opts, pos = parse_flags(COMMANDS[cmd][0], rest[1:], cmd in STOP_AT_POSITIONAL)
        if opts.get("help"):
            sys.stdout.write(USAGE)
            return 0
        from minirt.oci import commands

        return commands.dispatch(cmd, root, opts, pos)
    except MinirtError as e:
        log.error(str(e))
        # exec (not detached) reports "cannot execute" / "not found" as the shell does; every
        # other failure is runc's exit 1
        return e.exit_code if args_cmd(args) == "exec" and e.exit_code in (126, 127) else 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line, as runc's fatal; the traceback with --debug
        if os.environ.get("MINIRT_DEBUG"):
            raise
        log.error(f"internal error: {e!r}")
        return 1


def args_cmd(args: list[str]) -> str | None:
    return next((a for a in args if a in COMMANDS), None)


def _default_root() -> str:
    from minirt.oci.state import DEFAULT_ROOT

    return DEFAULT_ROOT


def version() -> int:
    """runc's --version lines, which go-runc and the engines parse (`... version X`, `commit:`,
    `spec:`)."""
    from minirt import __version__
    from minirt.oci import COMMIT
    from minirt.oci.spec import SPEC_VERSION

    sys.stdout.write(f"minirt-oci version {__version__}\ncommit: {COMMIT}\nspec: {SPEC_VERSION}\n")
    return 0


def entry() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
