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


class HostNS:
    """A throwaway "host" for one test: a holder process in its own network and mount
    namespaces (netavark's `unshare -nm ... sleep inf`, CNI's NewNS). minirt runs inside it via
    nsenter, so minirt0, the `inet minirt` table and ip_forward are the test's own and parallel
    or repeated runs cannot collide. Leak checks run inside it before it is discarded, because
    discarding it would hide a leaked veth."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sleep", "3600"],
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{self.pid}/ns/net") == own:  # until unshare has run
            assert time.monotonic() < deadline, "holder namespace never appeared"
            time.sleep(0.005)
        self.run("ip", "link", "set", "lo", "up")
        # a sysfs of this namespace's own (in its private mount namespace), so /sys/class/net
        # shows this "host"'s links as it would on a real host
        self.run("mount", "-t", "sysfs", "sysfs", "/sys")

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "--"]

    def run(self, *cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix(), *cmd], capture_output=True, text=True, check=check, timeout=60, **kw)

    def json(self, *cmd: str):
        import json

        out = self.run(*cmd).stdout
        return json.loads(out) if out.strip() else None

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def host_ns():
    h = HostNS()
    try:
        yield h
    finally:
        h.close()


class Runner:
    def __init__(self, root: str, host: HostNS):
        self.root = root
        self.host = host
        self.env = {**os.environ, "MINIRT_ROOT": root, "MINIRT_ROOTFS": ROOTFS, "MINIRT_CONFIG": f"{root}/no-config"}
        # network safety: a network's DNS responder never forwards to the host's resolvers in
        # a test (set but empty = answer REFUSED); test_dns.py points it at a fake upstream
        self.env["MINIRT_DNS_UPSTREAM"] = ""
        self.env.pop("MINIRT_FAULT", None)

    def argv(self, *args: str) -> list[str]:
        return [*self.host.prefix(), MINIRT, *args]

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*args),
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
        return subprocess.Popen(self.argv(*args), env={**self.env, **(env or {})}, text=True, **kw)

    def containers(self) -> list[str]:
        try:
            return os.listdir(f"{self.root}/containers")
        except FileNotFoundError:
            return []


@pytest.fixture
def minirt(minirt_root, host_ns) -> Runner:
    """Runs minirt inside the test's own host namespace with its own MINIRT_ROOT; after the
    test, nothing minirt made may remain in that namespace (links, nft elements, leases)."""
    r = Runner(minirt_root, host_ns)
    yield r
    left = r.containers()
    if left:  # a failed test may leave detached containers: never let them outlive the test
        r("rm", "-f", *left)
    _check_clean(r)


def _check_clean(r: Runner) -> None:
    import json

    deadline = time.monotonic() + 5
    while True:
        links = json.loads(r.host.run("ip", "-j", "link", "show").stdout)
        veths = [link["ifname"] for link in links if link["ifname"].startswith("mr")]
        if not veths or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not veths, f"container veths left in the test's host namespace: {veths}"
    while True:
        leases = []
        for net in os.listdir(f"{r.root}/networks") if os.path.isdir(f"{r.root}/networks") else []:
            d = f"{r.root}/networks/{net}/leases"
            if os.path.isdir(d):
                leases += [f"{net}/{x}" for x in os.listdir(d) if x[0].isdigit()]
            d6 = f"{r.root}/networks/{net}/leases6"  # dual-stack networks
            if os.path.isdir(d6):
                leases += [f"{net}/{x}" for x in os.listdir(d6) if ":" in x and x[0] != "."]
        if not leases or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leases, f"leases left behind: {leases}"


def pytest_report_header(config):
    return [f"minirt: {MINIRT}", f"rootfs: {ROOTFS}", f"python: {sys.version.split()[0]}"]
