"""Suite-wide fixtures: per-test state roots, the minirt runner, and the session leak guard.

Root-only tests never skip: a test that needs the kernel runs for real, and if it cannot
(not root) it fails (a test that passes when it cannot run proves nothing; see docs/testing.md).
"""

import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.helpers import cgroups, kernel

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


# Names handed out by uniq() this session: the leak guard claims these in the real host.
ISSUED_NAMES: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def leak_guard(tmp_path_factory):
    """Fail the run if anything the suite made outlives it (links, netns, nft tables, mounts,
    processes), looking only at the suite's own objects (tests/helpers/kernel.py says how they
    are told apart), so a minirt run by hand, or another session's suite, beside this one does
    not fail it. The veth of a dead netns goes away asynchronously, so poll briefly."""
    suite = kernel.Suite(
        pid=os.getpid(),
        token=f"{os.getpid()}-{secrets.token_hex(4)}",
        roots=(str(tmp_path_factory.getbasetemp()),),
        names=ISSUED_NAMES,
    )
    os.environ[kernel.SESSION_VAR] = suite.token  # inherited by everything the suite starts
    before = kernel.snapshot(suite)
    yield
    cgroups.remove(CGROUP_SESSION)  # each test removed its own; the session's parent is empty
    deadline = time.monotonic() + 5
    while True:
        problems = kernel.diff(before, kernel.snapshot(suite))
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if problems:
        pytest.fail("host left dirty by the suite:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def uniq() -> str:
    """A short unique name: 'mt' + 6 hex, leaving room under IFNAMSIZ for prefixes."""
    name = "mt" + secrets.token_hex(3)
    ISSUED_NAMES.add(name)
    return name


@pytest.fixture
def minirt_root(tmp_path):
    """A private MINIRT_ROOT per test (runc's per-test ROOT); checked empty of containers after
    --rm runs by the tests that care."""
    root = tmp_path / "minirt-root"
    root.mkdir()
    return str(root)


# The sysctls a throwaway host starts with, whatever the real host says. A new network
# namespace copies the real host's IPv4 devconf (net.core.devconf_inherit_init_net = 0, the
# default; with 1 it copies IPv6 too): on a Docker host, or after `make run`, it would start
# with ip_forward=1 and minirt's own `sysctl -w net.ipv4.ip_forward=1` step (test_explain...,
# test_kernel_state...) would never be seen. These are the kernel's defaults (net/ipv4/devinet.c
# ipv4_devconf and ipv4_devconf_dflt; IPv6 addrconf.c), for `all` and `default`.
_DEVCONF4 = {
    "forwarding": "0", "rp_filter": "0", "route_localnet": "0", "accept_local": "0", "src_valid_mark": "0",
    "bc_forwarding": "0", "proxy_arp": "0", "proxy_arp_pvlan": "0", "arp_filter": "0", "arp_ignore": "0",
    "arp_announce": "0", "arp_accept": "0", "arp_notify": "0", "drop_gratuitous_arp": "0",
    "drop_unicast_in_l2_multicast": "0", "log_martians": "0", "accept_redirects": "1", "send_redirects": "1",
    "secure_redirects": "1", "shared_media": "1", "disable_policy": "0", "disable_xfrm": "0",
    "promote_secondaries": "0", "ignore_routes_with_linkdown": "0",
}  # fmt: skip
HOST_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    **{f"net.ipv4.conf.{scope}.{key}": value for scope in ("all", "default") for key, value in _DEVCONF4.items()},
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "1",
    **{f"net.ipv6.conf.{scope}.{key}": "0" for scope in ("all", "default") for key in ("forwarding", "disable_ipv6")},
}
# br_netfilter: per network namespace since Linux 5.3 (brnf_net), 1 in every new namespace once
# the module is loaded (built in here). A throwaway host starts with it off, as a host that never
# loaded it; a test marked `br_netfilter` starts with it on, as a Docker host.
BR_NETFILTER = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
                "net.bridge.bridge-nf-call-arptables")  # fmt: skip
# The throwaway host's /etc/resolv.conf (a fixture file bind-mounted in its private mount
# namespace), never the machine's: one resolver on TEST-NET-3 that nothing answers on (a query
# sent there ends in the test's own namespaces). No search line: given one, busybox's nslookup
# asks only NAME.SEARCH, never the bare name, and the name tests would fail. Tests of other
# cases (a 127.0.0.53 stub, ::1, ndots, search) call set_resolv_conf().
RESOLV_CONF = "nameserver 203.0.113.53\n"


# For tests whose traffic must work both ways: bridged frames seen by nftables or not.
BOTH_BR_NETFILTER = pytest.mark.parametrize(
    "br_netfilter", ["off", pytest.param("on", marks=pytest.mark.br_netfilter)], ids=["brnf-off", "brnf-on"]
)


def _br_netfilter_per_netns() -> bool:
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (5, 3)


class HostNS:
    """A throwaway "host" for one test: a holder process in its own network and mount
    namespaces (netavark's `unshare -nm ... sleep inf`, CNI's NewNS). minirt runs inside it via
    nsenter, so minirt0, the `inet minirt` table and ip_forward are the test's own and parallel
    or repeated runs cannot collide. Leak checks run inside it before it is discarded, because
    discarding it would hide a leaked veth.

    It owns its state rather than inheriting the real host's: the sysctls above, br_netfilter
    off unless asked for, and its own /etc/resolv.conf."""

    def __init__(self, br_netfilter: bool = False, resolv_conf: str = RESOLV_CONF) -> None:
        import tempfile

        fd, self.resolv_path = tempfile.mkstemp(prefix="minirt-test-resolv-", suffix=".conf")
        os.close(fd)
        self.set_resolv_conf(resolv_conf)
        self.cgroup_hold = tempfile.mkdtemp(prefix="minirt-test-cg-")  # a mount point for a moment
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", "echo up; exec sleep 3600"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.pid = self.proc.pid
        try:
            self._setup(br_netfilter)
        except BaseException:
            self.close()  # the fixture never gets a HostNS to close
            raise

    def _setup(self, br_netfilter: bool) -> None:
        assert self.proc.stdout.readline() == "up\n", "holder namespace never appeared"
        self.proc.stdout.close()
        assert os.readlink(f"/proc/{self.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        sysctls = dict(HOST_SYSCTLS)
        if br_netfilter and not os.path.isdir("/proc/sys/net/bridge"):
            _load_br_netfilter()
        if _br_netfilter_per_netns():  # before 5.3 these are the real host's: never written
            sysctls.update({key: "1" if br_netfilter else "0" for key in BR_NETFILTER})
        elif br_netfilter:
            raise AssertionError(f"kernel {os.uname().release}: bridge-nf-call-* are not per netns (< 5.3)")
        setup = [
            "ip link set lo up",
            # a sysfs of this namespace's own (in its private mount namespace), so
            # /sys/class/net shows this "host"'s links as it would on a real host; the cgroup
            # mounts are the one tree shared with the real host, kept on top of it
            f"mount -n --rbind /sys/fs/cgroup {self.cgroup_hold}",
            "mount -n -t sysfs sysfs /sys",
            f"mount -n --move {self.cgroup_hold} /sys/fs/cgroup",
            # bind-mounting over a symlink (systemd-resolved's) covers its target
            f"mount -n --bind {self.resolv_path} /etc/resolv.conf",
            # -e: a key this kernel lacks (an older one; br_netfilter not loaded) is skipped
            "sysctl -q -e -w " + " ".join(f"{k}={v}" for k, v in sysctls.items()),
        ]
        self.run("sh", "-ec", "\n".join(setup))

    def set_resolv_conf(self, text: str) -> None:
        """What this host's /etc/resolv.conf says from now on (the same inode is rewritten, so
        the bind mount shows it)."""
        with open(self.resolv_path, "w") as f:
            f.write(text)

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
        try:
            os.unlink(self.resolv_path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.cgroup_hold)
        except OSError:
            pass


def _load_br_netfilter() -> None:
    """Debian's kernels build br_netfilter as a module, which Docker loads; here it is built in
    (/proc/sys/net/bridge always exists). Loading it is a change to the real host, made only
    for a test that needs it."""
    import shutil

    modprobe = shutil.which("modprobe")
    assert modprobe, "this test needs br_netfilter: not built in, and no modprobe to load it"
    subprocess.run([modprobe, "br_netfilter"], check=True, capture_output=True)
    assert os.path.isdir("/proc/sys/net/bridge"), "modprobe br_netfilter did not create /proc/sys/net/bridge"


@pytest.fixture
def host_ns(request):
    """The test's throwaway host; `@pytest.mark.br_netfilter` starts it with bridged traffic
    going through nftables (bridge-nf-call-*=1), as on a Docker host."""
    h = HostNS(br_netfilter=request.node.get_closest_marker("br_netfilter") is not None)
    try:
        yield h
    finally:
        h.close()


# The session's cgroup parent, relative to the pytest process's own cgroup in each hierarchy
# (tests/helpers/cgroups.py); each test gets a directory below it.
CGROUP_SESSION = f"mrtest-{os.getpid()}-{secrets.token_hex(3)}"


class Runner:
    def __init__(self, root: str, host: HostNS):
        self.root = root
        self.host = host
        self.cgroup_parent = f"{CGROUP_SESSION}/t{secrets.token_hex(4)}"
        # MINIRT_STORE: the test's own image store, never the machine's /var/lib/minirt
        self.env = {**os.environ, "MINIRT_ROOT": root, "MINIRT_ROOTFS": ROOTFS, "MINIRT_CONFIG": f"{root}/config.json",
                    "MINIRT_STORE": f"{root}/store"}  # fmt: skip
        self.write_config()
        # network safety: a network's DNS responder never forwards to the host's resolvers in
        # a test (set but empty = answer REFUSED); test_dns.py points it at a fake upstream
        self.env["MINIRT_DNS_UPSTREAM"] = ""
        self.env.pop("MINIRT_FAULT", None)

    def write_config(self, **settings) -> str:
        """The test's $MINIRT_CONFIG: its own cgroup parent, plus `settings`."""
        import json

        path = self.env["MINIRT_CONFIG"]
        with open(path, "w") as f:
            json.dump({"cgroup_parent": self.cgroup_parent, **settings}, f)
        return path

    def cgroup_dirs(self, cid: str) -> dict[str, str]:
        """The container's cgroup directories, as the kernel's mounts place them."""
        return cgroups.dirs(f"{self.cgroup_parent}/{cid}")

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
    try:
        _check_clean(r)
        stray = cgroups.leftovers(r.cgroup_parent)
        assert not stray, f"container cgroups left behind: {stray}"
    finally:
        cgroups.remove(r.cgroup_parent)


def _check_clean(r: Runner) -> None:
    import json

    deadline = time.monotonic() + 5
    while True:
        links = json.loads(r.host.run("ip", "-j", "link", "show").stdout)
        # mr<id>: minirt's containers; mc<hash>: minirt-cni's attachments (minirt/cni/store.py)
        veths = [link["ifname"] for link in links if link["ifname"].startswith(("mr", "mc"))]
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
    # published-port elements: each points a host port at an address the IPAM hands out again
    elements = []
    for m in ("ports_any", "ports_ip", "ports6_any", "ports6_ip"):
        listed = r.host.run("nft", "-j", "list", "map", "inet", "minirt", m, check=False)
        if listed.returncode == 0:
            for obj in json.loads(listed.stdout)["nftables"]:
                elements += [f"{m} {e}" for e in obj.get("map", {}).get("elem", [])]
    assert not elements, f"published-port elements left behind: {elements}"


def pytest_report_header(config):
    return [f"minirt: {MINIRT}", f"rootfs: {ROOTFS}", f"python: {sys.version.split()[0]}", cgroups.summary()]


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(cgroups.summary())
