"""Read the kernel's view of the host, for leak checks and assertions (never minirt's records).

The session leak guard (tests/conftest.py) compares two snapshots of the real host, taken at
the start and at the end of the run, and looks only at what the suite itself made. The machine
is shared: other sessions run their own suites, and a person may run `minirt run -d` or
`make run` in the real host beside the suite, which leaves a `minirt0` bridge, an
`inet minirt` table, `mr…` veths and minirt processes that are not ours. Ownership:

- processes: descendants of the pytest process; processes whose environment carries this
  session's marker (MINIRT_TEST_SESSION=<token>, inherited by everything the suite starts,
  daemonized supervisors, sentinels and DNS responders included) or a MINIRT_ROOT under the
  session's temporary directories; and the descendants of those (container inits, whose
  environment is the container's own). Zombies are not counted.
- links, /run/netns names, nft tables: names the suite hands out (uniq()), and the fixed names
  tests create inside their throwaway hosts (SUITE_LINKS, SUITE_TABLES) should one ever appear
  in the real host. minirt's default names (minirt0, br-…, mr…, `inet minirt`) are not the
  suite's to claim: every minirt command of the suite runs in a throwaway host namespace
  (conftest HostNS), where the per-test check inspects them before the namespace is discarded.
- mounts: mount points under the session's temporary directories (every MINIRT_ROOT of the
  suite is there), and mounts whose source is a uniq() name.

The functions below split into readers (/proc, `ip`, `nft`) and pure filters, unit-tested in
tests/unit/test_leak_guard.py.
"""

import dataclasses
import json
import os
import subprocess

SESSION_VAR = "MINIRT_TEST_SESSION"
# Fixed names that tests create inside their throwaway hosts (test_nat_wan, test_bridge,
# test_run_core, test_firewall_nft, test_nfthelper): in the real host they would be a leak.
SUITE_LINKS = frozenset({"wanh", "wanp", "uplink0", "uplink1", "mtdummy0", "mtdummy1", "veth-a", "br-a"})
SUITE_TABLES = frozenset({"inet userfw", "inet helpertest", "ip minirt"})


@dataclasses.dataclass(frozen=True)
class Suite:
    """What marks the suite's own objects on a shared host."""

    pid: int  # the pytest process
    token: str  # the value of MINIRT_TEST_SESSION in everything the suite starts
    roots: tuple[str, ...]  # directories of the session's MINIRT_ROOTs and temporary files
    names: frozenset[str] | set[str] = frozenset()  # kernel object names handed out (uniq())


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    cmdline: str
    env: dict  # only the variables the guard reads: MINIRT_ROOT, MINIRT_TEST_SESSION


# ---- readers ---------------------------------------------------------------------------------


def links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def nft_tables() -> set[str]:
    r = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    if r.returncode != 0:
        return set()
    return {f"{t['table']['family']} {t['table']['name']}" for t in json.loads(r.stdout)["nftables"] if "table" in t}


def mountinfo(pid: int | str = "self") -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return f.read().splitlines()


def mounts(pid: int | str = "self") -> set[str]:
    """Mount points that minirt could have leaked in the mount namespace of `pid` (a test's
    throwaway host: HostNS.pid): overlays and anything under a minirt or pytest path."""
    out = set()
    for line in mountinfo(pid):
        fields = line.split()
        mnt = fields[4]
        fstype = fields[fields.index("-") + 1]
        if fstype == "overlay" or "minirt" in mnt or "pytest" in mnt:
            out.add(f"{fstype} {mnt}")
    return out


def read_processes() -> dict[int, Proc]:
    """Every process of the machine (as far as this pid namespace sees), with what the guard
    needs; processes that exit while being read are skipped."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            # comm may hold spaces and parentheses: the fields start after the last ')'
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = parse_environ(f.read())
        except (OSError, ValueError):
            continue
        out[pid] = Proc(pid, int(ppid), state, cmdline, env)
    return out


def parse_environ(raw: bytes) -> dict:
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (b"MINIRT_ROOT", SESSION_VAR.encode()):
            env[key.decode()] = value.decode(errors="replace")
    return env


def minirt_processes(exclude: set[int], root: str | None = None) -> set[str]:
    """Processes whose command line mentions minirt (our runs, sentinels); with `root`, only
    those started with MINIRT_ROOT=root, so another run on the machine cannot interfere."""
    out = set()
    for p in read_processes().values():
        if p.pid in exclude or "minirt" not in p.cmdline or "pytest" in p.cmdline:
            continue
        if root is not None and p.env.get("MINIRT_ROOT") != root:
            continue
        out.add(f"{p.pid} {p.cmdline}")
    return out


# ---- pure filters ------------------------------------------------------------------------------


def under(path: str, roots: tuple[str, ...]) -> bool:
    """`path` is one of `roots` or inside one (by whole path components: /tmp/a is not under
    /tmp/ab)."""
    path = os.path.normpath(path) if path else ""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in map(os.path.normpath, roots))


def suite_processes(procs: dict[int, Proc], suite: Suite) -> set[str]:
    """The processes of `procs` that belong to the suite (see the module docstring): marked by
    their environment, or descended from pytest or from a marked process (a container's init,
    whose environment is the container's own, is a child of its minirt or supervisor)."""

    def marked(p: Proc) -> bool:
        return p.env.get(SESSION_VAR) == suite.token or under(p.env.get("MINIRT_ROOT", ""), suite.roots)

    owned: dict[int, bool] = {suite.pid: True}
    for start in procs:
        chain = []
        pid = start
        while pid not in owned:
            p = procs.get(pid)
            if p is None or pid <= 1:
                owned[pid] = False
                break
            if marked(p):
                owned[pid] = True
                break
            chain.append(pid)
            pid = p.ppid
        for c in chain:
            owned[c] = owned[pid]
    return {
        f"{p.pid} {p.cmdline}" for p in procs.values() if owned.get(p.pid) and p.pid != suite.pid and p.state != "Z"
    }


def suite_names(observed: set[str], suite: Suite, fixed: frozenset[str] = frozenset()) -> set[str]:
    """Names of links, netns or tables that the suite made: handed out by uniq() (also as a
    part, e.g. `inet mt1a2b3c`), or one of the fixed test names."""
    return {n for n in observed if n in fixed or any(part in suite.names for part in n.split())}


def suite_mounts(lines: list[str], suite: Suite) -> set[str]:
    """Mounts of a mountinfo listing that the suite made: under its roots, or with a uniq()
    name as source. Fields: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE
    SUPEROPTS, with spaces in paths written as \\040."""
    out = set()
    for line in lines:
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        mnt = _unescape(fields[4])
        fstype, source = fields[sep + 1], _unescape(fields[sep + 2]) if len(fields) > sep + 2 else ""
        if under(mnt, suite.roots) or source in suite.names:
            out.add(f"{fstype} {mnt}")
    return out


def _unescape(field: str) -> str:
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


# ---- the guard --------------------------------------------------------------------------------


def snapshot(suite: Suite) -> dict[str, set[str]]:
    return {
        "links": suite_names(links(), suite, SUITE_LINKS),
        "netns": suite_names(netns(), suite),
        "nft tables": suite_names(nft_tables(), suite, SUITE_TABLES),
        "mounts": suite_mounts(mountinfo(), suite),
        "processes": suite_processes(read_processes(), suite),
    }


def diff(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    problems = []
    for key in before:
        added = after[key] - before[key]
        if added:
            problems.append(f"{key} leaked: {sorted(added)}")
    return problems
