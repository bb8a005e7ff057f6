"""`make compare`: the same scenarios on Docker 20.10 (Debian's docker.io) and minirt, side by side.

Isolation: dockerd, its containerd and every minirt run live in a throwaway network + mount
namespace (a holder process, like tests/conftest.py's HostNS) with a fresh sysfs, tmpfs over
Docker's default state paths, and --data-root/--exec-root/--pidfile/-H under a temp dir. A
`wan` namespace joined by a veth (198.51.100.0/24, MTU 1400) is that host's uplink, so nothing
can leave the machine. Restoring the host = stop dockerd, kill what is left in the namespace,
kill the holder; the real host's links, nft ruleset, ip_forward, mounts are compared before/after.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from compare import report  # noqa: E402

DOCKER = "/usr/bin/docker"  # the packaged 20.10 client (a 28.x CLI sits in /usr/local/bin)
MINIRT = f"{REPO}/.venv/bin/minirt"
ROOTFS = f"{REPO}/build/rootfs"
IMAGE = "minirt-bb"
STATE_DIRS = ("/run/docker", "/var/lib/docker", "/run/containerd", "/var/lib/containerd", "/etc/docker")
WAN_HOST, WAN_PEER = "198.51.100.1", "198.51.100.2"


def sh(*cmd, check=True, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout, **kw)


def host_snapshot() -> dict:
    def out(*c):
        r = subprocess.run(c, capture_output=True, text=True)
        return r.stdout
    links = re.sub(r"\d+: ", "", out("ip", "-o", "link", "show"))
    return {
        "links": sorted(line.split(":")[0] for line in links.splitlines()),
        "nft": out("nft", "list", "ruleset"),
        "ip_forward": open("/proc/sys/net/ipv4/ip_forward").read().strip(),
        "mounts": sorted(line.split()[1] for line in open("/proc/self/mounts")),
        "netns": out("ip", "netns", "list"),
        "daemons": sorted(daemons_in_this_netns()),
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/docker") + glob.glob("/sys/fs/cgroup/*/minirt")
                          + glob.glob("/sys/fs/cgroup/*/minirt-compare-*")),
        "state dirs": [d for d in STATE_DIRS if os.path.exists(d)],
    }


def daemons_in_this_netns() -> list[str]:
    """dockerd/containerd processes in the real host's network namespace (the package must not
    have started any; ours live in the throwaway namespace)."""
    own = os.readlink("/proc/self/ns/net")
    found = []
    for p in os.listdir("/proc"):
        try:
            comm = open(f"/proc/{p}/comm").read().strip() if p.isdigit() else ""
            if comm in ("dockerd", "containerd", "docker-proxy") and os.readlink(f"/proc/{p}/ns/net") == own:
                found.append(f"{comm}[{p}]")
        except OSError:
            pass
    return found


class NS:
    def __init__(self):
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--", "sleep", "3600"],
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{self.pid}/ns/net") == own:
            if time.monotonic() > deadline:
                raise RuntimeError("holder namespace never appeared")
            time.sleep(0.005)
        self.netns = os.readlink(f"/proc/{self.pid}/ns/net")

    def prefix(self):
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "--"]

    def run(self, *cmd, check=True, timeout=60, **kw):
        return sh(*self.prefix(), *cmd, check=check, timeout=timeout, **kw)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def kill_ns_processes(ns: NS, holder_pid: int) -> list[int]:
    """Kill (SIGKILL, by pid) every process left in the holder's network namespace but the holder."""
    killed = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == holder_pid:
            continue
        try:
            if os.readlink(f"/proc/{p}/ns/net") == ns.netns or os.readlink(f"/proc/{p}/ns/mnt") == ns_mnt(ns):
                os.kill(int(p), signal.SIGKILL)
                killed.append(int(p))
        except OSError:
            pass
    return killed


def ns_mnt(ns):
    return os.readlink(f"/proc/{ns.pid}/ns/mnt")


class Env:
    """The throwaway host: holder ns + wan ns + dockerd; minirt's own MINIRT_ROOT."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="minirt-compare-")
        self.host = NS()
        self.wan = NS()
        self.dockerd = None
        self.servers = []
        self.made: list[str] = []  # mount points this run created on the host's filesystem
        self.menv = {**os.environ, "MINIRT_ROOT": f"{self.tmp}/minirt-root", "MINIRT_ROOTFS": ROOTFS,
                     "MINIRT_CONFIG": f"{self.tmp}/minirt-config.json",
                     "MINIRT_STORE": f"{self.tmp}/minirt-store"}  # fmt: skip  # never /var/lib/minirt
        self.menv.pop("MINIRT_FAULT", None)
        self.sock = f"unix://{self.tmp}/docker.sock"
        # cgroups are the one tree shared with the real host: both runtimes' go under a parent of
        # our own (Docker's containers at /<cgparent>/<id>, minirt's at /<cgparent>/minirt/<id>),
        # removed in stop()
        self.cgparent = os.path.basename(self.tmp)
        with open(self.menv["MINIRT_CONFIG"], "w") as f:
            json.dump({"cgroup_parent": f"/{self.cgparent}/minirt"}, f)

    def setup(self):
        h, w, t = self.host, self.wan, self.tmp
        h.run("ip", "link", "set", "lo", "up")
        w.run("ip", "link", "set", "lo", "up")
        # fresh sysfs (this namespace's links), keeping the cgroup mounts dockerd needs
        os.makedirs(f"{t}/cg")
        h.run("sh", "-c", f"mount -n --rbind /sys/fs/cgroup {t}/cg && mount -n -t sysfs sysfs /sys && "
                          f"mount -n --move {t}/cg /sys/fs/cgroup")
        # anything dockerd/containerd might write at a default path lands in a tmpfs of this ns
        for d in STATE_DIRS:
            if not os.path.exists(d):  # the mount point is made on the real disk: removed in stop()
                self.made.append(d)
            h.run("sh", "-c", f"mkdir -p {d} && mount -n -t tmpfs tmpfs {d}")
        h.run("ip", "link", "add", "wanh", "mtu", "1400", "type", "veth", "peer", "name", "wanp", "mtu", "1400",
              "netns", str(w.pid))
        h.run("ip", "addr", "add", f"{WAN_HOST}/24", "dev", "wanh")
        h.run("ip", "link", "set", "wanh", "up")
        h.run("ip", "route", "add", "default", "via", WAN_PEER, "dev", "wanh")
        w.run("ip", "addr", "add", f"{WAN_PEER}/24", "dev", "wanp")
        w.run("ip", "link", "set", "wanp", "up")
        p = subprocess.Popen([*w.prefix(), sys.executable, f"{REPO}/tests/helpers/servers.py", "tcp", "8080"],
                             stdout=subprocess.PIPE, text=True)
        self.servers.append(p)
        assert p.stdout.readline().strip() == "listening"

    def start_dockerd(self):
        t = self.tmp
        log = open(f"{t}/dockerd.log", "w")
        self.dockerd = subprocess.Popen(
            [*self.host.prefix(), "/usr/sbin/dockerd", "-H", self.sock, "--data-root", f"{t}/docker-data",
             "--exec-root", f"{t}/docker-exec", "--pidfile", f"{t}/docker.pid", "--iptables=true",
             "--ip6tables=false", "--storage-driver", "overlay2", "--cgroup-parent", f"/{self.cgparent}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        t0 = time.monotonic()
        while self.docker("info", check=False).returncode != 0:
            if self.dockerd.poll() is not None or time.monotonic() - t0 > 30:
                raise RuntimeError("dockerd did not start:\n" + open(f"{t}/dockerd.log").read()[-3000:])
            time.sleep(0.2)
        self.host.run("sh", "-c", f"tar -C {ROOTFS} -c . | {DOCKER} -H {self.sock} import - {IMAGE}", timeout=120)

    def allow_bridge(self, bridge: str) -> None:
        """What `minirt doctor` advises on a host with Docker 20.10's iptables FORWARD DROP: accept the
        minirt bridge's traffic, here in DOCKER-USER, Docker's chain for the admin's own rules."""
        for d in ("-i", "-o"):
            self.host.run("iptables", "-I", "DOCKER-USER", d, bridge, "-j", "ACCEPT")

    def doctor_warnings(self) -> list[str]:
        r = self.minirt("doctor", check=False)
        return [line.strip() for line in (r.stdout + r.stderr).splitlines() if "policy drop" in line]

    def docker(self, *args, check=False, timeout=60, **kw):
        return self.host.run(DOCKER, "-H", self.sock, *args, check=check, timeout=timeout, **kw)

    def minirt(self, *args, check=False, timeout=60, **kw):
        return self.host.run("env", f"MINIRT_ROOT={self.menv['MINIRT_ROOT']}", f"MINIRT_ROOTFS={ROOTFS}",
                             f"MINIRT_CONFIG={self.menv['MINIRT_CONFIG']}",
                             f"MINIRT_STORE={self.menv['MINIRT_STORE']}", MINIRT, *args,
                             check=check, timeout=timeout, **kw)

    def stop(self) -> list[str]:
        notes = []
        for p in self.servers:
            p.kill()
            p.wait()
        if self.dockerd:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(20)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
                notes.append("dockerd needed SIGKILL")
        cdir = f"{self.tmp}/minirt-root/containers"
        ids = os.listdir(cdir) if os.path.isdir(cdir) else []
        if ids:
            self.minirt("rm", "-f", *ids)
        left = kill_ns_processes(self.host, self.host.pid)
        if left:
            notes.append(f"killed {len(left)} leftover process(es) of the namespace: {left}")
        self.host.close()
        self.wan.close()
        for top in glob.glob(f"/sys/fs/cgroup/*/{self.cgparent}"):
            for d, _, _ in sorted(os.walk(top), key=lambda x: -len(x[0])):
                try:
                    os.rmdir(d)
                except OSError as e:
                    notes.append(f"cgroup {d} left: {e.strerror}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        for d in reversed(self.made):
            try:
                os.rmdir(d)  # empty: everything went to the namespace's tmpfs
            except OSError as e:
                notes.append(f"{d} left: {e.strerror}")
        return notes


class Side:
    """One runtime behind a common call: run(opts, cmd) -> CompletedProcess."""

    def __init__(self, env: Env, kind: str):
        self.env, self.kind = env, kind
        self.port0 = 18000 if kind == "docker" else 28000

    def cli(self, *args, **kw):
        return (self.env.docker if self.kind == "docker" else self.env.minirt)(*args, **kw)

    def run(self, opts, cmd, **kw):
        if self.kind == "docker":
            return self.env.docker("run", "--rm", *opts, IMAGE, *cmd, **kw)
        return self.env.minirt("run", "--rm", *opts, "--", *cmd, **kw)

    def run_d(self, opts, cmd):
        if self.kind == "docker":
            r = self.env.docker("run", "-d", *opts, IMAGE, *cmd)
        else:
            r = self.env.minirt("run", "-d", *opts, "--", *cmd)
        if r.returncode != 0:
            raise RuntimeError(f"{self.kind} run -d failed: {r.stderr.strip()[-300:]}")
        return r.stdout.strip().splitlines()[-1]

    def rm(self, *names):
        self.cli("rm", "-f", *names)

    def ip_of(self, name):
        r = self.cli("exec", name, "ip", "-4", "-o", "addr", "show", "eth0") if self.kind == "docker" else \
            self.cli("exec", name, "--", "ip", "-4", "-o", "addr", "show", "eth0")
        return r.stdout.split()[3].split("/")[0]

    def exec(self, name, *cmd):
        if self.kind == "docker":
            return self.cli("exec", name, *cmd)
        return self.cli("exec", name, "--", *cmd)

    def net_create(self, name, *opts):
        r = self.cli("network", "create", *opts, name)
        if r.returncode != 0:
            raise RuntimeError(f"{self.kind} network create: {r.stderr.strip()}")
        if self.kind == "minirt":
            self.env.allow_bridge(json.loads(self.cli("network", "inspect", name).stdout)[0]["Options"]["bridge"])

    def net_rm(self, name):
        self.cli("network", "rm", name)




def main() -> int:
    from compare.scenarios import SCENARIOS

    t0 = time.monotonic()
    before = host_snapshot()
    if before["daemons"]:
        print(f"compare: Docker daemons run in the host's network namespace ({', '.join(before['daemons'])}); "
              "stop them first (docker.io's service must not run here)", file=sys.stderr)
        return 2
    env = Env()
    rows = []
    notes = []
    try:
        env.setup()
        env.start_dockerd()
        notes += [f"minirt doctor on this host: {w}" for w in env.doctor_warnings()]
        env.allow_bridge("minirt0")
        notes.append("as the doctor advises, the harness accepts minirt's bridges in Docker's DOCKER-USER chain "
                     "(Docker 20.10's FORWARD policy DROP would drop minirt's forwarded traffic; "
                     "docs/networking.md, Coexistence with other firewalls)")
        sides = {"docker": Side(env, "docker"), "minirt": Side(env, "minirt")}
        for fn in SCENARIOS:
            results = {}
            for k, side in sides.items():
                try:
                    results[k] = fn(side)
                except Exception as e:  # a crashing scenario is a failing row, not a crashed run
                    results[k] = {"ERROR": f"ERROR {type(e).__name__}: {str(e)[:120]}"}
            for name in results["docker"] if "ERROR" not in results["docker"] else results["minirt"]:
                d = results["docker"].get(name, results["docker"].get("ERROR", "?"))
                m = results["minirt"].get(name, results["minirt"].get("ERROR", "?"))
                rows.append((name, d, m))
                print(f"  {name}: docker={d!r} minirt={m!r}", file=sys.stderr, flush=True)
    finally:
        notes += env.stop()
    time.sleep(0.5)
    after = host_snapshot()
    changed = [k for k in before if before[k] != after[k]]
    md, status = report.table(rows)
    md += "\n" + "".join(f"- {n}\n" for n in notes)
    notes = []
    host_line = ("host unchanged (links, nft ruleset, ip_forward, mounts, netns, Docker daemons, cgroups, state dirs)"
                 if not changed else f"HOST CHANGED: {', '.join(changed)}")
    out = (f"# minirt vs Docker 20.10 (`make compare`)\n\n{md}\n{host_line}\n"
           + "".join(f"{n}\n" for n in notes) + f"\nruntime {time.monotonic() - t0:.0f} s\n")
    print(out)
    os.makedirs(f"{HERE}/results", exist_ok=True)
    with open(f"{HERE}/results/latest.md", "w") as f:
        f.write(out)
    return 1 if (status or changed) else 0


if __name__ == "__main__":
    sys.exit(main())
