"""podman and containerd driving minirt-oci (and podman driving minirt-cni): the engines'
side, for tests/integration/test_engines.py and `make oci-check` (tools/oci-check).

Everything an engine writes to a fixed path (/run/libpod, /run/netns, /run/containerd,
/var/lib/containers/cache, minirt-oci's default --root /run/minirt-oci, which podman's `state`
call relies on) lands in tmpfs mounted over /run and /var/lib inside the test's throwaway host
(HostNS: its own network and mount namespaces). The engines' own stores live in the test's
directory and their cgroups under the test's cgroup parent, so the real host keeps nothing.
Every process the engines leave (conmon, containerd, its shims) shares that mount namespace,
which is how `close` finds and kills them (podman's and containerd's own `rm` run first).

Both engines call the runtime through a small logging wrapper (`calls.log`: one line of argv
per call), which is how the tests check what an engine asked for and how oci-check shows it.
"""

import hashlib
import io
import json
import os
import resource
import shlex
import signal
import subprocess
import tarfile
import time

from tests.helpers import cgroups

IMAGE = "localhost/minirt-busybox:latest"


# --- images made offline from the busybox rootfs -------------------------------------------------

def rootfs_tar(rootfs: str) -> bytes:
    """The rootfs as a flat tar, owned by root (what `podman import` takes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(rootfs)):
            tar.add(f"{rootfs}/{name}", arcname=name, filter=_as_root)
    return buf.getvalue()


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def oci_archive(rootfs: str, path: str, ref: str = IMAGE) -> str:
    """An OCI image layout, tarred (image-spec 1.0: oci-layout, index.json, blobs/sha256): one
    uncompressed layer and a config with Cmd and PATH, named for containerd by the
    io.containerd.image.name annotation (what `ctr image import` reads)."""
    layer = rootfs_tar(rootfs)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }).encode()  # fmt: skip
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{**_descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}],
    }).encode()  # fmt: skip
    with tarfile.open(path, "w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           *((f"blobs/sha256/{_digest(b)[7:]}", b) for b in (layer, config, manifest))]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


# --- the throwaway host's private /run and /var/lib ----------------------------------------------

def private_state_dirs(host) -> None:
    """tmpfs over /run and /var/lib in the throwaway host's mount namespace (see above)."""
    # -n: no utab update, which would lock /run/mount/utab in the real host's /run first
    host.run("sh", "-ec", "mount -n -t tmpfs -o mode=755 tmpfs /run; mount -n -t tmpfs -o mode=755 tmpfs /var/lib")


def namespace_processes(host) -> list[tuple[int, str]]:
    """(pid, comm) of every process in the throwaway host's mount namespace but its holder."""
    ns = os.readlink(f"/proc/{host.pid}/ns/mnt")
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(pid) != host.pid and os.readlink(f"/proc/{pid}/ns/mnt") == ns:
                with open(f"/proc/{pid}/comm") as f:
                    out.append((int(pid), f.read().strip()))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def reap_namespace(host, grace: float = 5, timeout: float = 10) -> list[str]:
    """What still runs in the throwaway host after `grace` seconds ("pid comm"), SIGKILLed and
    waited for: after the engines' own cleanup this is a leak the test reports (conmon and
    the shims exit by themselves once their container is deleted)."""
    deadline = time.monotonic() + grace
    while (left := namespace_processes(host)) and time.monotonic() < deadline:
        time.sleep(0.05)
    found = [f"{pid} {comm}" for pid, comm in left]
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        left = namespace_processes(host)
    return found


class EngineCgroups:
    """The test's cgroup parent as the absolute path an engine takes (podman's
    --cgroup-parent, ctr's --cgroup: one path for every hierarchy), under this process's own
    cgroup in each; `close` removes what the engine left there, and any ancestor directory
    made for it in a hierarchy where it did not exist."""

    def __init__(self, rel: str):
        self.path = os.path.normpath(f"{cgroups.common_own()}/{rel}")
        self.made: list[str] = []
        for top in cgroups.absolute_dirs(self.path).values():
            d = top
            while not os.path.isdir(d):
                self.made.append(d)
                d = os.path.dirname(d)

    def dirs(self, sub: str = "") -> dict[str, str]:
        return cgroups.absolute_dirs(f"{self.path}/{sub}")

    def children(self) -> list[str]:
        return sorted({n for d in self.dirs().values() if os.path.isdir(d)
                       for n in os.listdir(d) if os.path.isdir(f"{d}/{n}")})  # fmt: skip

    def close(self) -> None:
        cgroups.remove_trees(self.dirs().values())
        for d in sorted(self.made, key=lambda p: -p.count("/")):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass


def runtime_wrapper(workdir: str, runtime: str) -> str:
    """An executable that logs its argv to <workdir>/calls.log and execs the runtime."""
    path = f"{workdir}/minirt-oci-logged"
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(workdir)}/calls.log\n'
                f'exec {shlex.quote(runtime)} "$@"\n')  # fmt: skip
    os.chmod(path, 0o755)
    return path


def calls(workdir: str) -> list[list[str]]:
    try:
        with open(f"{workdir}/calls.log") as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def verbs(argvs: list[list[str]]) -> list[str]:
    """The runtime command of each logged call, global flags skipped."""
    out = []
    takes_value = {"--root", "--log", "--log-format", "--criu", "--rootless"}
    for argv in argvs:
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            i += 1 if "=" in argv[i] or argv[i] not in takes_value else 2
        out.append(argv[i] if i < len(argv) else "?")
    return out


# --- podman --------------------------------------------------------------------------------------

class Podman:
    """Debian's podman 4.3 with minirt-oci as its runtime, everything under `workdir`.

    containers.conf of its own: the runtime named "minirt", listed in runtime_supports_json
    (podman passes --log-format json only to runtimes it knows by name, or listed there);
    cgroupfs (PID 1 is not systemd); default_ulimits that need no CAP_SYS_RESOURCE, which this
    VM's root lacks: podman asks root containers for nofile=1048576 (crun and runc fail the same
    way here), so nofile stays at this process's own limits, and nproc at the 32768 podman
    itself runs (and so the runtime) with; the CNI backend reading `cni_dir` with plugins from
    `plugin_dir`."""

    def __init__(self, host, workdir: str, runtime: str, cgroup_parent: str, cni_dir: str = "", plugin_dir: str = ""):
        self.host, self.workdir = host, workdir
        self.cgroups = EngineCgroups(cgroup_parent)
        self.cgroup_parent = self.cgroups.path
        self.runtime = runtime_wrapper(workdir, runtime)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        lim = lambda v: -1 if v == resource.RLIM_INFINITY else v  # noqa: E731
        conf = f"""[containers]
default_ulimits = ["nofile={lim(nofile[0])}:{lim(nofile[1])}", "nproc=32768:32768"]

[engine]
runtime = "minirt"
runtime_supports_json = ["minirt"]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{workdir}/events.log"
tmp_dir = "{workdir}/libpod-tmp"

[engine.runtimes]
minirt = ["{self.runtime}"]

[network]
network_backend = "cni"
network_config_dir = "{cni_dir or workdir + '/cni'}"
cni_plugin_dirs = ["{plugin_dir or workdir + '/cni-bin'}"]
"""
        storage = f"""[storage]
driver = "overlay"
graphroot = "{workdir}/storage"
runroot = "{workdir}/runroot"
"""
        for name, text in (("containers.conf", conf), ("storage.conf", storage)):
            with open(f"{workdir}/{name}", "w") as f:
                f.write(text)
        os.makedirs(cni_dir or f"{workdir}/cni", exist_ok=True)
        self.env = {**os.environ, "CONTAINERS_CONF": f"{workdir}/containers.conf",
                    "CONTAINERS_STORAGE_CONF": f"{workdir}/storage.conf"}  # fmt: skip

    def argv(self, *args: str) -> list[str]:
        return [*self.host.prefix(), "podman", *args]

    def __call__(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout, **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(args)}: rc {r.returncode}\n{r.stderr}"
        return r.stdout

    def run_args(self, *args: str) -> list[str]:
        """`podman run` flags every test's containers get: the test's cgroup parent."""
        return ["run", "--cgroup-parent", self.cgroup_parent, *args]

    def import_image(self, rootfs: str) -> None:
        path = f"{self.workdir}/rootfs.tar"
        with open(path, "wb") as f:
            f.write(rootfs_tar(rootfs))
        self.ok("import", "--change", "CMD=sh", path, IMAGE)

    def close(self) -> None:
        self("rm", "--all", "--force", "--time", "0", timeout=60)


# --- containerd ----------------------------------------------------------------------------------

class Containerd:
    """Debian's containerd 1.6, started in the throwaway host with a config, root, state and
    socket of its own (the CRI plugin off: no Kubernetes here), driven by `ctr` with
    `--runc-binary` set to minirt-oci and `--runc-root` in the test's directory."""

    def __init__(self, host, workdir: str, runtime: str, cgroup_parent: str):
        self.host, self.workdir = host, workdir
        self.cgroups = EngineCgroups(cgroup_parent)
        self.cgroup_parent = self.cgroups.path
        self.runtime = runtime_wrapper(workdir, runtime)
        self.address = f"{workdir}/containerd.sock"
        assert len(self.address) < 100, f"socket path too long for AF_UNIX: {self.address}"
        with open(f"{workdir}/containerd.toml", "w") as f:
            f.write(f"""version = 2
root = "{workdir}/containerd-root"
state = "{workdir}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.address}"
[ttrpc]
  address = "{self.address}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
""")
        self.log = open(f"{workdir}/containerd.log", "w")
        self.proc = subprocess.Popen([*host.prefix(), "containerd", "--config", f"{workdir}/containerd.toml"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 20
        while self.ctr("version").returncode != 0:
            assert self.proc.poll() is None, f"containerd exited: {self.logs()}"
            assert time.monotonic() < deadline, f"containerd never answered: {self.logs()}"
            time.sleep(0.1)

    def logs(self) -> str:
        with open(f"{self.workdir}/containerd.log") as f:
            return f.read()[-3000:]

    def ctr_argv(self, *args: str) -> list[str]:
        return [*self.host.prefix(), "ctr", "--address", self.address, *args]

    def ctr(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.ctr_argv(*args), capture_output=True, text=True, timeout=timeout, **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self.ctr(*args, **kw)
        assert r.returncode == 0, f"ctr {' '.join(args)}: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def run_args(self, cid: str, *flags: str) -> list[str]:
        """`ctr run` with minirt-oci and the container's cgroup under the test's parent."""
        return ["run", "--runc-binary", self.runtime, "--runc-root", f"{self.workdir}/runc-root",
                "--cgroup", f"{self.cgroup_parent}/{cid}", *flags]  # fmt: skip

    def import_image(self, rootfs: str) -> None:
        self.ok("image", "import", oci_archive(rootfs, f"{self.workdir}/image.tar"))

    def close(self) -> None:
        try:
            for line in self.ctr("task", "ls", "-q").stdout.split():
                self.ctr("task", "kill", "-s", "SIGKILL", line)
                self.ctr("task", "delete", "--force", line)
            for line in self.ctr("container", "ls", "-q").stdout.split():
                self.ctr("container", "delete", line)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
