"""Which rules of a Docker-format seccomp profile apply to a container: pure, unit-tested.

Runs in: the minirt parent, only when a program is compiled (a cache miss). No libseccomp here:
compile.py turns the plan into a filter.

The semantics are moby's (github.com/moby/profiles/seccomp, seccomp_linux.go setupSeccomp)
followed by runc's (libcontainer/seccomp/seccomp_linux.go), which loads what Docker passes on:
- `archMap`: the entry of the native architecture brings its sub-architectures (amd64: x86_64,
  x86, x32); `architectures` lists them directly; both at once is an error;
- per rule `name` or `names` (not both); `includes`/`excludes` on `caps` (the container's
  capability set: Docker looks at the bounding set, which minirt makes equal to it), `arches`
  (Docker's native name, e.g. "amd64") and `minKernel` ("major.minor", compared with uname's);
  every listed include must hold, any listed exclude drops the rule;
- `action` with `errnoRet` for SCMP_ACT_ERRNO and SCMP_ACT_TRACE (EPERM when absent), the
  default action with `defaultErrnoRet` likewise;
- a rule whose action equals the default action is dropped (libseccomp refuses it, EACCES);
- `args` comparisons of one rule must all hold, except when two name the same argument index:
  then each becomes a rule of its own (runc: "revert to old behavior", an OR);
- a profile with no defaultAction and no syscalls means no filter (Docker: seccomp disabled).
"""

from minirt.errors import ConfigError

EPERM = 1

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry their data in the low 16 bits.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
WITH_DATA = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

# enum scmp_compare (seccomp.h)
OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# uname -m -> the native name Docker's profile uses in `arches` (moby goToNative via GOARCH)
NATIVE = {
    "x86_64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64",
    "mips64": "mips64",
}  # fmt: skip
# the native name -> the SCMP_ARCH_* of archMap (moby nativeToSeccomp)
NATIVE_TO_SCMP = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64",
    "loong64": "SCMP_ARCH_LOONGARCH64", "mips64": "SCMP_ARCH_MIPS64", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}  # fmt: skip


class Rule:
    """One libseccomp rule per name: action value and (index, op, a, b) comparisons, all ANDed."""

    __slots__ = ("names", "action", "args")

    def __init__(self, names: list[str], action: int, args: tuple = ()):
        self.names, self.action, self.args = names, action, args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.names, self.action, self.args) == (other.names, other.action,
                                                                                   other.args)  # fmt: skip

    def __repr__(self) -> str:
        return f"Rule({self.names!r}, {self.action:#x}, {self.args!r})"


class Plan:
    """What to hand libseccomp: the default action, the architectures (libseccomp's names:
    "x86_64", "x86", "x32"), the rules in profile order. `enabled` False: no filter at all."""

    __slots__ = ("enabled", "default_action", "arches", "rules")

    def __init__(self, enabled: bool, default_action: int = 0, arches: tuple = (), rules: tuple = ()):
        self.enabled, self.default_action, self.arches, self.rules = enabled, default_action, arches, rules


def native_arch(machine: str) -> str:
    """uname's machine -> Docker's native architecture name ("x86_64" -> "amd64")."""
    return NATIVE.get(machine, machine)


def kernel_version(release: str) -> tuple[int, int]:
    """"6.18.3-foo" -> (6, 18): Docker compares only the first two numbers (kernel_linux.go)."""
    parts = release.split(".")
    try:
        minor = parts[1] if len(parts) > 1 else "0"
        # Sscanf("%d.%d"): the leading digits only ("12-1-amd64" -> 12)
        return int(parts[0]), int(minor[: len(minor) - len(minor.lstrip("0123456789"))])
    except (ValueError, IndexError):
        raise ConfigError(f"seccomp: cannot parse kernel version {release!r}") from None


def cap_names(caps) -> frozenset[str]:
    """minirt's capability names ("sys_admin") -> the profile's ("CAP_SYS_ADMIN")."""
    return frozenset("CAP_" + c.upper() for c in caps)


def action_value(name: object, errno_ret: object, where: str) -> int:
    if name not in ACTIONS:
        if name == "SCMP_ACT_NOTIFY":
            raise ConfigError(f"seccomp profile: {where}: SCMP_ACT_NOTIFY needs a listener, which minirt has not")
        raise ConfigError(f"seccomp profile: {where}: unknown action {name!r}")
    value = ACTIONS[name]
    if name in WITH_DATA:
        data = EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or not 0 <= data <= 0xFFFF:
            raise ConfigError(f"seccomp profile: {where}: errnoRet {errno_ret!r} is not 0..65535")
        value |= data
    return value


def _scmp_to_libseccomp(arch: str, where: str) -> str:
    """"SCMP_ARCH_X86_64" -> "x86_64", the name seccomp_arch_resolve_name takes."""
    if not isinstance(arch, str) or not arch.startswith("SCMP_ARCH_"):
        raise ConfigError(f"seccomp profile: {where}: unknown architecture {arch!r}")
    return arch.removeprefix("SCMP_ARCH_").lower()


def arches(profile: dict, native: str) -> tuple[str, ...]:
    """The architectures the filter matches, in libseccomp's names (moby setupSeccomp)."""
    listed, arch_map = profile.get("architectures") or [], profile.get("archMap") or []
    if listed and arch_map:
        raise ConfigError("seccomp profile: both 'architectures' and 'archMap' are specified, use either")
    if listed:
        return tuple(_scmp_to_libseccomp(a, "architectures") for a in listed)
    want = NATIVE_TO_SCMP.get(native)
    for entry in arch_map:
        if entry.get("architecture") == want:
            return tuple(_scmp_to_libseccomp(a, "archMap")
                         for a in [entry["architecture"], *(entry.get("subArchitectures") or [])])  # fmt: skip
    return ()


def _kernel_at_least(spec: object, kernel: tuple[int, int], where: str) -> bool:
    if not isinstance(spec, str):
        raise ConfigError(f"seccomp profile: {where}: minKernel {spec!r} is not a string like \"4.8\"")
    return kernel >= kernel_version(spec)


def applies(rule: dict, caps: frozenset[str], native: str, kernel: tuple[int, int], where: str) -> bool:
    """moby setupSeccomp's filter: any matching exclude drops the rule, every include must hold."""
    exc = rule.get("excludes") or {}
    if native in (exc.get("arches") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") is not None and _kernel_at_least(exc["minKernel"], kernel, where):
        return False
    inc = rule.get("includes") or {}
    if inc.get("arches") and native not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") is not None and not _kernel_at_least(inc["minKernel"], kernel, where):
        return False
    return True


def _conditions(args: list, where: str) -> list[tuple]:
    out = []
    for a in args:
        op = a.get("op")
        if op not in OPS:
            raise ConfigError(f"seccomp profile: {where}: unknown comparison {op!r}")
        index, value, two = a.get("index", 0), a.get("value", 0), a.get("valueTwo", 0)
        for what, v, top in (("index", index, 5), ("value", value, 2**64 - 1), ("valueTwo", two, 2**64 - 1)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
                raise ConfigError(f"seccomp profile: {where}: args {what} {v!r} out of range")
        # SCMP_CMP_MASKED_EQ: value is the mask, valueTwo the datum (libseccomp's datum_a, datum_b)
        out.append((index, OPS[op], value, two))
    return out


def plan(profile: object, caps, machine: str, release: str) -> Plan:
    """The rules of `profile` (a parsed Docker-format profile) that apply to a container with
    capability set `caps` (minirt's names) on this machine (uname -m) and kernel (uname -r)."""
    if not isinstance(profile, dict):
        raise ConfigError("seccomp profile: not a JSON object")
    calls = profile.get("syscalls") or []
    if not profile.get("defaultAction") and not calls:
        return Plan(False)
    native, kernel, capset = native_arch(machine), kernel_version(release), cap_names(caps)
    default = action_value(profile.get("defaultAction"), profile.get("defaultErrnoRet"), "defaultAction")
    rules = []
    for i, call in enumerate(calls):
        where = f"syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigError(f"seccomp profile: {where}: not an object")
        names = call.get("names") or []
        if call.get("name"):
            if names:
                raise ConfigError(f"seccomp profile: {where}: both 'name' and 'names' are specified, use either")
            names = [call["name"]]
        if not all(isinstance(n, str) for n in names):
            raise ConfigError(f"seccomp profile: {where}: names must be strings")
        if not names or not applies(call, capset, native, kernel, where):
            continue
        action = action_value(call.get("action"), call.get("errnoRet"), where)
        if action == default:
            continue  # runc: "ignore it if action is the same as default action"
        conds = _conditions(call.get("args") or [], where)
        indexes = [c[0] for c in conds]
        if len(set(indexes)) < len(indexes):
            rules += [Rule(list(names), action, (c,)) for c in conds]
        else:
            rules.append(Rule(list(names), action, tuple(conds)))
    return Plan(True, default, arches(profile, native), tuple(rules))
