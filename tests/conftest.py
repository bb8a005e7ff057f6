"""Suite-wide fixtures: per-test state roots, the minirt runner, and the session leak guard.

Root-only tests never skip: a test that needs the kernel runs for real, and if it cannot
(not root) it fails (STYLE 4: "tests that pass when they cannot run" are not copied).
"""

import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.helpers import kernel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINIRT = os.environ.get("MINIRT_BIN") or f"{REPO}/.venv/bin/minirt"
ROOTFS = os.environ.get("MINIRT_TEST_ROOTFS") or f"{REPO}/build/rootfs"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.root)


@pytest.fixture(autouse=True)
def _require_root(request):
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        pytest.fail("this test needs root and the real kernel; run `make test` as root")


@pytest.fixture(scope="session", autouse=True)
def leak_guard():
    """Fail the run if anything minirt can create outlives the suite (links, netns, nft tables,
    mounts, processes). The veth of a dead netns goes away asynchronously, so poll briefly."""
    me = {os.getpid(), os.getppid()}
    before = kernel.snapshot(me)
    yield
    deadline = time.monotonic() + 5
    while True:
        problems = kernel.diff(before, kernel.snapshot(me))
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if problems:
        pytest.fail("host left dirty by the suite:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def uniq() -> str:
    """A short unique name: 'mt' + 6 hex, leaving room under IFNAMSIZ for prefixes."""
    return "mt" + secrets.token_hex(3)


@pytest.fixture
def minirt_root(tmp_path):
    """A private MINIRT_ROOT per test (runc's per-test ROOT); checked empty of containers after
    --rm runs by the tests that care."""
    root = tmp_path / "minirt-root"
    root.mkdir()
    return str(root)


class Runner:
    def __init__(self, root: str):
        self.root = root
        self.env = {**os.environ, "MINIRT_ROOT": root, "MINIRT_ROOTFS": ROOTFS}
        self.env.pop("MINIRT_FAULT", None)

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [MINIRT, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=kw.pop("stdin", subprocess.DEVNULL),
            **kw,
        )

    def popen(self, *args: str, env: dict | None = None, **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen([MINIRT, *args], env={**self.env, **(env or {})}, text=True, **kw)

    def containers(self) -> list[str]:
        try:
            return os.listdir(f"{self.root}/containers")
        except FileNotFoundError:
            return []


@pytest.fixture
def minirt(minirt_root) -> Runner:
    return Runner(minirt_root)


def pytest_report_header(config):
    return [f"minirt: {MINIRT}", f"rootfs: {ROOTFS}", f"python: {sys.version.split()[0]}"]
