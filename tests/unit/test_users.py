"""minirt/users.py against sample files: moby/sys user GetExecUser / GetAdditionalGroups semantics."""

import pytest

from minirt.users import ExecUser, UserError, additional_groups, atoi, parse_group, parse_passwd, resolve

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false

  app:x:1000:1000:app:/home/app:/bin/sh
dup:x:1000:7:second entry for 1000:/dup:/bin/sh
short:x:1001
bad:x:notanumber:12:bad uid reads as 0:/bad:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
wheel:x:10:root
audio:x:29:app,other
staff:x:50:app
app:x:1000:
nogroup:x:65534:
"""


def test_atoi_is_gos():
    assert atoi("42") == 42 and atoi("+7") == 7 and atoi("-1") == -1
    for bad in ("", " 1", "1_0", "0x10", "١", "+", "1.0"):
        assert atoi(bad) is None, bad


def test_parse_passwd_and_group():
    users = parse_passwd(PASSWD)
    assert users[0] == ("root", 0, 0, "/root")
    assert ("app", 1000, 1000, "/home/app") in users  # trimmed line; blank line skipped
    assert ("short", 1001, 0, "") in users  # missing fields are empty
    assert ("bad", 0, 12, "/bad") in users
    assert parse_group(GROUP)[2] == ("audio", 29, ["app", "other"])
    assert parse_group(None) == [] and parse_passwd("") == []


def test_default_user_is_root_from_passwd():
    assert resolve(None, PASSWD, GROUP) == ExecUser(0, 0, [10], "/root")  # wheel lists root
    assert resolve("", None, None) == ExecUser(0, 0, [], "/")


def test_name_gives_uid_gid_home_and_member_groups():
    assert resolve("app", PASSWD, GROUP) == ExecUser(1000, 1000, [29, 50], "/home/app")


def test_numeric_uid_is_always_an_id_and_first_entry_wins():
    assert resolve("1000", PASSWD, GROUP) == ExecUser(1000, 1000, [29, 50], "/home/app")


def test_numeric_uid_without_entry():
    assert resolve("4242", PASSWD, GROUP) == ExecUser(4242, 0, [], "/")
    assert resolve("4242:4343", PASSWD, GROUP) == ExecUser(4242, 4343, [], "/")
    assert resolve("4242", None, None) == ExecUser(4242, 0, [], "/")


def test_explicit_group_by_name_or_number_and_no_supplementary():
    assert resolve("app:staff", PASSWD, GROUP) == ExecUser(1000, 50, [], "/home/app")
    assert resolve("app:29", PASSWD, GROUP) == ExecUser(1000, 29, [], "/home/app")
    assert resolve("nobody:777", PASSWD, GROUP) == ExecUser(65534, 777, [], "/nonexistent")
    assert resolve(":staff", PASSWD, GROUP) == ExecUser(0, 50, [], "/root")


def test_unknown_user_and_group_messages():
    with pytest.raises(UserError, match=r"^unable to find user x: no matching entries in passwd file$"):
        resolve("x", PASSWD, GROUP)
    with pytest.raises(UserError, match=r"^unable to find user x: no matching entries in passwd file$"):
        resolve("x", None, GROUP)  # no passwd file at all: a name cannot resolve
    with pytest.raises(UserError, match=r"^unable to find group g: no matching entries in group file$"):
        resolve("app:g", PASSWD, GROUP)
    with pytest.raises(UserError, match=r"^unable to find group g: no matching entries in group file$"):
        resolve("app:g", PASSWD, None)


def test_out_of_range_ids():
    for spec in ("-1", "2147483648", "app:-5", "0:2147483648"):
        with pytest.raises(UserError, match=r"^uids and gids must be in range 0-2147483647$"):
            resolve(spec, PASSWD, GROUP)
    with pytest.raises(UserError, match="range"):
        additional_groups(["-3"], GROUP)


def test_group_add_names_numbers_and_duplicates():
    assert additional_groups(["wheel", "29", "777", "wheel", "10"], GROUP) == [10, 29, 777]
    assert additional_groups(["5"], None) == [5]
    with pytest.raises(UserError, match=r"^Unable to find group nosuch$"):
        additional_groups(["nosuch"], GROUP)
    u = resolve("app", PASSWD, GROUP, ["wheel", "50"])
    assert u.sgids == [29, 50, 10]  # staff already there
    assert resolve("app:app", PASSWD, GROUP, ["audio"]).sgids == [29]
