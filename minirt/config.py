"""What a container is asked to be: ContainerConfig, built from the command line and validated.

Pure apart from validate(), which only looks (stat) and never changes the host. Plain classes
with __slots__ rather than dataclasses: importing dataclasses (inspect, re) costs ~8 ms on the
start-up path.
"""

import os

from minirt.errors import ConfigError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default
NET_MODES = ("none", "host", "bridge", "container")
HOST_CONFIG = "/etc/minirt/config.json"  # $MINIRT_CONFIG overrides


def host_config() -> dict:
    """The machine's minirt settings ($MINIRT_CONFIG, default /etc/minirt/config.json):
    default_subnet, default_dns, cgroup_parent. A missing file means all defaults."""
    from minirt.state import read_json

    path = os.environ.get("MINIRT_CONFIG") or HOST_CONFIG
    try:
        return read_json(path)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ConfigError(f"config {path}: not valid JSON ({e})") from None


def mount_target(path: str, what: str) -> str:
    """The destination of a -v or --tmpfs mount, normalised lexically; `/` is refused.

    Docker cleans the destination with Go's path.Clean and refuses `/` (moby
    volume/mounts/linux_parser.go, linuxValidateNotRoot: "destination can't be '/'"), so
    `/etc/../..` and `//` are refused too: a mount there would hide the container's whole root
    filesystem. os.path.normpath keeps a leading `//` (POSIX leaves its meaning open), Go's
    Clean does not: strip it, or `//` would slip through as a second spelling of `/`.
    """
    target = "/" + os.path.normpath(path).lstrip("/")
    if target == "/":
        raise ConfigError(f"{what}: destination can't be '/'")
    return target


class Volume:
    __slots__ = ("source", "target", "readonly")

    def __init__(self, source: str, target: str, readonly: bool):
        self.source, self.target, self.readonly = source, target, readonly

    @classmethod
    def parse(cls, spec: str) -> "Volume":
        """-v HOST:CTR[:ro|rw]; HOST must be absolute and exist (checked in validate)."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ConfigError(f"volume {spec!r}: expected HOST:CONTAINER[:ro]")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise ConfigError(f"volume {spec!r}: unknown mode {mode!r} (ro or rw)")
        if not parts[0].startswith("/"):
            # Docker would take a relative name as a named volume; we have none.
            raise ConfigError(f"volume {spec!r}: host path must be absolute")
        if not parts[1].startswith("/"):
            raise ConfigError(f"volume {spec!r}: container path must be absolute")
        return cls(os.path.normpath(parts[0]), mount_target(parts[1], f"volume {spec!r}"), mode == "ro")

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "readonly": self.readonly}


class Tmpfs:
    __slots__ = ("target", "options")

    def __init__(self, target: str, options: str):
        self.target, self.options = target, options

    @classmethod
    def parse(cls, spec: str) -> "Tmpfs":
        """--tmpfs PATH[:OPTIONS]; OPTIONS are tmpfs mount data (size=64m,mode=1777)."""
        target, _, options = spec.partition(":")
        if not target.startswith("/"):
            raise ConfigError(f"tmpfs {spec!r}: container path must be absolute")
        return cls(mount_target(target, f"tmpfs {spec!r}"), options)

    def to_dict(self) -> dict:
        return {"target": self.target, "options": self.options}


class ContainerConfig:
    __slots__ = (
        "id", "name", "rootfs", "argv", "env", "workdir", "hostname", "volumes", "tmpfs", "net", "network",
        "init", "cap_add", "cap_drop", "privileged", "no_new_privs", "caps", "rm", "dns", "detach", "restart", "net_pid", "ports",
        "aliases", "resources", "oom_score_adj", "cgroup_parent", "cgroupns", "userns", "uidmap", "gidmap",
        "user", "group_add", "read_only", "sysctls", "ulimits", "devices", "seccomp", "security_opt",
        "image", "lowerdirs", "stop_signal",
    )  # fmt: skip

    def __init__(self, **kw: object):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))
        if kw:
            raise TypeError(f"unknown config fields: {sorted(kw)}")

    def validate(self) -> None:
        """Checks that only look; nothing on the host changes (netavark: validate before setup)."""
        if not os.path.isdir(self.rootfs):
            raise ConfigError(f"rootfs {self.rootfs}: no such directory")
        for bad in ",:\\":
            # overlayfs splits lowerdir on ':' and its options on ','
            for path in self.lowerdirs or [self.rootfs]:
                if bad in path:
                    raise ConfigError(f"rootfs {path}: path may not contain {bad!r}")
        for path in self.lowerdirs or ():
            if not os.path.isdir(path):
                raise ConfigError(f"image layer {path}: missing from the image store (load the image again)")
        for v in self.volumes:
            if not os.path.exists(v.source):
                raise ConfigError(f"volume {v.source}:{v.target}: host path {v.source} does not exist")
        if self.net not in NET_MODES:
            raise ConfigError(f"network {self.net!r}: unknown mode (known: {', '.join(NET_MODES)})")
        if self.ports and self.net != "bridge":
            raise ConfigError(f"-p needs a bridge network (got --net {self.net})")
        if self.dns and self.net != "bridge":
            # Docker: --dns with --net host/none is accepted but useless; we say so instead.
            raise ConfigError(f"--dns needs a bridge network (got --net {self.net})")
        if self.aliases and (self.net != "bridge" or self.network == "minirt"):
            # Docker's wording; the default network has no name resolution (net/dnsd.py)
            raise ConfigError("network-scoped alias is supported only for containers in user defined networks")
        if self.uidmap:
            # Docker's refusals with userns-remap (daemon/daemon_unix.go verifyContainerSettings):
            # these would hand container root the host's devices or network
            if self.privileged:
                raise ConfigError("privileged mode is incompatible with user namespaces. "
                                  "You must run the container in the host namespace when running privileged mode")
            if self.net == "host":
                raise ConfigError("cannot share the host's network namespace when user namespaces are enabled")
            if self.net == "container":
                # the other container's netns belongs to its own user namespace, over which
                # ours has no capability (setns(2) needs CAP_SYS_ADMIN in the owner)
                raise ConfigError("--net container: is not supported with a user namespace")
        if not self.argv:
            raise ConfigError("no command given")
        if not self.workdir.startswith("/"):
            raise ConfigError(f"workdir {self.workdir!r}: must be an absolute path")

    @classmethod
    def from_dict(cls, d: dict) -> "ContainerConfig":
        """The inverse of to_dict(), for start and restart from a record."""
        kw = {k: d.get(k) for k in cls.__slots__}
        kw["volumes"] = [Volume(v["source"], v["target"], v["readonly"]) for v in d.get("volumes") or []]
        kw["tmpfs"] = [Tmpfs(t["target"], t["options"]) for t in d.get("tmpfs") or []]
        kw["caps"] = frozenset(d.get("caps") or [])
        from minirt.net.ports import PortMapping

        kw["ports"] = [PortMapping.from_dict(m) for m in d.get("ports") or []]
        return cls(**kw)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["volumes"] = [v.to_dict() for v in self.volumes]
        d["tmpfs"] = [t.to_dict() for t in self.tmpfs]
        d["caps"] = sorted(self.caps)
        d["ports"] = [m.to_dict() for m in self.ports or []]
        return d


def parse_env(items: list[str], host_env: dict[str, str]) -> list[str]:
    """-e NAME=VALUE, or -e NAME to copy the host's value (dropped when unset, as Docker does)."""
    out = []
    for item in items:
        name, eq, _ = item.partition("=")
        if not name:
            raise ConfigError(f"env {item!r}: empty variable name")
        if eq:
            out.append(item)
        elif name in host_env:
            out.append(f"{name}={host_env[name]}")
    return out


def container_env(user_env: list[str], hostname: str, tty: bool, term: str | None, home: bool = True) -> list[str]:
    """Docker's defaults (PATH, HOSTNAME, HOME, TERM with a terminal), overridden by -e.

    home=False (a --user was given) leaves HOME out unless -e sets it: the init then takes it
    from the user's passwd entry, as runc does for an environment without HOME."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if home:
        env["HOME"] = "/root"
    if tty:
        env["TERM"] = term or "xterm"
    for item in user_env:
        k, _, v = item.partition("=")
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]
