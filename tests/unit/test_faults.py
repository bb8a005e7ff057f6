"""minirt.faults: test-only fault points (MINIRT_FAULT=fail:<point> / kill:<point>)."""

import os
import signal
import subprocess
import sys

import pytest

import minirt
from minirt import faults
from minirt.errors import MinirtError


def test_unset_is_a_no_op(monkeypatch):
    monkeypatch.setattr(faults, "_action", "")
    monkeypatch.setattr(faults, "_point", "")
    faults.point("after-spawn")
    faults.point("after-record")


def test_fail_raises_only_at_its_point(monkeypatch):
    monkeypatch.setattr(faults, "_action", "fail")
    monkeypatch.setattr(faults, "_point", "after-record")
    faults.point("after-spawn")
    faults.point("after-record-x")
    with pytest.raises(faults.InjectedFault, match="injected fault at after-record") as ei:
        faults.point("after-record")
    assert isinstance(ei.value, MinirtError)
    assert ei.value.exit_code == 125


def test_kill_sigkills_the_process(monkeypatch):
    monkeypatch.setattr(faults, "_action", "kill")
    monkeypatch.setattr(faults, "_point", "after-veth")
    pid = os.fork()
    if pid == 0:
        try:
            faults.point("other")
            faults.point("after-veth")
        finally:
            os._exit(3)  # only if the fault point did not kill us
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("value, raises", [("fail:p1", True), ("kill:p2", False), ("", False), ("p1", False)])
def test_environment_is_read_at_import(value, raises):
    code = "from minirt import faults\ntry:\n    faults.point('p1')\nexcept faults.InjectedFault:\n    print('raised')\n"
    env = {**os.environ, "MINIRT_FAULT": value, "PYTHONPATH": os.path.dirname(os.path.dirname(minirt.__file__))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (out.stdout == "raised\n") is raises
