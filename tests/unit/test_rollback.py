"""minirt.rollback: the undo list."""

import pytest

from minirt import explain
from minirt.errors import CleanupError, ConfigError, MinirtError
from minirt.rollback import Rollback, run_undo


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setattr(explain, "enabled", False)


def fail(msg):
    def f():
        raise OSError(msg)

    return f


def test_actions_run_newest_first_on_exception():
    ran = []
    with pytest.raises(ValueError, match="step 3"):
        with Rollback() as rb:
            rb.add("one", ran.append, 1)
            rb.add("two", ran.append, 2)
            rb.add("three", lambda: ran.append(3))
            raise ValueError("step 3")
    assert ran == [3, 2, 1]


def test_add_binds_arguments_at_add_time():
    ran = []
    with pytest.raises(RuntimeError):
        with Rollback() as rb:
            for i in range(3):
                rb.add(f"undo {i}", ran.append, i)
            raise RuntimeError
    assert ran == [2, 1, 0]


def test_all_actions_run_even_when_some_fail():
    ran = []
    with pytest.raises(ValueError) as ei:
        with Rollback() as rb:
            rb.add("a", ran.append, "a")
            rb.add("b", fail("boom b"))
            rb.add("c", ran.append, "c")
            rb.add("d", fail("boom d"))
            raise ValueError("original")
    assert ran == ["c", "a"]
    assert str(ei.value) == "original"  # the first error stays in front
    assert ei.value.__notes__ == ["cleanup also failed: d: boom d; b: boom b"]


def test_note_added_to_minirt_error_and_base_exception():
    with pytest.raises(ConfigError) as ei:
        with Rollback() as rb:
            rb.add("rm x", fail("busy"))
            raise ConfigError("bad flag")
    assert ei.value.__notes__ == ["cleanup also failed: rm x: busy"]

    with pytest.raises(KeyboardInterrupt) as ki:
        with Rollback() as rb:
            rb.add("rm y", fail("gone"))
            raise KeyboardInterrupt
    assert ki.value.__notes__ == ["cleanup also failed: rm y: gone"]


def test_no_note_when_cleanup_succeeds():
    with pytest.raises(ValueError) as ei:
        with Rollback() as rb:
            rb.add("ok", lambda: None)
            raise ValueError("x")
    assert not getattr(ei.value, "__notes__", None)


def test_success_runs_undo_too_unless_released():
    ran = []
    with Rollback() as rb:
        rb.add("a", ran.append, "a")
    assert ran == ["a"]


def test_no_exception_and_failing_undo_raises_cleanup_error():
    ran = []
    with pytest.raises(CleanupError) as ei:
        with Rollback() as rb:
            rb.add("first", ran.append, 1)
            rb.add("ip link del mr1", fail("No such device"))
            rb.add("umount /x", fail("busy"))
    assert ran == [1]
    assert ei.value.failures == ["umount /x: busy", "ip link del mr1: No such device"]
    assert str(ei.value) == "cleanup failed: umount /x: busy; ip link del mr1: No such device"
    assert isinstance(ei.value, MinirtError)
    assert ei.value.exit_code == 125


def test_release_empties_the_list_so_exit_does_nothing():
    ran = []
    with Rollback() as rb:
        rb.add("a", ran.append, "a")
        rb.add("b", fail("would fail"))
        handed = rb.release()
    assert ran == []
    assert [what for what, _ in handed] == ["a", "b"]
    with pytest.raises(ValueError):
        with Rollback() as rb:
            rb.add("c", ran.append, "c")
            rb.release()
            raise ValueError
    assert ran == []


def test_released_actions_run_later_with_run_undo():
    ran = []
    with Rollback() as rb:
        rb.add("a", ran.append, "a")
        rb.add("b", ran.append, "b")
        handed = rb.release()
    assert run_undo(handed) == []
    assert ran == ["b", "a"]


def test_run_undo_collects_failures_newest_first():
    ran = []
    actions = [("a", lambda: ran.append("a")), ("b", fail("eb")), ("c", fail("ec"))]
    assert run_undo(actions) == ["c: ec", "b: eb"]
    assert ran == ["a"]
    assert run_undo([]) == []


def test_explain_prints_each_undo(monkeypatch, capfd):
    monkeypatch.setattr(explain, "enabled", True)
    run_undo([("ip link del a", lambda: None), ("ip link del b", lambda: None)])
    assert capfd.readouterr().err == "+ ip link del b\n+ ip link del a\n"
