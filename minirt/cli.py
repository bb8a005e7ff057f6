"""Command-line entry: dispatch to minirt.commands.<verb>; the only place that prints errors
and chooses exit codes (pipx cli(), runc fatalWithCode)."""

import os
import sys

from minirt import timing
from minirt.errors import EXIT_RUNTIME, MinirtError

VERBS = {
    "run": "create and run a container in the foreground",
    "ps": "list containers (-a: also stopped ones)",
    "exec": "run a command in a running container",
    "logs": "print a detached container's output (-f: follow)",
    "inspect": "Docker-shaped JSON of containers",
    "stats": "CPU, memory, network and block I/O of containers (--no-stream: one sample)",
    "update": "change the resource limits of containers",
    "port": "the published ports of a container",
    "stop": "SIGTERM, then SIGKILL after -t seconds",
    "start": "start a stopped container again (detached)",
    "kill": "send a signal to a container",
    "rm": "remove containers (-f: kill first)",
    "gc": "reclaim what a crash left behind (and unused image layers)",
    "events": "container and network events (--since, --until, --filter, --format json)",
    "pull": "download an image from a registry (OCI distribution API)",
    "images": "list images",
    "load": "load images from a docker save tarball or an OCI layout (-i FILE)",
    "import": "make an image of one layer from a root filesystem tarball",
    "rmi": "remove images (-f: even if a stopped container uses them)",
    "network": "create, list (ls), inspect, reload, remove (rm) or draw (graph) bridge networks",
    "trace": "follow packets through the nftables rules: NAT, verdicts, who dropped them",
    "doctor": "check the kernel features minirt needs and what on this host fights it",
}

WARM_UP = ("run",)  # moves a process into a new container's cgroup at once (exec: execin.py)
MODULES = {"import": "import_"}  # a verb that is a Python keyword

USAGE = ("Usage: minirt COMMAND [OPTIONS]\n\nCommands:\n" + "".join(f"  {v:<8} {h}\n" for v, h in VERBS.items())
         + "\nRun `minirt COMMAND --help` for a command's options.\n")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    timing.mark("main")
    try:
        if not args or args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return 0
        if args[0] in ("-v", "--version"):
            from minirt import __version__

            print(f"minirt {__version__}")
            return 0
        verb = args[0]
        if verb not in VERBS:
            raise MinirtError(f"unknown command {verb!r} (see `minirt --help`)")
        if verb in WARM_UP:
            # before the verb's imports: the kernel's grace-period wait for the cgroup move
            # `run` makes ~30 ms from here then runs beside them (cgroups/__init__.py)
            from minirt import cgroups

            cgroups.warm_up_attach()
        # __import__, not importlib.import_module: importlib pulls in warnings (~1.5 ms)
        module = f"minirt.commands.{MODULES.get(verb, verb)}"
        __import__(module)
        return sys.modules[module].main(args[1:])
    except MinirtError as e:
        _print_error(str(e), getattr(e, "__notes__", ()))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `minirt ps | head`: quiet, as docker, whose SIGPIPE kills it (128+13)
        return 141
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    except Exception as e:  # noqa: BLE001 - one line for the user, the traceback on request
        if os.environ.get("MINIRT_DEBUG"):
            raise
        _print_error(f"internal error: {e!r}", getattr(e, "__notes__", ()))
        return EXIT_RUNTIME


def _print_error(message: str, notes) -> None:
    sys.stderr.write(f"minirt: {message}\n")
    for note in notes:
        sys.stderr.write(f"minirt: {note}\n")


def entry() -> None:
    """Console-script entry: exit without the interpreter's shutdown work (~28 ms once pyroute2 is
    imported; docs/performance.md, "Measured costs")."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # what main() printed last had no reader left
        code = code or 141
    os._exit(code)
