"""The container runtime's side of CNI, for the tests: what `cnitool` (or libcni) would do.

No Debian package ships cnitool (docs/cni.md), so this plays it: one plugin call is the CNI_*
environment, the configuration on stdin and a network namespace; the answer is the exit status
and the JSON on stdout. The plugin runs inside the test's throwaway host (HostNS, through
nsenter), with the test's MINIRT_ROOT, so the minirt fixture's leak checks (veths, leases,
published elements) see what it made.

A Sandbox is a container's network namespace, held by a sleeping process; CNI_NETNS is its
/proc/<pid>/ns/net (SPEC.md allows "/proc/[pid]/ns/net or a bind-mount/link to it"), which
needs no /run/netns file on the real host. Killing the holder destroys the namespace (the
kernel then removes the veth end inside it, and with it the pair, asynchronously).
"""

import json
import os
import subprocess

from tests.conftest import REPO

CNI_BIN = os.environ.get("MINIRT_CNI_BIN") or f"{REPO}/.venv/bin/minirt-cni"


class Sandbox:
    """A container's network namespace (only lo, down, as a runtime creates it)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", "echo up; exec sleep 3600"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout.readline() == "up\n", "sandbox namespace never appeared"
        self.proc.stdout.close()
        self.pid = self.proc.pid
        self.netns = f"/proc/{self.pid}/ns/net"

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "--"]

    def run(self, *cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix(), *cmd], capture_output=True, text=True, check=check, timeout=timeout,
                              **kw)  # fmt: skip

    def json(self, *cmd: str):
        return json.loads(self.run(*cmd).stdout or "null")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Reply:
    """What the plugin answered: exit status, stdout parsed as JSON (None when empty), stderr."""

    def __init__(self, p: subprocess.CompletedProcess):
        self.rc, self.stdout, self.stderr = p.returncode, p.stdout, p.stderr
        self.json = json.loads(p.stdout) if p.stdout.strip() else None

    @property
    def code(self):
        return (self.json or {}).get("code")

    def __repr__(self) -> str:
        return f"Reply(rc={self.rc}, stdout={self.stdout!r}, stderr={self.stderr!r})"


class Runtime:
    """Calls the plugin as a runtime does, and remembers the ADDs not yet deleted (with their
    Results, libcni's cache), so that a failing test's attachments are still DELeted."""

    def __init__(self, host, root: str, config: dict):
        self.host, self.root, self.config = host, root, config
        self.added: dict[tuple[str, str], tuple[dict, dict]] = {}  # (cid, ifname) -> (config, result)

    def call(self, command: str, cid: str = "", netns: str = "", ifname: str = "", config: dict | None = None,
             stdin: bytes | None = None, env: dict | None = None, args: str = "") -> Reply:  # fmt: skip
        environ = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": os.path.dirname(CNI_BIN),
                   "MINIRT_ROOT": self.root}  # fmt: skip
        for key, value in (("CNI_CONTAINERID", cid), ("CNI_NETNS", netns), ("CNI_IFNAME", ifname),
                           ("CNI_ARGS", args)):  # fmt: skip
            if value:
                environ[key] = value
        environ.update(env or {})
        if stdin is None:
            stdin = json.dumps(self.config if config is None else config).encode()
        p = subprocess.run([*self.host.prefix(), "env", "-i", *(f"{k}={v}" for k, v in environ.items()), CNI_BIN],
                           input=stdin, capture_output=True, timeout=60)  # fmt: skip
        return Reply(subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(), p.stderr.decode()))

    def conf(self, **extra) -> dict:
        return {**self.config, **extra}

    def add(self, cid: str, sandbox: Sandbox, ifname: str = "eth0", config: dict | None = None, **kw) -> Reply:
        config = self.config if config is None else config
        r = self.call("ADD", cid, sandbox.netns, ifname, config, **kw)
        if r.rc == 0:
            self.added[(cid, ifname)] = (config, r.json)
        return r

    def with_prev(self, cid: str, ifname: str = "eth0") -> dict:
        """The configuration of the attachment's ADD with its Result as prevResult (what a
        runtime sends for CHECK and DEL)."""
        config, result = self.added[(cid, ifname)]
        return {**config, "prevResult": result}

    def check(self, cid: str, sandbox: Sandbox, ifname: str = "eth0", **kw) -> Reply:
        return self.call("CHECK", cid, sandbox.netns, ifname, self.with_prev(cid, ifname), **kw)

    def delete(self, cid: str, netns: str = "", ifname: str = "eth0", config: dict | None = None, **kw) -> Reply:
        if config is None:
            config = self.with_prev(cid, ifname) if (cid, ifname) in self.added else self.config
        r = self.call("DEL", cid, netns, ifname, config, **kw)
        if r.rc == 0:
            self.added.pop((cid, ifname), None)
        return r

    def cleanup(self) -> None:
        for cid, ifname in list(self.added):
            self.delete(cid, ifname=ifname)
