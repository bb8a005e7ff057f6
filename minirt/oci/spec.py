"""A runtime-spec 1.1 config.json -> what minirt-oci builds: pure, unit-tested.

Runs in: `minirt-oci create` (and `update`, `exec` for their pieces), before anything exists.
Nothing here touches the host: load() only reads the parsed JSON and the bundle path it is
given. Everything minirt cannot do is refused with a ConfigError naming the field, never
ignored (runc's libcontainer/specconv refuses what it cannot map the same way).

The result is a Spec: a ContainerConfig for the fields minirt's own config already has (argv,
env, cwd, hostname, sysctls, rlimits, oomScoreAdj, uid/gid maps, read-only root, devices) plus
the OCI-only extras (mounts in order, namespaces with paths, the five capability sets, masked
and read-only paths, propagation, hooks, the seccomp profile, the cgroup path and resources).
"""

import os

from minirt.config import ContainerConfig
from minirt.errors import ConfigError

SPEC_VERSION = "1.1.0"
OCI_VERSION_MIN = "1.0.0"

# mount(2) flags (linux/mount.h)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 0x10, 0x20, 0x40, 0x80
MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME = 0x100, 0x400, 0x800
MS_BIND, MS_REC, MS_SILENT, MS_POSIXACL = 0x1000, 0x4000, 0x8000, 1 << 16
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MS_RELATIME, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME = 1 << 21, 1 << 23, 1 << 24, 1 << 25

# runc libcontainer/specconv/spec_linux.go mountFlags: option -> (clear?, flag)
MOUNT_FLAGS = {
    "acl": (False, MS_POSIXACL), "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND), "defaults": (False, 0), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC), "exec": (True, MS_NOEXEC), "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME), "loud": (True, MS_SILENT), "mand": (False, MS_MANDLOCK),
    "noacl": (True, MS_POSIXACL), "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME), "noexec": (False, MS_NOEXEC), "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME), "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID), "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC), "relatime": (False, MS_RELATIME), "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY), "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID), "symfollow": (True, MS_NOSYMFOLLOW),
    "sync": (False, MS_SYNCHRONOUS),
}  # fmt: skip
# runc mountPropagationMapping
PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC, "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}  # fmt: skip
# Options runc knows that minirt-oci does not implement: refused by name rather than handed to
# the filesystem as data (where the kernel would reject them with a bare EINVAL).
REFUSED_MOUNT_OPTIONS = {
    "idmap": "idmapped mounts (idmap) are not supported",
    "ridmap": "idmapped mounts (ridmap) are not supported",
}
RECURSIVE_ATTRS = ("rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnodiratime",
                   "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime",
                   "rnosymfollow", "rsymfollow")  # fmt: skip
MOUNT_TYPES = ("bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "overlay", "none")

# runtime-spec config-linux.md namespace types -> /proc/<pid>/ns/<name> and clone flags
NAMESPACES = {
    "pid": ("pid", 0x20000000), "network": ("net", 0x40000000), "mount": ("mnt", 0x00020000),
    "ipc": ("ipc", 0x08000000), "uts": ("uts", 0x04000000), "user": ("user", 0x10000000),
    "cgroup": ("cgroup", 0x02000000),
}  # fmt: skip
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip

# seccomp: libseccomp's action names (minirt/seccomp/profile.py ACTIONS) and the kernel's flags
SECCOMP_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
SECCOMP_OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                     "SCMP_CMP_MASKED_EQ")  # fmt: skip
SECCOMP_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                   "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")  # fmt: skip
SECCOMP_ARCHS = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64")  # fmt: skip


class Mount:
    """One entry of `mounts`: flags to set, propagation changes to apply after, data for the
    filesystem (runc's parseMountOptions split)."""

    __slots__ = ("destination", "type", "source", "flags", "propagation", "data", "options", "copyup")

    def __init__(self, destination: str, type: str, source: str, flags: int = 0, propagation: tuple = (),
                 data: str = "", options: tuple = (), copyup: bool = False):
        self.destination, self.type, self.source = destination, type, source
        self.flags, self.propagation, self.data, self.options = flags, tuple(propagation), data, tuple(options)
        self.copyup = copyup  # tmpcopyup: the image's files at the destination are copied into the tmpfs

    @property
    def bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict) -> "Mount":
        return cls(**d)

    def __repr__(self) -> str:
        return f"Mount({self.destination!r}, {self.type!r}, {self.source!r}, {self.flags:#x}, {self.data!r})"


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, path: str, args: list, env: list, timeout: int | None):
        self.path, self.args, self.env, self.timeout = path, args, env, timeout

    def to_dict(self) -> dict:
        return {"path": self.path, "args": self.args, "env": self.env, "timeout": self.timeout}


class Spec:
    """config.json, checked and converted. cfg: the ContainerConfig part; the rest OCI-only."""

    __slots__ = ("cfg", "oci_version", "bundle", "root", "readonly", "mounts", "namespaces", "caps", "user",
                 "umask", "no_new_privs", "terminal", "console_size", "rlimits", "masked_paths", "readonly_paths",
                 "propagation", "hooks", "seccomp", "seccomp_flags", "cgroups_path", "resources", "device_rules",
                 "annotations", "domainname", "process")  # fmt: skip

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))
        if kw:
            raise TypeError(f"unknown fields: {sorted(kw)}")


def _err(where: str, what: str) -> ConfigError:
    return ConfigError(f"config.json: {where}: {what}")


def _obj(d: object, where: str) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise _err(where, "must be an object")
    return d


def _list(v: object, where: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _err(where, "must be an array")
    return v


def _strs(v: object, where: str) -> list[str]:
    items = _list(v, where)
    if not all(isinstance(x, str) for x in items):
        raise _err(where, "must be an array of strings")
    return items


def _int(v: object, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _err(where, f"must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _err(where, f"{v} is out of range")
    return v


def _refuse_set(d: dict, keys: tuple, where: str, why: str = "is not supported by minirt-oci") -> None:
    for k in keys:
        v = d.get(k)
        if v not in (None, "", [], {}, 0, False):
            raise _err(f"{where}.{k}" if where else k, why)


def check_id(cid: str) -> str:
    """runc's container id rule (libcontainer/factory_linux.go validateID): [\\w+-.]+, not . or ..
    (the id is a directory name under --root)."""
    ok = cid and cid not in (".", "..") and all(c.isascii() and (c.isalnum() or c in "_+-.") for c in cid)
    if not ok:
        raise ConfigError(f"invalid container id format: {cid}")
    return cid


# --- mounts ------------------------------------------------------------------------------------

def parse_mount_options(options: list[str], where: str) -> tuple[int, tuple, str]:
    """(flags, propagation flags in order, data) from a mount's options, as runc's
    parseMountOptions: flags set and cleared in order, propagation kept apart (it needs its own
    mount(2) call after the mount exists), runc's own extension tmpcopyup left to the caller,
    everything else joined with "," as the data string."""
    flags, prop, data = 0, [], []
    for opt in options:
        if opt == "tmpcopyup":
            continue
        if opt in REFUSED_MOUNT_OPTIONS:
            raise _err(where, REFUSED_MOUNT_OPTIONS[opt])
        if opt in RECURSIVE_ATTRS:
            raise _err(where, f"recursive mount attribute {opt!r} (mount_setattr) is not supported")
        if opt in MOUNT_FLAGS:
            clear, flag = MOUNT_FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        else:
            data.append(opt)
    return flags, tuple(prop), ",".join(data)


def parse_mount(m: object, i: int, bundle: str) -> Mount:
    where = f"mounts[{i}]"
    m = _obj(m, where)
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise _err(where, f"destination {dest!r} must be an absolute path")
    _refuse_set(m, ("uidMappings", "gidMappings"), where, "idmapped mounts are not supported")
    options = _strs(m.get("options"), f"{where}.options")
    flags, prop, data = parse_mount_options(options, where)
    typ = m.get("type") or ("bind" if flags & MS_BIND else "")
    if not isinstance(typ, str) or not typ:
        raise _err(where, "type is missing (and no bind option)")
    if typ == "bind":
        flags |= MS_BIND  # runc: type "bind" is a bind mount even without the option
    if typ not in MOUNT_TYPES:
        raise _err(where, f"mount type {typ!r} is not supported (supported: {', '.join(MOUNT_TYPES)})")
    if flags & MS_REMOUNT:
        raise _err(where, "remount is not supported in a mount list")
    source = m.get("source") or ""
    if not isinstance(source, str):
        raise _err(where, "source must be a string")
    if flags & MS_BIND:
        if not source:
            raise _err(where, "a bind mount needs a source")
        # runtime-spec: a relative bind source is relative to the bundle
        source = os.path.normpath(os.path.join(bundle, source))
    copyup = "tmpcopyup" in options
    if copyup and typ != "tmpfs":
        raise _err(where, "tmpcopyup is for tmpfs mounts")
    return Mount(os.path.normpath(dest), typ, source, flags, prop, data, tuple(options), copyup)


# --- namespaces, ids -----------------------------------------------------------------------------

def parse_namespaces(items: object) -> dict[str, str | None]:
    """{type: path or None (new)}. Refused: time namespaces (they apply to children only, after
    a fork the init does not do), joining a user or mount namespace by path, duplicates."""
    out: dict[str, str | None] = {}
    for i, ns in enumerate(_list(items, "linux.namespaces")):
        ns = _obj(ns, f"linux.namespaces[{i}]")
        typ, path = ns.get("type"), ns.get("path") or None
        if typ == "time":
            raise _err(f"linux.namespaces[{i}]", "time namespaces are not supported")
        if typ not in NAMESPACES:
            raise _err(f"linux.namespaces[{i}]", f"unknown namespace type {typ!r}")
        if typ in out:
            raise _err(f"linux.namespaces[{i}]", f"namespace {typ!r} is listed twice")
        if path is not None and not (isinstance(path, str) and path.startswith("/")):
            raise _err(f"linux.namespaces[{i}]", f"path {path!r} must be absolute")
        if path and typ in ("user", "mount"):
            raise _err(f"linux.namespaces[{i}]", f"joining an existing {typ} namespace (path) is not supported")
        out[typ] = path
    if "mount" not in out:
        # runc's validator: the rootfs is built with mounts no host may see
        raise _err("linux.namespaces", "a mount namespace is required")
    if "user" in out and out.get("pid"):
        raise _err("linux.namespaces", "joining a pid namespace by path together with a new user namespace "
                   "is not supported")  # fmt: skip
    return out


def parse_id_mappings(items: object, where: str) -> list[list[int]]:
    out = []
    for i, m in enumerate(_list(items, where)):
        m = _obj(m, f"{where}[{i}]")
        out.append([_int(m.get("containerID"), f"{where}[{i}].containerID", 0, (1 << 32) - 2),
                    _int(m.get("hostID"), f"{where}[{i}].hostID", 0, (1 << 32) - 2),
                    _int(m.get("size"), f"{where}[{i}].size", 1, 1 << 32)])  # fmt: skip
    return out


# --- process -------------------------------------------------------------------------------------

def parse_caps(caps: object, where: str = "process.capabilities") -> dict[str, list[int]] | None:
    """{set: [capability numbers]}; None (no `capabilities`) keeps the full set, as runc does."""
    if caps is None:
        return None
    from minirt.caps import CAP_NUMBER

    caps = _obj(caps, where)
    out = {}
    for s in CAP_SETS:
        nums = []
        for name in _strs(caps.get(s), f"{where}.{s}"):
            n = name.upper().removeprefix("CAP_").lower()
            if n not in CAP_NUMBER:
                raise _err(f"{where}.{s}", f"unknown capability {name!r}")
            nums.append(CAP_NUMBER[n])
        out[s] = sorted(set(nums))
    return out


def parse_rlimits(items: object, where: str = "process.rlimits") -> list[list[int]]:
    out, seen = [], set()
    for i, r in enumerate(_list(items, where)):
        r = _obj(r, f"{where}[{i}]")
        typ = r.get("type")
        if typ not in RLIMITS:
            raise _err(f"{where}[{i}]", f"unknown rlimit type {typ!r}")
        if typ in seen:
            raise _err(f"{where}[{i}]", f"rlimit {typ} is listed twice")  # runc's validator
        seen.add(typ)
        out.append([RLIMITS[typ], _int(r.get("soft"), f"{where}[{i}].soft", 0, (1 << 64) - 1),
                    _int(r.get("hard"), f"{where}[{i}].hard", 0, (1 << 64) - 1)])  # fmt: skip
    return out


def parse_user(u: object, where: str = "process.user") -> dict:
    u = _obj(u, where)
    if u.get("username"):
        raise _err(f"{where}.username", "is for Windows; give uid and gid")
    return {
        "uid": _int(u.get("uid", 0), f"{where}.uid", 0, (1 << 32) - 2),
        "gid": _int(u.get("gid", 0), f"{where}.gid", 0, (1 << 32) - 2),
        "additionalGids": [_int(g, f"{where}.additionalGids", 0, (1 << 32) - 2)
                           for g in _list(u.get("additionalGids"), f"{where}.additionalGids")],
        "umask": None if u.get("umask") is None else _int(u["umask"], f"{where}.umask", 0, 0o777),
    }  # fmt: skip


def parse_process(p: object, where: str = "process") -> dict:
    """The process object, checked, in a normalised form the init and exec both use."""
    p = _obj(p, where)
    if not p:
        raise _err(where, "is required")
    args = _strs(p.get("args"), f"{where}.args")
    if not args:
        raise _err(f"{where}.args", "must name a program")
    cwd = p.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise _err(f"{where}.cwd", f"{cwd!r} must be an absolute path")
    if p.get("commandLine"):
        raise _err(f"{where}.commandLine", "is for Windows; use args")
    _refuse_set(p, ("apparmorProfile",), where, "AppArmor is not supported by minirt-oci (not enabled here)")
    _refuse_set(p, ("selinuxLabel",), where, "SELinux is not supported by minirt-oci")
    _refuse_set(p, ("scheduler", "ioPriority", "execCPUAffinity"), where)
    size = _obj(p.get("consoleSize"), f"{where}.consoleSize")
    env = _strs(p.get("env"), f"{where}.env")
    oom = p.get("oomScoreAdj")
    return {
        "args": args,
        "env": env,
        "cwd": cwd,
        "terminal": bool(p.get("terminal")),
        "consoleSize": [_int(size.get("height", 0), f"{where}.consoleSize.height", 0, 65535),
                        _int(size.get("width", 0), f"{where}.consoleSize.width", 0, 65535)] if size else None,
        "user": parse_user(p.get("user")),
        "capabilities": parse_caps(p.get("capabilities"), f"{where}.capabilities"),
        "rlimits": parse_rlimits(p.get("rlimits"), f"{where}.rlimits"),
        "noNewPrivileges": bool(p.get("noNewPrivileges")),
        "oomScoreAdj": None if oom is None else _int(oom, f"{where}.oomScoreAdj", -1000, 1000),
    }  # fmt: skip


# --- hooks ---------------------------------------------------------------------------------------

def parse_hooks(h: object) -> dict[str, list[Hook]]:
    h = _obj(h, "hooks")
    out = {}
    for name, items in h.items():
        if name not in HOOK_NAMES:
            raise _err("hooks", f"unknown hook {name!r} (known: {', '.join(HOOK_NAMES)})")
        hooks = []
        for i, hk in enumerate(_list(items, f"hooks.{name}")):
            where = f"hooks.{name}[{i}]"
            hk = _obj(hk, where)
            path = hk.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise _err(where, f"path {path!r} must be absolute")
            timeout = hk.get("timeout")
            if timeout is not None:
                timeout = _int(timeout, f"{where}.timeout")
                if timeout <= 0:
                    raise _err(f"{where}.timeout", "must be positive")  # runtime-spec: "MUST be greater than zero"
            hooks.append(Hook(path, _strs(hk.get("args"), f"{where}.args") or [path], _strs(hk.get("env"),
                              f"{where}.env"), timeout))  # fmt: skip
        out[name] = hooks
    return out


# --- seccomp -------------------------------------------------------------------------------------

def seccomp_profile(s: object) -> tuple[dict | None, int]:
    """linux.seccomp -> (the profile in the Docker format minirt's compiler takes, flags).

    The two formats share defaultAction, defaultErrnoRet, architectures and each syscall's
    names, action, errnoRet and args{index, value, valueTwo, op}; the OCI one has no
    includes/excludes, so the container's capabilities play no part. Refused: a notify
    listener (SCMP_ACT_NOTIFY, listenerPath), unknown flags, actions, operators, archs."""
    if s is None:
        return None, 0
    s = _obj(s, "linux.seccomp")
    where = "linux.seccomp"
    if s.get("listenerPath") or s.get("listenerMetadata"):
        raise _err(where, "a seccomp notify listener (listenerPath) is not supported")
    default = s.get("defaultAction")
    if default not in SECCOMP_ACTIONS:
        raise _err(f"{where}.defaultAction", f"unsupported action {default!r}")
    flags = 0
    for f in _strs(s.get("flags"), f"{where}.flags"):
        if f not in SECCOMP_FLAGS:
            raise _err(f"{where}.flags", f"unsupported flag {f!r}")
        flags |= SECCOMP_FLAGS[f]
    archs = _strs(s.get("architectures"), f"{where}.architectures")
    for a in archs:
        if a not in SECCOMP_ARCHS:
            raise _err(f"{where}.architectures", f"unknown architecture {a!r}")
    profile: dict = {"defaultAction": default, "architectures": archs, "syscalls": []}
    if s.get("defaultErrnoRet") is not None:
        profile["defaultErrnoRet"] = _int(s["defaultErrnoRet"], f"{where}.defaultErrnoRet", 0, 0xFFFF)
    for i, call in enumerate(_list(s.get("syscalls"), f"{where}.syscalls")):
        w = f"{where}.syscalls[{i}]"
        call = _obj(call, w)
        names = _strs(call.get("names"), f"{w}.names")
        if not names:
            raise _err(w, "names must list at least one syscall")
        action = call.get("action")
        if action == "SCMP_ACT_NOTIFY":
            raise _err(w, "SCMP_ACT_NOTIFY needs a listener, which minirt-oci has not")
        if action not in SECCOMP_ACTIONS:
            raise _err(w, f"unsupported action {action!r}")
        rule: dict = {"names": names, "action": action}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = _int(call["errnoRet"], f"{w}.errnoRet", 0, 0xFFFF)
        args = []
        for j, a in enumerate(_list(call.get("args"), f"{w}.args")):
            a = _obj(a, f"{w}.args[{j}]")
            if a.get("op") not in SECCOMP_OPERATORS:
                raise _err(f"{w}.args[{j}]", f"unsupported operator {a.get('op')!r}")
            args.append({"index": _int(a.get("index", 0), f"{w}.args[{j}].index", 0, 5),
                         "value": _int(a.get("value", 0), f"{w}.args[{j}].value", 0, (1 << 64) - 1),
                         "valueTwo": _int(a.get("valueTwo", 0), f"{w}.args[{j}].valueTwo", 0, (1 << 64) - 1),
                         "op": a["op"]})  # fmt: skip
        if args:
            rule["args"] = args
        profile["syscalls"].append(rule)
    return profile, flags


# --- cgroups -------------------------------------------------------------------------------------

def cgroup_path(path: object, cid: str) -> tuple[str, str]:
    """cgroupsPath -> (parent, name) for minirt's cgroup layout (cgroups/layout.py), runc's
    cgroupfs rule: "/a/b" from each hierarchy's root, "a/b" from the cgroup minirt-oci runs
    in; none: "/<id>" (runc's default for cgroupfs). "slice:prefix:name" is the systemd
    driver's form, refused (no --systemd-cgroup here)."""
    if path in (None, ""):
        return "/", cid
    if not isinstance(path, str):
        raise _err("linux.cgroupsPath", "must be a string")
    if ":" in path:
        raise _err("linux.cgroupsPath", f"{path!r} is systemd's slice:prefix:name form; the systemd cgroup "
                   "driver is not supported (use a cgroupfs path such as /a/b)")  # fmt: skip
    if any(p == ".." for p in path.split("/")):
        raise _err("linux.cgroupsPath", f"{path!r} may not contain '..'")
    clean = os.path.normpath(path)
    if clean in ("/", "."):
        raise _err("linux.cgroupsPath", f"{path!r} names no cgroup of its own")
    parent, name = os.path.split(clean)
    return parent or "", name


def device_rules(items: object, where: str = "linux.resources.devices") -> list[tuple]:
    """OCI device cgroup rules -> minirt's (allow, type, major, minor, access) tuples."""
    from minirt.cgroups.devices import WILDCARD

    out = []
    for i, d in enumerate(_list(items, where)):
        d = _obj(d, f"{where}[{i}]")
        typ = d.get("type") or "a"
        if typ not in ("a", "b", "c"):
            raise _err(f"{where}[{i}]", f"device type {typ!r} must be a, b or c")
        access = d.get("access") or "rwm"
        if not isinstance(access, str) or not access or set(access) - set("rwm"):
            raise _err(f"{where}[{i}]", f"access {access!r} must be made of r, w and m")
        major = WILDCARD if d.get("major") is None else _int(d["major"], f"{where}[{i}].major", -1)
        minor = WILDCARD if d.get("minor") is None else _int(d["minor"], f"{where}[{i}].minor", -1)
        out.append((bool(d.get("allow")), typ, major, minor, access))
    return out


def resources(r: object, where: str = "linux.resources") -> dict:
    """LinuxResources -> a checked dict of what minirt writes (update takes the same). Refused:
    what has no file here (hugetlb, net_cls/net_prio, rdma, kernel memory, weight devices)."""
    r = _obj(r, where)
    _refuse_set(r, ("hugepageLimits",), where, "hugetlb limits are not supported by minirt-oci")
    _refuse_set(r, ("network",), where, "net_cls/net_prio are not supported by minirt-oci")
    _refuse_set(r, ("rdma",), where, "rdma limits are not supported by minirt-oci")
    out: dict = {}
    mem = _obj(r.get("memory"), f"{where}.memory")
    # runc 1.1 ignores kernel memory with a warning; minirt-oci says no instead of ignoring it
    _refuse_set(mem, ("kernel", "kernelTCP"), f"{where}.memory", "kernel memory limits are not supported")
    for k in ("limit", "reservation", "swap"):
        if mem.get(k) is not None:
            out[f"memory.{k}"] = _int(mem[k], f"{where}.memory.{k}", -1)
    if mem.get("swappiness") is not None:
        out["memory.swappiness"] = _int(mem["swappiness"], f"{where}.memory.swappiness", 0, 100)
    if mem.get("disableOOMKiller") is not None:
        out["memory.disableOOMKiller"] = bool(mem["disableOOMKiller"])
    if mem.get("useHierarchy") is not None:
        out["memory.useHierarchy"] = bool(mem["useHierarchy"])
    if mem.get("checkBeforeUpdate"):
        out["memory.checkBeforeUpdate"] = True
    cpu = _obj(r.get("cpu"), f"{where}.cpu")
    _refuse_set(cpu, ("realtimeRuntime", "realtimePeriod"), f"{where}.cpu", "real-time scheduling limits are "
                "not supported by minirt-oci")  # fmt: skip
    for k in ("shares", "quota", "period", "burst", "idle"):
        if cpu.get(k) is not None:
            out[f"cpu.{k}"] = _int(cpu[k], f"{where}.cpu.{k}", -1)
    for k in ("cpus", "mems"):
        if cpu.get(k):
            if not isinstance(cpu[k], str):
                raise _err(f"{where}.cpu.{k}", "must be a string such as 0-1")
            out[f"cpuset.{k}"] = cpu[k]
    pids = _obj(r.get("pids"), f"{where}.pids")
    if pids.get("limit") is not None:
        out["pids.limit"] = _int(pids["limit"], f"{where}.pids.limit")
    blk = _obj(r.get("blockIO"), f"{where}.blockIO")
    _refuse_set(blk, ("leafWeight", "weightDevice"), f"{where}.blockIO", "per-device and leaf weights are not "
                "supported by minirt-oci")  # fmt: skip
    if blk.get("weight") is not None:
        out["blkio.weight"] = _int(blk["weight"], f"{where}.blockIO.weight", 10, 1000)
    for k in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        devs = []
        for i, d in enumerate(_list(blk.get(k), f"{where}.blockIO.{k}")):
            d = _obj(d, f"{where}.blockIO.{k}[{i}]")
            devs.append([_int(d.get("major"), f"{where}.blockIO.{k}[{i}].major", 0),
                         _int(d.get("minor"), f"{where}.blockIO.{k}[{i}].minor", 0),
                         _int(d.get("rate"), f"{where}.blockIO.{k}[{i}].rate", 0)])  # fmt: skip
        if devs:
            out[f"blkio.{k}"] = devs
    unified = _obj(r.get("unified"), f"{where}.unified")
    if unified:
        if not all(isinstance(k, str) and "/" not in k and isinstance(v, str) for k, v in unified.items()):
            raise _err(f"{where}.unified", "must map cgroup v2 file names to strings")
        out["unified"] = dict(unified)
    return out


_V1_BLKIO_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def v1_writes(res: dict, current_limit: int | None = None) -> list[tuple[str, str, str]]:
    """[(controller, file, value)] for cgroup v1, runc's files and order (libcontainer/cgroups/fs:
    cpuset, memory, cpu, pids, blkio). Memory and swap follow setMemoryAndSwap: unlike Docker,
    an unset swap is not doubled; a limit of -1 with no swap lifts both; when both are given,
    memsw goes first if it is -1 or the current limit (read by the caller; None: a new cgroup,
    unlimited) is below it, else memory first (the kernel keeps memory <= memsw at each write)."""
    if res.get("unified"):
        raise ConfigError("config.json: linux.resources.unified: cgroup v2 files, but this host limits with v1")
    for k in ("cpu.burst", "cpu.idle"):
        if res.get(k):
            raise ConfigError(f"config.json: linux.resources.{k}: needs cgroup v2")
    out: list[tuple[str, str, str]] = []
    for k in ("cpus", "mems"):
        if res.get(f"cpuset.{k}"):
            out.append(("cpuset", f"cpuset.{k}", res[f"cpuset.{k}"]))
    mem, swap = res.get("memory.limit", 0), res.get("memory.swap", 0)
    if mem == -1 and not swap:
        swap = -1  # runc: "if memory is unlimited and swap is not set, make swap unlimited too"
    mem_w = ("memory", "memory.limit_in_bytes", str(mem)) if mem else None
    sw_w = ("memory", "memory.memsw.limit_in_bytes", str(swap)) if swap else None
    current = (1 << 63) if current_limit is None else current_limit  # a new cgroup: unlimited
    if mem_w and sw_w and (swap == -1 or current < swap):
        out += [sw_w, mem_w]
    else:
        out += [w for w in (mem_w, sw_w) if w]
    if res.get("memory.reservation"):
        out.append(("memory", "memory.soft_limit_in_bytes", str(res["memory.reservation"])))
    if res.get("memory.disableOOMKiller"):
        out.append(("memory", "memory.oom_control", "1"))
    if res.get("memory.swappiness") is not None:
        out.append(("memory", "memory.swappiness", str(res["memory.swappiness"])))
    if res.get("cpu.shares"):
        out.append(("cpu", "cpu.shares", str(res["cpu.shares"])))
    if res.get("cpu.period"):
        out.append(("cpu", "cpu.cfs_period_us", str(res["cpu.period"])))
    if res.get("cpu.quota"):
        out.append(("cpu", "cpu.cfs_quota_us", str(res["cpu.quota"])))
    if res.get("pids.limit"):
        # runc fs/pids.go: a positive limit, or "max" for a negative one; 0 leaves it unset
        out.append(("pids", "pids.max", str(res["pids.limit"]) if res["pids.limit"] > 0 else "max"))
    if res.get("blkio.weight"):
        out.append(("blkio", "blkio.weight", str(res["blkio.weight"])))
    for k, name in _V1_BLKIO_FILES.items():
        for major, minor, rate in res.get(f"blkio.{k}") or ():
            out.append(("blkio", name, f"{major}:{minor} {rate}"))
    return out


def v2_writes(res: dict) -> list[tuple[str, str]]:
    """[(file, value)] for cgroup v2, runc fs2's conversions: swap alone in memory.swap.max
    (ConvertMemorySwapToCgroupV2Value), cpu.weight from shares, cpu.max "quota period"."""
    from minirt.cgroups.limits import shares_to_weight

    out: list[tuple[str, str]] = []
    if res.get("pids.limit"):
        out.append(("pids.max", str(res["pids.limit"]) if res["pids.limit"] > 0 else "max"))
    mem, swap = res.get("memory.limit", 0), res.get("memory.swap", 0)
    if swap:
        if swap == -1:
            out.append(("memory.swap.max", "max"))
        elif mem in (0, -1):
            raise ConfigError("config.json: linux.resources.memory.swap: cgroup v2 needs memory.limit with swap")
        elif swap < mem:
            raise ConfigError("config.json: linux.resources.memory: swap (memory+swap) is lower than limit")
        else:
            out.append(("memory.swap.max", str(swap - mem)))
    if mem:
        out.append(("memory.max", "max" if mem == -1 else str(mem)))
    if res.get("memory.reservation"):
        out.append(("memory.low", str(res["memory.reservation"])))
    if res.get("memory.disableOOMKiller") or res.get("memory.swappiness") is not None:
        raise ConfigError("config.json: linux.resources.memory: disableOOMKiller and swappiness are cgroup v1 only")
    if res.get("cpu.shares"):
        out.append(("cpu.weight", str(shares_to_weight(res["cpu.shares"]))))
    if res.get("cpu.quota") or res.get("cpu.period"):
        quota = res.get("cpu.quota", 0)
        out.append(("cpu.max", f"{'max' if quota <= 0 else quota} {res.get('cpu.period') or 100000}"))
    if res.get("cpu.idle"):
        out.append(("cpu.idle", str(res["cpu.idle"])))
    for k in ("cpus", "mems"):
        if res.get(f"cpuset.{k}"):
            out.append((f"cpuset.{k}", res[f"cpuset.{k}"]))
    if res.get("blkio.weight") or any(res.get(f"blkio.{k}") for k in _V1_BLKIO_FILES):
        raise ConfigError("config.json: linux.resources.blockIO: not supported on cgroup v2 by minirt-oci")
    out += sorted((res.get("unified") or {}).items())
    return out


# --- the whole file ------------------------------------------------------------------------------

def load(config: object, bundle: str, cid: str) -> Spec:
    """config.json (parsed) of the bundle at `bundle` (absolute) for container `cid`."""
    c = _obj(config, "config.json")
    ver = c.get("ociVersion")
    if not isinstance(ver, str) or not ver:
        raise _err("ociVersion", "is required")
    major = ver.split(".")[0]
    if major != "1":
        raise _err("ociVersion", f"{ver} is not a 1.x runtime-spec version (minirt-oci speaks {SPEC_VERSION})")
    _refuse_set(c, ("solaris", "windows", "vm", "zos"), "", "is for another platform")
    root = _obj(c.get("root"), "root")
    rpath = root.get("path")
    if not isinstance(rpath, str) or not rpath:
        raise _err("root.path", "is required")
    rootfs = os.path.normpath(os.path.join(bundle, rpath))
    proc = parse_process(c.get("process"))
    linux = _obj(c.get("linux"), "linux")
    _refuse_set(linux, ("intelRdt",), "linux", "Intel RDT is not supported by minirt-oci")
    _refuse_set(linux, ("personality",), "linux", "personality is not supported by minirt-oci")
    _refuse_set(linux, ("timeOffsets",), "linux", "time namespaces are not supported")
    _refuse_set(linux, ("mountLabel",), "linux", "SELinux is not supported by minirt-oci")
    _refuse_set(linux, ("memoryPolicy", "netDevices"), "linux")
    namespaces = parse_namespaces(linux.get("namespaces"))
    uidmap = parse_id_mappings(linux.get("uidMappings"), "linux.uidMappings")
    gidmap = parse_id_mappings(linux.get("gidMappings"), "linux.gidMappings")
    if ("user" in namespaces) != bool(uidmap):
        raise _err("linux.uidMappings", "a new user namespace needs uidMappings, and mappings need one")
    if uidmap and not gidmap:
        raise _err("linux.gidMappings", "are required with uidMappings")
    if uidmap:
        from minirt import userns

        userns.check_maps(uidmap, "linux.uidMappings")
        userns.check_maps(gidmap, "linux.gidMappings")
    hostname = c.get("hostname") or ""
    domainname = c.get("domainname") or ""
    if (hostname or domainname) and "uts" not in namespaces:
        # runc's validator: "unable to set hostname without a private UTS namespace"
        raise _err("hostname", "setting a hostname or domainname needs a private UTS namespace")
    if hostname and namespaces.get("uts"):
        raise _err("hostname", "cannot set a hostname in a joined (path) UTS namespace")
    sysctl = _obj(linux.get("sysctl"), "linux.sysctl")
    for k, v in sysctl.items():
        if not isinstance(v, str):
            raise _err(f"linux.sysctl.{k}", "values must be strings")
        if k.startswith("net.") and "network" not in namespaces:
            raise _err(f"linux.sysctl.{k}", "not allowed in the host's network namespace")  # runc's validator
    devices = []
    for i, d in enumerate(_list(linux.get("devices"), "linux.devices")):
        d = _obj(d, f"linux.devices[{i}]")
        path, typ = d.get("path"), d.get("type")
        if not isinstance(path, str) or not path.startswith("/dev/"):
            raise _err(f"linux.devices[{i}]", f"path {path!r} must be under /dev")
        if typ not in ("c", "b", "u", "p"):
            raise _err(f"linux.devices[{i}]", f"type {typ!r} must be c, b, u or p")
        devices.append({"path_in_container": path, "type": "c" if typ == "u" else typ,
                        "major": _int(d.get("major", 0), f"linux.devices[{i}].major", 0),
                        "minor": _int(d.get("minor", 0), f"linux.devices[{i}].minor", 0),
                        "mode": _int(d.get("fileMode", 0o666), f"linux.devices[{i}].fileMode", 0, 0o7777),
                        "uid": _int(d.get("uid", 0), f"linux.devices[{i}].uid", 0),
                        "gid": _int(d.get("gid", 0), f"linux.devices[{i}].gid", 0)})  # fmt: skip
    prop = linux.get("rootfsPropagation") or ""
    if prop and prop not in PROPAGATION:
        raise _err("linux.rootfsPropagation", f"unknown propagation {prop!r}")
    res = _obj(linux.get("resources"), "linux.resources")
    rules = device_rules(res.get("devices"))
    # runc (specconv): each linux.devices node is allowed rwm after the spec's rules
    from minirt.cgroups.devices import RUNC_ALLOWED

    rules += [(True, d["type"], d["major"], d["minor"], "rwm") for d in devices if d["type"] != "p"]
    rules += list(RUNC_ALLOWED)
    seccomp, seccomp_flags = seccomp_profile(linux.get("seccomp"))
    annotations = _obj(c.get("annotations"), "annotations")
    cfg = ContainerConfig(
        id=cid, name=cid, rootfs=rootfs, argv=proc["args"], env=proc["env"], workdir=proc["cwd"],
        hostname=hostname, volumes=[], tmpfs=[], net="none" if "network" in namespaces else "host",
        sysctls=dict(sysctl), ulimits=None, devices=devices, oom_score_adj=proc["oomScoreAdj"],
        uidmap=uidmap or None, gidmap=gidmap or None, read_only=bool(root.get("readonly")),
        no_new_privs=proc["noNewPrivileges"], cgroupns="private" if "cgroup" in namespaces else "host",
    )  # fmt: skip
    return Spec(
        cfg=cfg, oci_version=ver, bundle=bundle, root=rootfs, readonly=bool(root.get("readonly")),
        mounts=[parse_mount(m, i, bundle) for i, m in enumerate(_list(c.get("mounts"), "mounts"))],
        namespaces=namespaces, caps=proc["capabilities"], user=proc["user"], umask=proc["user"]["umask"],
        no_new_privs=proc["noNewPrivileges"], terminal=proc["terminal"], console_size=proc["consoleSize"],
        rlimits=proc["rlimits"], masked_paths=_strs(linux.get("maskedPaths"), "linux.maskedPaths"),
        readonly_paths=_strs(linux.get("readonlyPaths"), "linux.readonlyPaths"),
        propagation=PROPAGATION.get(prop, 0), hooks=parse_hooks(c.get("hooks")), seccomp=seccomp,
        seccomp_flags=seccomp_flags, cgroups_path=cgroup_path(linux.get("cgroupsPath"), cid),
        resources=resources(res), device_rules=rules, annotations=dict(annotations), domainname=domainname,
        process=proc,
    )  # fmt: skip


def state_json(cid: str, status: str, pid: int, bundle: str, rootfs: str = "", created: str = "",
               annotations: dict | None = None) -> dict:
    """The runtime-spec state (runtime.md "State"), plus runc's rootfs and created, which
    go-runc reads. pid is 0 once the container has stopped, as runc reports it."""
    return {"ociVersion": SPEC_VERSION, "id": cid, "status": status, "pid": pid if status != "stopped" else 0,
            "bundle": bundle, "rootfs": rootfs, "created": created, "annotations": annotations or {}}  # fmt: skip
