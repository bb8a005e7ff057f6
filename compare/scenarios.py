"""The catalogue: each function takes a Side (docker or minirt) and returns {row: observable}."""

import json
import time

from compare import report
import os
import re
import signal
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAN_HOST, WAN_PEER = "198.51.100.1", "198.51.100.2"

PROBE = f"{REPO}/compare/probe.py"


def inside_default(s):
    cmd = ["sh", "-c", "ip -4 -o addr; echo ==; ip -4 route; echo ==; cat /sys/class/net/eth0/mtu; echo ==; "
           "cat /etc/resolv.conf; echo ==; cat /etc/hosts; echo ==; hostname; echo ==; cat /proc/self/status"]
    r = s.run([], cmd)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-200:])
    addr, route, mtu, resolv, hosts, hostname, status = r.stdout.split("==\n")
    ip = next((f[3].split("/")[0] for f in map(str.split, addr.splitlines()) if len(f) > 3 and f[1] == "eth0"), None)
    return {
        "addresses": report.norm_addrs(addr),
        "routes": report.norm_routes(route),
        "mtu": mtu.strip(),
        "resolv.conf": report.norm_resolv(resolv),
        "/etc/hosts": report.norm_hosts(hosts, hostname.strip(), ip),
        "hostname": report.norm_hostname(hostname),
        "capabilities": report.status_fields(status, ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
        "no_new_privs": report.status_fields(status, ("NoNewPrivs",)),
        "seccomp": report.status_fields(status, ("Seccomp",)),
    }


def net_none(s):
    r = s.run(["--net", "none"], ["sh", "-c", "ip -4 -o addr; echo ==; ip -4 route"])
    addr, route = r.stdout.split("==\n")
    return {"--net none addresses/routes": report.norm_addrs(addr) + " | " + report.norm_routes(route)}


def exit_codes(s):
    res = {}
    for label, cmd in (("exit 0", ["true"]), ("exit 3", ["sh", "-c", "exit 3"]),
                       ("exit 126 (not executable)", ["/etc/passwd"]), ("exit 127 (no such command)", ["nosuchcmd"])):
        res[label] = str(s.run([], cmd).returncode)
    if s.kind == "docker":
        r = s.env.docker("run", "--rm", "--no-such-flag", "minirt-bb", "true")
    else:
        r = s.env.minirt("run", "--rm", "--no-such-flag", "--", "true")
    res["exit 125 (unknown flag)"] = str(r.returncode)
    name = f"cmp-{s.kind}-kill"
    if s.kind == "docker":
        argv = ["/usr/bin/docker", "-H", s.env.sock, "run", "--name", name, "minirt-bb", "sleep", "60"]
    else:
        argv = ["env", f"MINIRT_ROOT={s.env.menv['MINIRT_ROOT']}", f"MINIRT_ROOTFS={s.env.menv['MINIRT_ROOTFS']}",
                f"MINIRT_CONFIG={s.env.menv['MINIRT_CONFIG']}", f"{REPO}/.venv/bin/minirt",
                "run", "--name", name, "--", "sleep", "60"]
    p = subprocess.Popen([*s.env.host.prefix(), *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if s.cli("kill", name).returncode == 0:
            break
        time.sleep(0.1)
    try:
        res["exit 137 (kill)"] = str(p.wait(20))
    finally:
        s.rm(name)
    return res


def ports(s):
    p = s.port0
    web, lo, other = f"cmp-{s.kind}-web", f"cmp-{s.kind}-lo", f"cmp-{s.kind}-cli"
    h = s.env.host
    try:
        s.run_d(["--name", web, "-p", f"{p + 80}:80"], ["httpd", "-f", "-v", "-p", "80", "-h", "/etc"])
        s.run_d(["--name", lo, "-p", f"127.0.0.1:{p + 81}:80"], ["httpd", "-f", "-p", "80", "-h", "/etc"])
        s.run_d(["--name", other], ["sleep", "600"])
        time.sleep(0.5)
        wip = s.ip_of(web)

        def probe(ns, host, port):
            return ns.run("python3", PROBE, host, str(port), check=False).stdout.strip()

        def from_ctr(host, port):
            url = f"http://{host}:{port}/hostname"
            r = s.exec(other, "sh", "-c", f"timeout 5 wget -qO- {url} >/dev/null && echo ok || echo fail")
            return r.stdout.strip() or f"ERROR {r.stderr.strip()[-100:]}"

        res = {
            "-p from host 127.0.0.1": probe(h, "127.0.0.1", p + 80),
            "-p from host own address": probe(h, WAN_HOST, p + 80),
            "-p hairpin (other container to host address)": from_ctr(WAN_HOST, p + 80),
            "-p from wan": probe(s.env.wan, WAN_HOST, p + 80),
            "-p 127.0.0.1 from host": probe(h, "127.0.0.1", p + 81),
            "-p 127.0.0.1 bound from wan": probe(s.env.wan, WAN_HOST, p + 81),
            "container IP from other container": from_ctr(wip, 80),
            "proxy processes for the 2 published ports": f"{proxies(s.env.host)} docker-proxy",
        }
        # a neighbour routing straight to the container's address (the published port 80)
        w = s.env.wan
        w.run("ip", "route", "replace", f"{wip}/32", "via", WAN_HOST)
        res["wan to container IP (published port)"] = probe(w, wip, 80)
        w.run("ip", "route", "del", f"{wip}/32", check=False)
        # a neighbour sending to 127.0.0.1 through the host (moby#45610): the wan namespace's own
        # loopback routes are moved aside and route_localnet lets it take the answer from 127.0.0.1
        res["wan to 127.0.0.1-bound port (routed to the host)"] = wan_to_loopback(w, p + 81)

        # who the server saw for the hairpin connection
        s.exec(other, "sh", "-c", f"timeout 5 wget -qO- http://{WAN_HOST}:{p + 80}/hostname >/dev/null")
        logs = s.cli("logs", web).stdout + s.cli("logs", web).stderr
        oip = s.ip_of(other)
        seen = re.findall(r"(\d+\.\d+\.\d+\.\d+)\]?:\d+", logs)
        last = seen[-1] if seen else "?"
        res["hairpin source"] = ("the client itself" if last == oip else "host wan address" if last == WAN_HOST
                                 else "the network gateway (.1)" if last.endswith(".1") else last)
        return res
    finally:
        s.rm(web, lo, other)


def proxies(ns) -> int:
    """docker-proxy processes in the namespace (both runtimes' containers are never up at once)."""
    n = 0
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and open(f"/proc/{p}/comm").read().strip() == "docker-proxy" \
                    and os.readlink(f"/proc/{p}/ns/net") == ns.netns:
                n += 1
        except OSError:
            pass
    return n


def wan_to_loopback(w, port):
    script = (f"sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.wanp.route_localnet=1; "
              f"ip route del local 127.0.0.0/8 dev lo table local; ip route del local 127.0.0.1 dev lo table local; "
              f"ip addr del 127.0.0.1/8 dev lo; ip route add 127.0.0.1/32 via {WAN_HOST} src {WAN_PEER}; "
              f"python3 {PROBE} 127.0.0.1 {port}; ip route del 127.0.0.1/32; ip addr add 127.0.0.1/8 dev lo")
    r = w.run("sh", "-c", script, check=False)
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else f"ERROR {r.stderr.strip()[-100:]}"


def user_networks(s):
    n1, n2, ni = f"cmp{s.kind[0]}n1", f"cmp{s.kind[0]}n2", f"cmp{s.kind[0]}int"
    a, b, c = f"cmp-{s.kind}-a", f"cmp-{s.kind}-b", f"cmp-{s.kind}-c"
    made, ctrs = [], []
    try:
        for n, opts in ((n1, []), (n2, []), (ni, ["--internal"])):
            s.net_create(n, *opts)
            made.append(n)
        s.run_d(["--net", n1, "--name", a], ["sleep", "600"]); ctrs.append(a)
        s.run_d(["--net", n2, "--name", b], ["sleep", "600"]); ctrs.append(b)
        s.run_d(["--net", ni, "--name", c], ["sleep", "600"]); ctrs.append(c)
        aip, bip, cip = s.ip_of(a), s.ip_of(b), s.ip_of(c)

        def ping(opts, target):
            r = s.run(opts, ["sh", "-c", f"ping -c 1 -W 2 {target} >/dev/null 2>&1 && echo reply || echo no-reply"])
            return r.stdout.strip() or f"ERROR {r.stderr.strip()[-100:]}"

        res = {
            "same network by IP": ping(["--net", n1], aip),
            "isolation: other network by IP": ping(["--net", n1], bip),
            "isolation: default bridge to user network": ping([], aip),
            "name resolution (container name, same network)": ping(["--net", n1], a),
            "--internal: peer on the network": ping(["--net", ni], cip),
            "--internal: outbound to wan": ping(["--net", ni], WAN_PEER),
        }
        script = "ip -4 route | awk '/^default/ {print $3}'; echo ==; cat /etc/resolv.conf"
        r = s.run(["--net", n1], ["sh", "-c", script])
        gw, resolv = r.stdout.split("==\n")
        res["resolv.conf user net"] = report.norm_resolv(resolv, gw.strip())
        return res
    finally:
        if ctrs:
            s.rm(*ctrs)
        for n in made:
            s.net_rm(n)


def masquerade(s):
    res = {}
    for label, opts in (("outbound masquerade seen from wan", []),):
        r = s.run(opts, ["sh", "-c", f"echo hi | timeout 5 nc {WAN_PEER} 8080"])
        seen = next((line.split()[1] for line in r.stdout.splitlines() if line.startswith("from ")), None)
        res[label] = ("host wan address" if seen == WAN_HOST else seen or f"no answer rc={r.returncode}")
    return res


SCENARIOS = [inside_default, net_none, exit_codes, ports, user_networks, masquerade]


# --- cgroups (issue 11) ----------------------------------------------------------------------

LIMITS = (
    # (flags, [(controller, file), ...])
    (["--memory", "64m"], [("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes")]),
    (["--memory", "64m", "--memory-swap", "128m"],
     [("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes")]),
    (["--memory-reservation", "32m"], [("memory", "memory.soft_limit_in_bytes")]),
    (["--cpus", "0.5"], [("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us")]),
    (["--cpu-shares", "512"], [("cpu", "cpu.shares")]),
    (["--cpuset-cpus", "0"], [("cpuset", "cpuset.cpus")]),
    (["--pids-limit", "100"], [("pids", "pids.max")]),
)
ALL_LIMITS = ["--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "0.5",
              "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "100", "--oom-score-adj", "100"]
AWK_HOG = ["awk", 'BEGIN { s = "x"; while (1) s = s s }']
IMAGE = "minirt-bb"
FORK_LOOP = "n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n+1)); done; echo all"
HOSTCONFIG_KEYS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpusetCpus", "PidsLimit",
                   "OomScoreAdj")


def inspect(s, name) -> dict:
    r = s.cli("inspect", name)
    if r.returncode != 0:
        raise RuntimeError(f"inspect {name}: {r.stderr.strip()[-200:]}")
    return json.loads(r.stdout)[0]


def cgroup_dir(s, name, ctl) -> str:
    """The container's cgroup directory of one v1 controller, as the host sees it."""
    cid = inspect(s, name)["Id"]
    if s.kind == "docker":
        return f"/sys/fs/cgroup/{ctl}/{s.env.cgparent}/{cid}"
    with open(f"{s.env.menv['MINIRT_ROOT']}/containers/{cid}/state.json") as f:
        return json.load(f)["cgroup"]["dirs"][ctl]


def read_host(path) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"({e.strerror})"


def limits(s):
    res = {}
    name = f"cmp-{s.kind}-lim"
    for flags, files in LIMITS:
        label = " ".join(flags)
        s.run_d(["--name", name, *flags], ["sleep", "600"])
        try:
            host = [read_host(f"{cgroup_dir(s, name, ctl)}/{f}") for ctl, f in files]
            r = s.exec(name, "cat", *(f"/sys/fs/cgroup/{ctl}/{f}" for ctl, f in files))
            inside = r.stdout.split() if r.returncode == 0 else [f"rc={r.returncode} {r.stderr.strip()[-80:]}"]
        finally:
            s.rm(name)
        what = " ".join(f for _, f in files)
        res[f"{label}: {what} (host)"] = " ".join(host)
        res[f"{label}: {what} (inside)"] = " ".join(inside)
    return res


def oom(s):
    name = f"cmp-{s.kind}-oom"
    try:
        if s.kind == "docker":
            r = s.env.docker("run", "--name", name, "--memory", "32m", IMAGE, *AWK_HOG, timeout=120)
        else:
            r = s.env.minirt("run", "--name", name, "--memory", "32m", "--", *AWK_HOG, timeout=120)
        st = inspect(s, name)["State"]
        return {"OOM --memory 32m: exit code, State.OOMKilled": f"{r.returncode} {json.dumps(st['OOMKilled'])}"}
    finally:
        s.rm(name)



def pids_limit(s):
    r = s.run(["--pids-limit", "20"], ["sh", "-c", FORK_LOOP], timeout=90)
    fork = "can't fork on stderr" if "can't fork" in r.stderr else "no can't fork"
    return {"--pids-limit 20, 40 background forks: exit code, stderr": f"{r.returncode}, {fork}"}


def hostconfig(s):
    name = f"cmp-{s.kind}-hc"
    s.run_d(["--name", name, *ALL_LIMITS], ["sleep", "600"])
    try:
        hc = inspect(s, name)["HostConfig"]
    finally:
        s.rm(name)
    name = f"cmp-{s.kind}-hc0"
    s.run_d(["--name", name], ["sleep", "600"])
    try:
        hc0 = inspect(s, name)["HostConfig"]
    finally:
        s.rm(name)
    res = {f"inspect HostConfig.{k} (all limit flags)": json.dumps(hc.get(k, "(absent)")) for k in HOSTCONFIG_KEYS}
    res["inspect HostConfig.CgroupParent (no --cgroup-parent)"] = json.dumps(hc0.get("CgroupParent", "(absent)"))
    return res


def stats(s):
    name = f"cmp-{s.kind}-stats"
    s.run_d(["--name", name, "--memory", "64m"], ["sleep", "600"])
    try:
        time.sleep(0.5)
        if s.kind == "docker":
            r = s.cli("stats", "--no-stream", "--format", "{{json .}}", name)
        else:
            r = s.cli("stats", "--no-stream", "--format", "json", name)
        if r.returncode != 0:
            raise RuntimeError(f"stats: {r.stderr.strip()[-200:]}")
        row = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        s.rm(name)
    return {
        "stats --no-stream JSON keys": " ".join(sorted(row)),
        "stats MemUsage limit (--memory 64m)": row.get("MemUsage", "/ ?").split("/")[-1].strip(),
        "stats PIDs (sleep)": row.get("PIDs", "?"),
    }


INVALID = (["--memory", "3x"], ["--memory", "4m"], ["--memory", "64m", "--memory-swap", "32m"], ["--cpus", "64"],
           ["--cpuset-cpus", "0-63"])


def invalid(s):
    res = {}
    for flags in INVALID:
        r = s.run(flags, ["true"])
        res[f"invalid {' '.join(flags)}: exit code, error"] = f"{r.returncode} {report.norm_error(r.stderr)}"
    return res


def update(s):
    name = f"cmp-{s.kind}-upd"
    s.run_d(["--name", name, "--memory", "64m"], ["sleep", "600"])
    try:
        r = s.cli("update", "--memory", "128m", "--memory-swap", "256m", name)
        files = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        vals = [read_host(f"{cgroup_dir(s, name, 'memory')}/{f}") for f in files]
    finally:
        s.rm(name)
    return {"update --memory 128m --memory-swap 256m: exit code, memory.limit_in_bytes memsw (host)":
            f"{r.returncode} {' '.join(vals)}"}


SCENARIOS += [limits, oom, pids_limit, hostconfig, stats, invalid, update]


# --- security envelope (issue 12) -----------------------------------------------------------

CORPUS_PROBE = f"{REPO}/build/probes/probe"


def escape_corpus(s):
    """The escape corpus (tests/probes/corpus.py) on both runtimes: each probe in a default
    container, then under the options that lift its defence. The ptrace row's host pid is the
    harness's own, which exists on the host and not in the container's pid namespace."""
    from tests.probes.corpus import CORPUS, SECCOMP_RULES, probe_args

    if not os.access(CORPUS_PROBE, os.X_OK):
        raise RuntimeError(f"{CORPUS_PROBE} missing: `make probes`")
    res = {}
    for row in CORPUS + SECCOMP_RULES:
        for passing in (False, True):
            opts = ["--net", "none", "-v", f"{CORPUS_PROBE}:/probe:ro", *(row.opts if passing else ())]
            r = s.run(opts, ["/probe", *probe_args(row, passing, os.getpid())])
            got = r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {report.norm_error(r.stderr)}"
            res[f"escape: {row.name} ({' '.join(row.opts) if passing else 'default'})"] = got
    r = s.run(["--net", "none"], ["sh", "-c", "ls /proc; true"])
    pids = sorted(int(x) for x in r.stdout.split() if x.isdigit())
    res["escape: host pids visible in /proc"] = (
        "yes" if str(os.getpid()) in r.stdout.split() else f"no (PID 1 and {len(pids) - 1} more, all < 100)"
        if pids and pids[0] == 1 and pids[-1] < 100 else f"? {pids}")
    return res


def user_1000(s):
    r = s.run(["--net", "none", "--user", "1000:1000"], ["sh", "-c", "id; cat /proc/self/status"])
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-200:])
    caps = report.status_fields(r.stdout, ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
    return {"--user 1000:1000: id": r.stdout.splitlines()[0], "--user 1000:1000: capabilities": caps}


def read_only(s):
    r = s.run(["--net", "none", "--read-only"], ["sh", "-c", "touch /x; echo rc=$?"])
    return {"--read-only: touch /x": " ".join((r.stderr.strip() + " " + r.stdout.strip()).split())}


def sysctl(s):
    r = s.run(["--sysctl", "net.ipv4.ip_forward=1"], ["cat", "/proc/sys/net/ipv4/ip_forward"])
    got = r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {report.norm_error(r.stderr)}"
    return {"--sysctl net.ipv4.ip_forward=1: read back": got}


def ulimit(s):
    r = s.run(["--net", "none", "--ulimit", "nofile=1024:2048"], ["sh", "-c", "ulimit -n; ulimit -Hn"])
    return {"--ulimit nofile=1024:2048: ulimit -n, -Hn": " ".join(r.stdout.split()) or f"rc={r.returncode}"}


def userns_remap(s):
    """uid_map and gid_map inside with `--userns-remap default`. Docker's is a daemon flag: a
    second dockerd runs in its own mount namespace inside the throwaway one, where copies of
    /etc/passwd, group, subuid and subgid already hold `dockremap` (so dockerd never runs
    useradd; the real files are never written). minirt gets empty subid files of its own
    (subuid_file/subgid_file) and appends its `minirt` entry there."""
    t = s.env.tmp
    cmd = ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]
    if s.kind == "minirt":
        for f in ("subuid", "subgid"):
            open(f"{t}/minirt-{f}", "w").close()
        cfg = f"{t}/minirt-remap-config.json"
        with open(cfg, "w") as f:
            json.dump({"cgroup_parent": f"/{s.env.cgparent}/minirt", "subuid_file": f"{t}/minirt-subuid",
                       "subgid_file": f"{t}/minirt-subgid"}, f)
        menv = s.env.menv
        r = s.env.host.run("env", f"MINIRT_ROOT={menv['MINIRT_ROOT']}", f"MINIRT_ROOTFS={menv['MINIRT_ROOTFS']}",
                           f"MINIRT_CONFIG={cfg}", f"{REPO}/.venv/bin/minirt", "run", "--rm", "--net", "none",
                           "--userns-remap", "default", "--", *cmd, check=False)
    else:
        r = docker_remapped(s.env, cmd)
    if r.returncode != 0:
        raise RuntimeError(f"rc={r.returncode} {r.stderr.strip()[-200:]}")
    lines = [" ".join(line.split()) for line in r.stdout.splitlines()]
    return {"--userns-remap default: uid_map; gid_map": "; ".join(lines)}


def docker_remapped(env, cmd):
    t = f"{env.tmp}/remap"
    os.makedirs(f"{t}/etc")
    # dockerd refuses a data root whose parents deny o+x to the remapped root
    os.chmod(env.tmp, 0o711)
    for name, extra in (("passwd", "dockremap:x:995:995::/nonexistent:/usr/sbin/nologin\n"),
                        ("group", "dockremap:x:995:\n"), ("subuid", "dockremap:100000:65536\n"),
                        ("subgid", "dockremap:100000:65536\n")):
        try:
            text = open(f"/etc/{name}").read()
        except FileNotFoundError:
            text = None
        if text is None:
            raise RuntimeError(f"/etc/{name} missing: no file to bind a copy over")
        with open(f"{t}/etc/{name}", "w") as f:
            f.write(text + ("" if not text or text.endswith("\n") else "\n") + extra)
    binds = " && ".join(f"mount -n --bind {t}/etc/{n} /etc/{n}" for n in ("passwd", "group", "subuid", "subgid"))
    sock = f"unix://{t}/docker.sock"
    log = open(f"{t}/dockerd.log", "w")
    d = subprocess.Popen(
        [*env.host.prefix(), "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         f"{binds} && exec /usr/sbin/dockerd -H {sock} --data-root {t}/data --exec-root {t}/exec "
         f"--pidfile {t}/docker.pid --iptables=false --ip6tables=false --bridge=none --storage-driver overlay2 "
         f"--cgroup-parent /{env.cgparent} --userns-remap default"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    docker = ["/usr/bin/docker", "-H", sock]
    try:
        t0 = time.monotonic()
        while env.host.run(*docker, "info", check=False).returncode != 0:
            if d.poll() is not None or time.monotonic() - t0 > 30:
                raise RuntimeError("remapped dockerd did not start: " + open(f"{t}/dockerd.log").read()[-300:])
            time.sleep(0.2)
        env.host.run("sh", "-c", f"tar -C {REPO}/build/rootfs -c . | {' '.join(docker)} import - {IMAGE}",
                     timeout=120)
        return env.host.run(*docker, "run", "--rm", "--net", "none", IMAGE, *cmd, check=False)
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(20)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()


SCENARIOS += [escape_corpus, user_1000, read_only, sysctl, ulimit, userns_remap]


# issue 16: one image on both. Docker loads a `docker save` archive written here with tarfile
# (tests/helpers/images.py: the busybox rootfs, then files, a symlink and a hard link, then a
# whiteout and an opaque directory; Entrypoint, Cmd, Env, WorkingDir, User); minirt loads what
# this dockerd's own `docker save` writes of it, so its reading of Docker's format is checked too.
APP_IMAGE = "cmp/app:1"


def _app_archive(path: str) -> str:
    from tests.helpers import images as I

    base = I.dir_layer(f"{REPO}/build/rootfs")
    l2 = I.layer([I.entry("data", "dir"), I.entry("data/keep", data=b"keep\n"), I.entry("data/gone", data=b"gone\n"),
                  I.entry("opaque", "dir"), I.entry("opaque/lower", data=b"lower\n"),
                  I.entry("srv/app.txt", data=b"hello\n"), I.entry("srv/link", "symlink", link="app.txt"),
                  I.entry("srv/hard", "hardlink", link="srv/app.txt")])  # fmt: skip
    l3 = I.layer([I.entry("data/.wh.gone"), I.entry("opaque/.wh..wh..opq"), I.entry("opaque/upper", data=b"upper\n")])
    layers = [base, l2, l3]
    cfg = I.config(layers, Entrypoint=["/bin/echo", "ep"], Cmd=["default"], Env=["FOO=image", "BAR=image"],
                   WorkingDir="/srv", User="app")
    return I.docker_save(path, layers, cfg, [APP_IMAGE])


def image(s):
    t = s.env.tmp
    if s.kind == "docker":
        r = s.cli("load", "-i", _app_archive(f"{t}/app-image.tar"), timeout=120)
    else:
        saved = s.env.docker("save", "-o", f"{t}/app-docker-save.tar", APP_IMAGE, timeout=120)
        if saved.returncode != 0:
            raise RuntimeError(f"docker save: {saved.stderr.strip()[-200:]}")
        r = s.cli("load", "-i", f"{t}/app-docker-save.tar", timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"load: {r.stderr.strip()[-200:]}")

    def run(*args):
        r = s.cli("run", "--rm", "--net", "none", *args)
        return r.stdout.strip() if r.returncode == 0 else f"rc={r.returncode} {report.norm_error(r.stderr)}"

    probe = ("id; pwd; echo \"$FOO $BAR $HOME\"; ls /data; ls /opaque; readlink /srv/link; "
             "stat -c %i /srv/app.txt /srv/hard | uniq | wc -l")
    out = run("-e", "BAR=cli", "--entrypoint", "/bin/sh", APP_IMAGE, "-c", probe).splitlines()
    out += [""] * (8 - len(out))
    return {
        "image: Entrypoint + Cmd": run(APP_IMAGE),
        "image: COMMAND replaces Cmd": run(APP_IMAGE, "a", "b"),
        "image: --entrypoint drops Cmd": run("--entrypoint", "/bin/echo", APP_IMAGE, "only"),
        "image: --entrypoint '' and no COMMAND": run("--entrypoint", "", APP_IMAGE),
        "image: User (id)": out[0].split(" groups=")[0],
        "image: WorkingDir": out[1],
        "image: Env with -e BAR=cli, HOME": out[2],
        "image: whiteout-deleted /data/gone absent (ls /data)": out[3],
        "image: opaque /opaque hides the lower file (ls /opaque)": out[4],
        "image: symlink, hard link": f"{out[5]}, {out[6]} inode",
        "image: -u 0 -w /tmp override": run("-u", "0", "-w", "/tmp", "--entrypoint", "sh", APP_IMAGE, "-c",
                                            "id -u; pwd").replace("\n", " "),
    }


SCENARIOS += [image]
