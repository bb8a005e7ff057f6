"""minirt.cliparse: docker-style option parsing."""

import pytest

from minirt.cliparse import FLAG, LIST, VALUE, Option, parse, usage
from minirt.errors import ConfigError

OPTS = [
    Option(("--rm",), FLAG, "remove"),
    Option(("--name",), VALUE, "name", "NAME"),
    Option(("-h", "--hostname"), VALUE, "hostname", "NAME"),
    Option(("--net", "--network"), VALUE, "network", "MODE"),
    Option(("-e", "--env"), LIST, "env", "NAME[=VALUE]"),
    Option(("-w", "--workdir"), VALUE, "workdir", "DIR"),
    Option(("--cap-add",), LIST, "add cap", "CAP"),
    Option(("-i", "--interactive"), FLAG, "interactive"),
    Option(("-t", "--tty"), FLAG, "tty"),
]


def p(*args, **kw):
    return parse(OPTS, list(args), **kw)


def test_defaults_per_kind():
    values, operands = p()
    assert values == {
        "rm": False, "name": None, "hostname": None, "network": None, "env": [], "workdir": None,
        "cap_add": [], "interactive": False, "tty": False,
    }  # fmt: skip
    assert operands == []


def test_list_defaults_are_not_shared_between_calls():
    v1, _ = p("-e", "A=1")
    v2, _ = p()
    assert v1["env"] == ["A=1"]
    assert v2["env"] == []


def test_dest_is_last_name_with_underscores():
    assert Option(("--cap-add",), LIST, "").dest == "cap_add"
    assert Option(("-h", "--hostname"), VALUE, "").dest == "hostname"
    assert Option(("--net", "--network"), VALUE, "").dest == "network"


def test_long_value_separate():
    values, operands = p("--name", "web", "img")
    assert values["name"] == "web"
    assert operands == ["img"]


def test_long_value_equals():
    values, operands = p("--name=web", "--env=A=B=C")
    assert values["name"] == "web"
    assert values["env"] == ["A=B=C"]
    assert operands == []


def test_long_value_may_start_with_dash_when_separate():
    values, _ = p("--workdir", "-odd-dir")
    assert values["workdir"] == "-odd-dir"


def test_aliases_share_one_destination():
    assert p("--net", "host")[0]["network"] == "host"
    assert p("--network=none")[0]["network"] == "none"
    assert p("-h", "box")[0]["hostname"] == "box"
    assert p("--hostname", "box2")[0]["hostname"] == "box2"


def test_repeated_value_last_wins():
    values, _ = p("--name", "a", "--name=b")
    assert values["name"] == "b"


def test_short_value_separate():
    values, _ = p("-e", "A=1")
    assert values["env"] == ["A=1"]


def test_short_value_attached():
    values, _ = p("-eA=1")
    assert values["env"] == ["A=1"]


def test_short_value_with_equals_sign():
    values, _ = p("-e=A=1", "-w=/tmp")
    assert values["env"] == ["A=1"]
    assert values["workdir"] == "/tmp"


def test_bundled_short_flags():
    values, operands = p("-it", "img")
    assert values["interactive"] is True
    assert values["tty"] is True
    assert operands == ["img"]


def test_bundled_flags_then_value_option():
    values, _ = p("-ite", "A=1")
    assert (values["interactive"], values["tty"], values["env"]) == (True, True, ["A=1"])
    values, _ = p("-tiwB")
    assert (values["interactive"], values["tty"], values["workdir"]) == (True, True, "B")


def test_repeated_list_options_keep_order_across_spellings():
    values, _ = p("-e", "A=1", "--env", "B=2", "-eC=3", "--env=D=4", "--cap-add", "x", "--cap-add=y")
    assert values["env"] == ["A=1", "B=2", "C=3", "D=4"]
    assert values["cap_add"] == ["x", "y"]


def test_double_dash_ends_options():
    values, operands = p("-i", "--", "-t", "--name", "x")
    assert values["interactive"] is True
    assert values["tty"] is False
    assert values["name"] is None
    assert operands == ["-t", "--name", "x"]


def test_double_dash_after_operand_is_part_of_the_command():
    _, operands = p("sh", "--", "x")
    assert operands == ["sh", "--", "x"]


def test_first_operand_ends_options():
    values, operands = p("--rm", "sh", "-c", "echo hi", "--name", "x", "-it")
    assert values["rm"] is True
    assert values["name"] is None
    assert values["tty"] is False
    assert operands == ["sh", "-c", "echo hi", "--name", "x", "-it"]


def test_single_dash_is_an_operand():
    values, operands = p("-", "-i")
    assert operands == ["-", "-i"]
    assert values["interactive"] is False


def test_without_stop_at_operand_options_and_operands_interleave():
    values, operands = p("a", "-i", "b", "--name", "n", "c", stop_at_operand=False)
    assert operands == ["a", "b", "c"]
    assert values["interactive"] is True
    assert values["name"] == "n"


@pytest.mark.parametrize("args", [["--nope"], ["--nope=1"], ["--rm", "--nope", "x"], ["--na"]])
def test_unknown_long_flag(args):
    with pytest.raises(ConfigError, match="unknown flag: --n"):
        p(*args)


@pytest.mark.parametrize("args", [["-x"], ["-ix"], ["-x", "img"]])
def test_unknown_short_flag(args):
    with pytest.raises(ConfigError, match="unknown shorthand flag: 'x'"):
        p(*args)


def test_unknown_flag_after_operand_is_not_an_error():
    _, operands = p("img", "--nope")
    assert operands == ["img", "--nope"]


@pytest.mark.parametrize("args", [["--name"], ["-e"], ["-ie"], ["--rm", "--env"], ["-w"]])
def test_missing_value(args):
    with pytest.raises(ConfigError, match="flag needs an argument"):
        p(*args)


@pytest.mark.parametrize("text", ["false", "False", "FALSE", "0", "no"])
def test_flag_equals_false(text):
    values, _ = p("--rm", f"--rm={text}")
    assert values["rm"] is False


@pytest.mark.parametrize("text", ["true", "1", "yes"])
def test_flag_equals_true(text):
    values, _ = p(f"--rm={text}")
    assert values["rm"] is True


def test_flag_does_not_consume_next_argument():
    values, operands = p("--rm", "false")
    assert values["rm"] is True
    assert operands == ["false"]


def test_usage_lists_every_option_with_metavar():
    text = usage("minirt run", OPTS)
    assert text.startswith("Usage: minirt run\n")
    assert "-h, --hostname NAME" in text
    assert "--cap-add CAP" in text
    assert text.endswith("\n")
    for o in OPTS:
        assert ", ".join(o.names) in text


# ---- --help ---------------------------------------------------------------------------------


def help_text(capsys, options, *args, **kw) -> str:
    with pytest.raises(SystemExit) as ei:
        parse(options, list(args), prog="minirt x [OPTIONS]", **kw)
    assert ei.value.code == 0
    return capsys.readouterr().out


def test_help_prints_usage_on_stdout_and_exits_0(capsys):
    out = help_text(capsys, OPTS, "--rm", "--help", "--nope")
    assert out.startswith("Usage: minirt x [OPTIONS]\n")
    assert "--cap-add CAP" in out and "--help" in out


def test_short_h_is_help_only_where_no_option_takes_it(capsys):
    # cobra's rule: `docker ps -h` is help, `docker run -h NAME` the hostname
    assert p("-h", "box", prog="minirt x")[0]["hostname"] == "box"
    out = help_text(capsys, [Option(("-i",), FLAG, "i")], "-ih")
    assert "-h, --help" in out


def test_help_after_the_first_operand_belongs_to_the_command():
    values, operands = p("-i", "sh", "--help", prog="minirt x")
    assert operands == ["sh", "--help"]
    assert "help" not in values


def test_help_as_an_option_value_is_a_value():
    assert p("--name", "--help", prog="minirt x")[0]["name"] == "--help"


def test_without_prog_help_is_an_unknown_flag():
    with pytest.raises(ConfigError, match="unknown flag: --help"):
        p("--help")


def test_usage_keeps_one_help_column_for_long_names():
    text = usage("minirt x", [Option(("-s", "--signal", "--stop-signal"), VALUE, "first", "SIG"),
                              Option(("-t",), FLAG, "second")])  # fmt: skip
    first, second = text.splitlines()[3:5]
    assert first.index("first") == second.index("second")
    assert "SIG  first" in first
