"""The session leak guard's filters (tests/helpers/kernel.py): it claims what the suite made
and nothing a person or another session runs beside it. Pure: no root, no /proc."""

from tests.helpers import kernel
from tests.helpers.kernel import Proc, Suite

PYTEST = 4000
BASE = "/tmp/pytest-of-root/pytest-7"
SUITE = Suite(pid=PYTEST, token="4000-abcd", roots=(BASE,), names={"mt1a2b3c"})


def P(pid, ppid, cmd, state="S", **env):
    return Proc(pid, ppid, state, cmd, env)


def procs(*ps: Proc) -> dict[int, Proc]:
    return {p.pid: p for p in ps}


def pids(found: set[str]) -> set[int]:
    return {int(x.split()[0]) for x in found}


def test_processes_of_the_suite_are_claimed():
    table = procs(
        P(1, 0, "/sbin/init"),
        P(3900, 1, "make test"),
        P(PYTEST, 3900, "python -m pytest", MINIRT_TEST_SESSION="4000-abcd"),
        P(4001, PYTEST, "unshare --net --mount -- sleep 3600"),  # a holder: a child
        P(4002, 4001, "sleep 3600"),  # a grandchild
        P(4003, PYTEST, "ip -j link"),  # a child whose environment was replaced: still ours
        # a detached supervisor, reparented to init, found by the session marker
        P(4100, 1, "minirt run -d -- sleep 30", MINIRT_TEST_SESSION="4000-abcd"),
        P(4101, 4100, "sleep 30"),  # its container init: the container's environment
        P(4102, 4101, "sh -c x"),  # and what runs in the container
        # a DNS responder started with the session's MINIRT_ROOT only
        P(4200, 1, "minirt-dns", MINIRT_ROOT=f"{BASE}/test_x0/minirt-root"),
    )
    assert pids(kernel.suite_processes(table, SUITE)) == {4001, 4002, 4003, 4100, 4101, 4102, 4200}


def test_processes_beside_the_suite_are_not_claimed():
    table = procs(
        P(1, 0, "/sbin/init"),
        P(PYTEST, 1, "python -m pytest", MINIRT_TEST_SESSION="4000-abcd"),
        # `minirt run -d` by hand in the real host: default root, no marker
        P(5000, 1, "/work/main/.venv/bin/minirt run -d -- sleep 1000"),
        P(5001, 5000, "sleep 1000"),
        P(5002, 1, "minirt run --rm -- sh", MINIRT_ROOT="/run/minirt"),
        # another session's suite: its own marker, its own basetemp (pytest-70 is not pytest-7)
        P(6000, 1, "python -m pytest", MINIRT_TEST_SESSION="6000-ffff"),
        P(6001, 1, "minirt run -d -- sleep 30", MINIRT_TEST_SESSION="6000-ffff",
          MINIRT_ROOT="/tmp/pytest-of-root/pytest-70/test_y0/minirt-root"),  # fmt: skip
        P(6002, 6001, "sleep 30"),
        P(6003, 1, "minirt-dns", MINIRT_ROOT="/tmp/pytest-of-root/pytest-7x/minirt-root"),
        # a process whose parent vanished from the listing
        P(7000, 6999, "orphan"),
    )
    assert kernel.suite_processes(table, SUITE) == set()


def test_zombies_and_pytest_itself_are_not_leaks():
    table = procs(
        P(PYTEST, 1, "python -m pytest", MINIRT_TEST_SESSION="4000-abcd"),
        P(4001, PYTEST, "", state="Z"),
        P(4002, 1, "minirt run", state="Z", MINIRT_TEST_SESSION="4000-abcd"),
    )
    assert kernel.suite_processes(table, SUITE) == set()


def test_under_is_by_whole_components():
    assert kernel.under(f"{BASE}/test_a0/minirt-root", (BASE,))
    assert kernel.under(BASE, (BASE + "/",))
    assert kernel.under(f"{BASE}/x/../y", (BASE,))
    assert not kernel.under("/tmp/pytest-of-root/pytest-70/x", (BASE,))
    assert not kernel.under("", (BASE,))
    assert not kernel.under("/run/minirt", (BASE,))


def test_links_netns_and_tables_only_by_the_suites_names():
    links = {"lo", "eth0", "minirt0", "mr0123456789ab", "br-0a1b2c3d4e5f", "mt1a2b3c", "mtffffff", "wanh"}
    # minirt0, mr…, br-… may be a hand-run minirt's; mtffffff is another session's uniq()
    assert kernel.suite_names(links, SUITE, kernel.SUITE_LINKS) == {"mt1a2b3c", "wanh"}
    assert kernel.suite_names({"mt1a2b3c", "mtffffff", "cni-1234"}, SUITE) == {"mt1a2b3c"}
    tables = {"inet minirt", "ip filter", "ip nat", "inet mt1a2b3c", "inet userfw"}
    assert kernel.suite_names(tables, SUITE, kernel.SUITE_TABLES) == {"inet mt1a2b3c", "inet userfw"}


def test_mounts_under_the_suites_roots_or_named_by_it():
    lines = [
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
        # a hand-run container's overlay (default root)
        "90 22 0:50 / /run/minirt/containers/abc/merged rw - overlay overlay rw,lowerdir=/x,upperdir=/y",
        # the suite's, with a space in the path (mountinfo writes \\040)
        f"91 22 0:51 / {BASE}/test_a\\0400/minirt-root/containers/def/merged rw - overlay overlay rw",
        # another session's basetemp
        "92 22 0:52 / /tmp/pytest-of-root/pytest-70/test_b0/m rw - tmpfs tmpfs rw",
        # a tmpfs named by uniq() (test_mount_inside_is_invisible_on_host), wherever it is
        "93 22 0:53 / /mnt rw shared:5 master:1 - tmpfs mt1a2b3c rw",
        "94 22 0:54 / /mnt2 rw - tmpfs mtffffff rw",
        "not a mountinfo line",
    ]
    assert kernel.suite_mounts(lines, SUITE) == {
        f"overlay {BASE}/test_a 0/minirt-root/containers/def/merged",
        "tmpfs /mnt",
    }


def test_diff_reports_only_what_appeared():
    before = {"links": {"mt1a2b3c"}, "processes": set()}
    after = {"links": {"mt1a2b3c", "wanh"}, "processes": {"4100 minirt run -d"}}
    assert kernel.diff(before, after) == ["links leaked: ['wanh']", "processes leaked: ['4100 minirt run -d']"]
    assert kernel.diff(after, before) == []


def test_environ_keeps_only_what_the_guard_reads():
    raw = b"PATH=/bin\0MINIRT_ROOT=/tmp/r\0MINIRT_TEST_SESSION=1-2\0X=MINIRT_ROOT=no\0broken\0"
    assert kernel.parse_environ(raw) == {"MINIRT_ROOT": "/tmp/r", "MINIRT_TEST_SESSION": "1-2"}
