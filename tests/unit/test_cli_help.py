"""Every verb (and every `network` subcommand) answers --help with its own usage and options on
stdout, exit 0, as docker's commands do; flags of another `network` subcommand are refused.
In-process through cli.main, which turns parse()'s SystemExit into the exit code: no root."""

import pytest

from minirt import cli
from minirt.commands import network

@pytest.fixture(autouse=True)
def private_root(tmp_path, monkeypatch):
    # a --help that fell through to the command would find nothing here, and change nothing
    monkeypatch.setenv("MINIRT_ROOT", str(tmp_path / "minirt-root"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def own_options(verb: str) -> list[str]:
    """The names in the verb's OPTIONS table; inspect, port, start and doctor have none."""
    module = __import__(f"minirt.commands.{cli.MODULES.get(verb, verb)}", fromlist=["OPTIONS"])
    return [name for o in getattr(module, "OPTIONS", []) for name in o.names]


@pytest.mark.parametrize("verb", [v for v in cli.VERBS if v != "network"])
def test_every_verb_answers_help(capsys, verb):
    rc, out, err = run(capsys, verb, "--help")
    assert (rc, err) == (0, "")
    assert out.startswith(f"Usage: minirt {verb}")
    assert "--help" in out
    for name in own_options(verb):
        assert name in out, f"{verb} --help does not list {name}"


@pytest.mark.parametrize("verb", ["ps", "logs", "gc", "inspect", "doctor", "exec"])
def test_short_h_is_help_where_nothing_else_takes_it(capsys, verb):
    rc, out, _ = run(capsys, verb, "-h")
    assert rc == 0 and out.startswith(f"Usage: minirt {verb}")


def test_run_h_is_still_the_hostname(tmp_path):
    from minirt.commands.run import build_config

    assert build_config(["-h", "box", "--rootfs", str(tmp_path)]).hostname == "box"


@pytest.mark.parametrize("argv", [["network"], ["network", "--help"], ["network", "-h"]])
def test_network_help_lists_the_subcommands(capsys, argv):
    rc, out, _ = run(capsys, *argv)
    assert rc == 0 and out.startswith("Usage: minirt network COMMAND")
    for sub in network.SUBCOMMANDS:
        assert f"\n  {sub} " in out


@pytest.mark.parametrize("sub", [*network.SUBCOMMANDS, "list", "remove"])
def test_every_network_subcommand_answers_help(capsys, sub):
    rc, out, err = run(capsys, "network", sub, "--help")
    sub = network.SUB_ALIASES.get(sub, sub)
    assert (rc, err) == (0, "")
    assert out.startswith(f"Usage: minirt network {sub}")
    options = [name for o in network.SUBCOMMANDS[sub][2] for name in o.names]
    for name in options:
        assert name in out
    # and only its own: `network ls --help` does not offer --internal
    for other in network.SUBCOMMANDS.values():
        for o in other[2]:
            if o.names[-1] not in options:
                assert f" {o.names[-1]} " not in out


def foreign_flags():
    """(subcommand, a long flag only other subcommands have)."""
    for sub, (_, _, options) in network.SUBCOMMANDS.items():
        own = {n for o in options for n in o.names}
        others = {o.names[-1] for _, _, opts in network.SUBCOMMANDS.values() for o in opts}
        for flag in sorted(others - own):
            yield sub, flag


@pytest.mark.parametrize("sub, flag", list(foreign_flags()))
def test_network_subcommand_refuses_another_ones_flag(capsys, sub, flag):
    rc, out, err = run(capsys, "network", sub, flag, "x")
    assert (rc, out) == (125, "")
    assert err == f"minirt: unknown flag: {flag}\n"


def test_network_ls_internal_is_refused_and_ls_still_lists(capsys):
    assert run(capsys, "network", "ls", "--internal") == (125, "", "minirt: unknown flag: --internal\n")
    assert run(capsys, "network", "list", "-q") == (0, "", "")


def test_exec_passes_help_after_the_container_to_the_command():
    from minirt.cliparse import parse
    from minirt.commands import exec as exec_

    opts, rest = parse(exec_.OPTIONS, ["-t", "c1", "sh", "--help"], prog=exec_.USAGE)
    assert opts["tty"] is True and rest == ["c1", "sh", "--help"]


class _ClosedPipe:
    """stdout whose reader is gone (`minirt ps | head -1` after head exited)."""

    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass


def test_a_closed_stdout_ends_quietly_with_sigpipes_code(monkeypatch, capsys):
    # Docker's CLI dies of SIGPIPE there: status 141, nothing on stderr (no "internal error")
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert cli.main(["--help"]) == 141
    assert capsys.readouterr().err == ""
