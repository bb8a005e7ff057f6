"""Docker's resource flags: command-line strings -> validated numbers -> cgroup file writes.

Pure: no file I/O. The caller reads /sys/devices/system/cpu/online and
/sys/devices/system/node/online and passes the strings in; the cgroup drivers write what
v1_writes / v2_writes return. Import cost matters (every `minirt` start-up may load this), so
there is no re, dataclasses, json, enum or fractions here: the few grammars Docker uses are
parsed by hand, each next to the Go function it follows.

Where the numbers and messages come from (Docker 20.10-26):
- the CLI parses flag values with pflag, which wraps a parse error as
  `invalid argument "<value>" for "<-m, --memory>" flag: <error>` (docker/cli opts/opts.go
  MemBytes, MemSwapBytes, NanoCPUs, OomScoreAdj; go-units size.go RAMInBytes);
- the daemon checks the combination in verifyPlatformContainerResources and
  verifyPlatformContainerSettings (moby daemon/daemon_unix.go) and, on `docker update`, in
  Container.UpdateContainer (moby container/container_unix.go);
- runc turns the values into cgroup files (libcontainer/cgroups/fs/{cpuset,memory,cpu,pids}.go
  for v1, fs2/{pids,memory,cpu,cpuset}.go for v2), in the order listed in v1_writes / v2_writes.
"""

from minirt.errors import ConfigError

FLAGS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares",
         "cpuset_cpus", "cpuset_mems", "pids_limit", "oom_score_adj")

# pflag names a flag with its shorthand when it has one; that is the text inside the error
_DISPLAY = {
    "memory": "-m, --memory", "memory_swap": "--memory-swap", "memory_reservation": "--memory-reservation",
    "cpus": "--cpus", "cpu_shares": "-c, --cpu-shares", "cpuset_cpus": "--cpuset-cpus",
    "cpuset_mems": "--cpuset-mems", "pids_limit": "--pids-limit", "oom_score_adj": "--oom-score-adj",
}

# moby daemon_unix.go: "not a kernel limit ... to account for overhead during startup"
MIN_MEMORY = 6291456
# kernel/sched MIN_SHARES / MAX_SHARES; runc reads cpu.shares back and refuses a clamped value
MIN_SHARES = 2
MAX_SHARES = 262144
# moby getCPUResources: --cpus becomes quota over a fixed 100ms period
CFS_PERIOD_US = 100000
NANO = 1_000_000_000
# the kernel refuses cfs quotas under 1ms, i.e. under 0.01 CPU at a 100ms period
_MIN_NANO_CPUS = 10_000_000
# moby sysinfo isCpusetListAvailable: cap on a requested cpuset index (CVE-2018-20699)
_MAX_CPUSET = 8192
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

_DIGITS = frozenset("0123456789")
_KIB = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_BINARY_ABBRS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL_ABBRS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


class _Syntax(Exception):
    """A Go strconv error: `strconv.<func>: parsing "<num>": <reason>` (NumError.Error)."""

    def __init__(self, func: str, num: str, reason: str = "invalid syntax"):
        super().__init__(f"strconv.{func}: parsing {_go_quote(num)}: {reason}")


def _go_quote(s: str) -> str:
    """Go's %q / strconv.Quote for the strings a user types (escapes quotes, backslashes, controls)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _flag_error(dest: str, value: str, err: str) -> ConfigError:
    # pflag's FlagSet.Set: fmt.Errorf("invalid argument %q for %q flag: %v", value, flagName, err)
    return ConfigError(f"invalid argument {_go_quote(value)} for {_go_quote(_DISPLAY.get(dest, dest))} flag: {err}")


def _int64(func: str, s: str, n: int) -> int:
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise _Syntax(func, s, "value out of range")
    return n


def _go_parse_int(s: str, base0: bool) -> int:
    """strconv.ParseInt(s, 0 or 10, 64). Base 0 is what pflag's int64 flags use (--pids-limit,
    --cpu-shares): 0x/0o/0b prefixes, a leading 0 meaning octal, `_` between digits. Python's
    int() differs (it strips spaces, takes non-ASCII digits, refuses "010"), hence by hand."""
    body = s[1:] if s[:1] in ("+", "-") else s
    neg = s[:1] == "-"
    if not body or not body.isascii() or not all(c.isalnum() or c == "_" for c in body):
        raise _Syntax("ParseInt", s)
    if not base0:
        if not set(body) <= _DIGITS:
            raise _Syntax("ParseInt", s)
        n = int(body)
    else:
        if len(body) >= 2 and body[0] == "0" and body[1] not in "bBoOxX":
            body = "0o" + body[1:]  # Go: a leading 0 alone selects octal
        if body[-1] == "_":
            raise _Syntax("ParseInt", s)
        try:
            n = int(body, 0)
        except ValueError:
            raise _Syntax("ParseInt", s) from None
    return _int64("ParseInt", s, -n if neg else n)


def _go_atoi(s: str) -> int:
    """strconv.Atoi: optional sign, ASCII decimal digits, nothing else (no spaces, no `_`)."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not set(body) <= _DIGITS:
        raise _Syntax("Atoi", s)
    return -int(body) if s[:1] == "-" else int(body)


# --- units ---------------------------------------------------------------------------------

def parse_bytes(value: str, flag: str) -> int:
    """go-units RAMInBytes, as `docker run -m` uses it: `(?i)^(\\d+(\\.\\d+)*) ?([kmgtp])?i?b?$`,
    binary multiples, the float product truncated to int64. No sign: "-1" is an invalid size.
    flag is pflag's display name ("-m, --memory") for the error text."""
    try:
        return _ram_in_bytes(value)
    except _Syntax as err:
        raise ConfigError(f"invalid argument {_go_quote(value)} for {_go_quote(flag)} flag: {err}") from None
    except ValueError:
        raise ConfigError(
            f"invalid argument {_go_quote(value)} for {_go_quote(flag)} flag: invalid size: '{value}'") from None


def _ram_in_bytes(s: str) -> int:
    n = len(s)
    i = 0
    while i < n and s[i] in _DIGITS:
        i += 1
    if i == 0:
        raise ValueError(s)
    # (\.\d+)*: the regexp takes "1.2.3", and ParseFloat is the one that refuses it
    while i < n and s[i] == ".":
        j = i + 1
        while j < n and s[j] in _DIGITS:
            j += 1
        if j == i + 1:
            raise ValueError(s)
        i = j
    number, rest = s[:i], s[i:]
    if rest[:1] == " ":
        rest = rest[1:]
    rest = rest.lower()
    mul = 1
    if rest[:1] and rest[0] in _KIB:
        mul, rest = _KIB[rest[0]], rest[1:]
    if rest[:1] == "i":
        rest = rest[1:]
    if rest[:1] == "b":
        rest = rest[1:]
    if rest:
        raise ValueError(s)
    if number.count(".") > 1:
        raise _Syntax("ParseFloat", number)
    size = float(number)
    if size == float("inf"):
        raise _Syntax("ParseFloat", number, "value out of range")
    size *= mul
    # Go's int64(float64) on amd64 yields MinInt64 when out of range; the daemon then reports
    # the negative limit as under the minimum, which is what we do too
    return int(size) if size < 2.0 ** 63 else _INT64_MIN


def parse_cpus(value: str) -> int:
    """--cpus as nano-CPUs (docker/cli opts.ParseCPUs: a big.Rat times 1e9, which must be whole).
    `0.5` -> 500000000, `1/4` -> 250000000, `1.5e0` -> 1500000000. The range is checked by
    Resources.parse, which knows how many CPUs are online."""
    rat = _parse_rat(value)
    if rat is None:
        raise _flag_error("cpus", value, f"failed to parse {value} as a rational number")
    num, den = rat
    nano, rem = divmod(num * NANO, den)
    if rem:
        raise _flag_error("cpus", value, "value is too precise")
    return nano


def _parse_rat(s: str) -> tuple[int, int] | None:
    """big.Rat.SetString for the spellings people use: [+-]int/int, [+-]digits[.digits][e[+-]digits]."""
    if "/" in s:
        a, _, b = s.partition("/")
        try:
            num = _go_parse_int(a, True)
            den = _go_parse_int(b, True) if b[:1] not in ("+", "-") else 0
        except _Syntax:
            return None
        return (num, den) if den > 0 else None
    neg = s[:1] == "-"
    body = s[1:] if s[:1] in ("+", "-") else s
    mant, exp = body, 0
    for e in ("e", "E"):
        if e in body:
            mant, _, ex = body.partition(e)
            try:
                exp = _go_atoi(ex)
            except _Syntax:
                return None
            break
    whole, dot, frac = mant.partition(".")
    if not (whole or frac) or not set(whole + frac) <= _DIGITS:
        return None
    digits = int(whole + frac or "0")
    shift = exp - len(frac)
    if digits and shift > 40:
        return (-(1 << 63) if neg else 1 << 63), NANO  # far beyond any CPU count: the range check refuses it
    if shift >= 0:
        num, den = digits * 10 ** shift, 1
    elif -shift > len(str(digits)) + 10:
        num, den = (1 if digits else 0), 10 ** 20  # too small to be a whole number of nano-CPUs
    else:
        num, den = digits, 10 ** -shift
    return (-num if neg else num), den


def parse_cpuset(value: str, what: str = "cpus", maximum: int = _MAX_CPUSET) -> set[int]:
    """A cpuset list ("0-2,4", duplicates allowed) as moby parsers.ParseUintListMaximum reads it.
    what ("cpus" or "mems") names the flag in Docker's wrapped error:
    `Invalid value 1-x for cpuset cpus: invalid format: 1-x`. maximum 0 = no cap (for the
    kernel's own online list)."""
    out: set[int] = set()
    if value == "":
        return out
    bad = ConfigError(f"Invalid value {value} for cpuset {what}: invalid format: {value}")
    for part in value.split(","):
        lo_s, dash, hi_s = part.partition("-")
        try:
            lo = _go_atoi(lo_s)
            hi = _go_atoi(hi_s) if dash else lo
        except _Syntax:
            raise bad from None
        if hi < lo:
            raise bad
        if maximum and hi > maximum:
            # moby's own wording, typo included
            raise ConfigError(f"Invalid value {value} for cpuset {what}: value of out range, maximum is {maximum}")
        out.update(range(lo, hi + 1))
    return out


def format_bytes(n: int | float) -> str:
    """go-units BytesSize (docker stats MEM USAGE / LIMIT): binary units, %.4g -> "1.5MiB", "0B"."""
    return _custom_size(float(n), 1024.0, _BINARY_ABBRS, 4)


def format_decimal_bytes(n: int | float) -> str:
    """go-units HumanSizeWithPrecision(n, 3) (docker stats NET I/O, BLOCK I/O): "1.23kB", "12.3MB"."""
    return _custom_size(float(n), 1000.0, _DECIMAL_ABBRS, 3)


def _custom_size(size: float, base: float, abbrs: tuple[str, ...], precision: int) -> str:
    i = 0
    while size >= base and i < len(abbrs) - 1:
        size /= base
        i += 1
    # Go's %.Ng and Python's agree: shortest of %e/%f, trailing zeros dropped, 2-digit exponent
    return f"{size:.{precision}g}{abbrs[i]}"


# --- the resource set ----------------------------------------------------------------------

class Resources:
    """One container's limits. None = not set. Units: bytes, nano-CPUs, shares.

    memory_swap is memory+swap as Docker counts it: -1 = unlimited swap (given explicitly),
    None = not given (Docker then allows as much swap as memory: memsw = 2 * memory).
    pids_limit: None = not set, -1 = unlimited given explicitly (Docker accepts 0 and any
    negative number for that; -1 is kept so `update --pids-limit -1` can lift a limit).
    cpuset_* are the strings as given (validated)."""

    __slots__ = ("memory", "memory_swap", "memory_reservation", "nano_cpus", "cpu_shares",
                 "cpuset_cpus", "cpuset_mems", "pids_limit", "oom_score_adj")

    def __init__(self, **kw):
        for key in kw:
            if key not in self.__slots__:
                raise TypeError(f"Resources() got an unexpected keyword argument {key!r}")
        for key in self.__slots__:
            setattr(self, key, kw.get(key))

    def __eq__(self, other):
        if not isinstance(other, Resources):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None

    def __repr__(self):
        return "Resources(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    # --- parsing -------------------------------------------------------------------------

    @classmethod
    def parse(cls, opts: dict, online_cpus: str = "", online_mems: str = "", *, update: bool = False) -> "Resources":
        """Validate the CLI's strings ({dest: str | None}; keys outside FLAGS are ignored so the
        parser's whole option dict can be passed) the way `docker run` / `docker update` do.

        online_cpus / online_mems: the kernel's lists ("0-3"); "" skips the checks that need
        them (CPU count for --cpus, availability for --cpuset-*).
        update=True is `docker update`: the daemon's check runs with update=true there, which
        lets --memory-swap come without --memory (validate_update then checks the merged set).

        Order of checks: the flag parse errors the CLI raises first, then the daemon's checks
        in verifyPlatformContainerResources order, then oom-score-adj
        (verifyPlatformContainerSettings), then the cpu-shares range that runc enforces."""

        def raw(dest):
            v = opts.get(dest)
            return None if v is None else str(v)

        r = cls()
        v = raw("memory")
        if v is not None:
            r.memory = parse_bytes(v, _DISPLAY["memory"]) or None  # 0 = unset, as in Docker
        v = raw("memory_swap")
        if v is not None:
            # MemSwapBytes.Set: exactly "-1" is unlimited; anything else goes through RAMInBytes
            r.memory_swap = -1 if v == "-1" else (parse_bytes(v, _DISPLAY["memory_swap"]) or None)
        v = raw("memory_reservation")
        if v is not None:
            r.memory_reservation = parse_bytes(v, _DISPLAY["memory_reservation"]) or None
        v = raw("cpus")
        if v is not None:
            r.nano_cpus = parse_cpus(v) or None
        v = raw("cpu_shares")
        if v is not None:
            r.cpu_shares = _parse_flag_int("cpu_shares", v, base0=True) or None
        v = raw("cpuset_cpus")
        if v:
            r.cpuset_cpus = v
        v = raw("cpuset_mems")
        if v:
            r.cpuset_mems = v
        v = raw("pids_limit")
        if v is not None:
            n = _parse_flag_int("pids_limit", v, base0=True)
            # moby postContainersCreate / postContainerUpdate: 0 and negatives mean unlimited
            r.pids_limit = n if n > 0 else -1
        v = raw("oom_score_adj")
        if v is not None:
            # docker/cli OomScoreAdj.Set: strconv.ParseInt(value, 10, 64)
            r.oom_score_adj = _parse_flag_int("oom_score_adj", v, base0=False)

        r._check_memory(update)
        ncpu = len(parse_cpuset(online_cpus.strip(), "cpus", 0)) if online_cpus.strip() else 0
        if r.nano_cpus is not None and ncpu:
            # Docker refuses < 0 and > NumCPU; below 0.01 it leaves to the kernel, which refuses a
            # quota under 1ms (EINVAL at start). We refuse that too, up front, with the same message.
            if r.nano_cpus < _MIN_NANO_CPUS or r.nano_cpus > ncpu * NANO:
                raise ConfigError(
                    f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
        _check_cpuset(r.cpuset_cpus, online_cpus, "cpus", "Requested CPUs are not available")
        _check_cpuset(r.cpuset_mems, online_mems, "mems", "Requested memory nodes are not available")
        if r.oom_score_adj is not None and not -1000 <= r.oom_score_adj <= 1000:
            raise ConfigError(f"Invalid value {r.oom_score_adj}, range for oom score adj is [-1000, 1000]")
        if r.cpu_shares is not None:
            # Docker (API >= 1.19) passes shares through; the kernel clamps cpu.shares to [2, 262144]
            # and runc reads the file back and fails the start with these texts. Refusing at parse
            # time gives the same message before anything is created; we never clamp silently.
            if r.cpu_shares < 0:
                raise ConfigError("shares: invalid argument")  # moby getCPUResources
            if r.cpu_shares < MIN_SHARES:
                raise ConfigError(f"the minimum allowed cpu-shares is {MIN_SHARES}")
            if r.cpu_shares > MAX_SHARES:
                raise ConfigError(f"the maximum allowed cpu-shares is {MAX_SHARES}")
        return r

    def _check_memory(self, update: bool) -> None:
        """moby verifyPlatformContainerResources, memory part, in its order (0 there is None here)."""
        mem, swap, res = self.memory or 0, self.memory_swap or 0, self.memory_reservation or 0
        if mem != 0 and mem < MIN_MEMORY:
            raise ConfigError("Minimum memory limit allowed is 6MB")
        if mem > 0 and swap > 0 and swap < mem:
            raise ConfigError("Minimum memoryswap limit should be larger than memory limit, see usage")
        if mem == 0 and swap > 0 and not update:
            raise ConfigError("You should always set the Memory limit when using Memoryswap limit, see usage")
        if res != 0 and res < MIN_MEMORY:
            # moby tests `> 0 &&`; RAMInBytes can only go negative through int64 overflow
            raise ConfigError("Minimum memory reservation allowed is 6MB")
        if mem > 0 and res > 0 and mem < res:
            raise ConfigError("Minimum memory limit can not be less than memory reservation limit, see usage")

    # --- update --------------------------------------------------------------------------

    def validate_update(self, current: "Resources") -> None:
        """`docker update` rules, self being the update (parsed with update=True).

        First moby's Container.UpdateContainer check: a new --memory without --memory-swap must
        not exceed the swap limit Docker stored at create (MemorySwap in docker_host_config:
        2*memory by default, 0 when no memory limit was set, -1 for unlimited). Docker applies
        it literally, so a container created without -m, or with --memory-swap -1, needs
        --memory-swap in the same update. Then the merged set must pass the create-time rules
        that runc and the kernel would otherwise enforce at write time (memsw >= memory,
        reservation <= memory, swap needs memory)."""
        if self.memory is not None and self.memory_swap is None:
            if self.memory > current.docker_host_config()["MemorySwap"]:
                raise ConfigError("Memory limit should be smaller than already set memoryswap limit, "
                                  "update the memoryswap at the same time")
        current.merged(self)._check_memory(update=False)

    def merged(self, update: "Resources") -> "Resources":
        """self with the fields set in update replacing its own (moby UpdateContainer).

        One field is carried over rather than left unset: Docker stores MemorySwap = 2*memory at
        create (adaptContainerSettings), so when an update changes --memory alone, the swap
        limit stays at twice the *old* memory. We keep memory_swap None for "Docker's default",
        so we write that stored value down here before memory changes."""
        out = Resources(**{k: getattr(self, k) for k in self.__slots__})
        for k in self.__slots__:
            v = getattr(update, k)
            if v is not None:
                setattr(out, k, v)
        if update.memory is not None and update.memory_swap is None and self.memory is not None \
                and self.memory_swap is None:
            out.memory_swap = 2 * self.memory
        return out

    # --- storage and display -------------------------------------------------------------

    def to_dict(self) -> dict:
        """The fields that are set (for the state file)."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Resources":
        """Inverse of to_dict. Keys this version does not know are dropped (a newer minirt may
        have written them), so reading an old or new state file never fails here."""
        if not d:
            return cls()
        return cls(**{k: v for k, v in d.items() if k in cls.__slots__})

    def any(self) -> bool:
        return any(getattr(self, k) is not None for k in self.__slots__)

    def effective_memsw(self) -> int | None:
        """memory+swap as cgroup v1 gets it: -1 unlimited, Docker's 2*memory when not given."""
        if self.memory_swap is not None:
            return self.memory_swap
        if self.memory is not None:
            return 2 * self.memory
        return None

    def docker_host_config(self) -> dict:
        """The HostConfig keys `docker inspect` shows for these flags, with Docker's zero values.

        MemorySwap: 2*Memory when only --memory was given (adaptContainerSettings), -1 for
        unlimited. PidsLimit: null when unset; Docker also turns 0/-1 into null at create
        (postContainersCreate), while an update to unlimited stores 0 (postContainerUpdate). We
        keep one "unlimited" value, -1, and show it as null, the create-time form.
        CpuQuota/CpuPeriod stay 0: --cpus lives in NanoCpus."""
        swap = self.effective_memsw()
        return {
            "Memory": self.memory or 0,
            "MemorySwap": swap if swap is not None else 0,
            "MemoryReservation": self.memory_reservation or 0,
            "NanoCpus": self.nano_cpus or 0,
            "CpuShares": self.cpu_shares or 0,
            "CpuQuota": 0,
            "CpuPeriod": 0,
            "CpusetCpus": self.cpuset_cpus or "",
            "CpusetMems": self.cpuset_mems or "",
            "PidsLimit": self.pids_limit if self.pids_limit is not None and self.pids_limit > 0 else None,
            "OomScoreAdj": self.oom_score_adj or 0,
        }

    # --- cgroup files --------------------------------------------------------------------

    def _quota(self) -> int:
        # moby getCPUResources: NanoCPUs * period / 1e9 in int64 arithmetic (truncates)
        return self.nano_cpus * CFS_PERIOD_US // NANO

    def v1_writes(self, current_limit: int | None = None) -> list[tuple[str, str, str]]:
        """[(controller, file, value)] for cgroup v1, in runc's order: cpuset, memory, cpu, pids
        (the fs subsystem list), and inside each controller the order of its Set().

        The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every write,
        so the order of those two depends on what is there now (runc fs/memory.go
        setMemoryAndSwap): memsw first when it is -1 or above the current limit, else memory
        first. current_limit is memory.limit_in_bytes as the caller read it; None for a new
        cgroup, whose limit is the kernel's "unlimited" (memory first, as runc would do).
        On `update`, call this on current.merged(update), as Docker hands runc the merged set."""
        out: list[tuple[str, str, str]] = []
        if self.cpuset_cpus:
            out.append(("cpuset", "cpuset.cpus", self.cpuset_cpus))
        if self.cpuset_mems:
            out.append(("cpuset", "cpuset.mems", self.cpuset_mems))
        memsw = self.effective_memsw()
        mem_w = ("memory", "memory.limit_in_bytes", str(self.memory)) if self.memory is not None else None
        sw_w = ("memory", "memory.memsw.limit_in_bytes", str(memsw)) if memsw is not None else None
        if mem_w and sw_w and (memsw == -1 or (current_limit is not None and current_limit < memsw)):
            out += [sw_w, mem_w]
        else:
            out += [w for w in (mem_w, sw_w) if w]
        if self.memory_reservation is not None:
            out.append(("memory", "memory.soft_limit_in_bytes", str(self.memory_reservation)))
        if self.cpu_shares is not None:
            out.append(("cpu", "cpu.shares", str(self.cpu_shares)))
        if self.nano_cpus is not None:
            out.append(("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)))
            out.append(("cpu", "cpu.cfs_quota_us", str(self._quota())))
        if self.pids_limit is not None:
            # runc fs/pids.go: "max" for any non-positive limit
            out.append(("pids", "pids.max", "max" if self.pids_limit < 0 else str(self.pids_limit)))
        return out

    def v2_writes(self) -> list[tuple[str, str]]:
        """[(file, value)] for cgroup v2, in runc fs2 Manager.Set order: pids, memory, cpu, cpuset.

        memory.swap.max holds swap alone (cgroups.ConvertMemorySwapToCgroupV2Value: memsw -
        memory), written before memory.max as runc does; Docker's default memsw = 2*memory
        makes it equal to memory; "max" for -1; "0" when memsw == memory (no swap). cpu.weight
        from shares with runc's ConvertCPUSharesToCgroupV2Value (linear; newer
        opencontainers/cgroups releases use a non-linear map, Docker 20.10-26's runc uses this)."""
        out: list[tuple[str, str]] = []
        if self.pids_limit is not None:
            out.append(("pids.max", "max" if self.pids_limit < 0 else str(self.pids_limit)))
        if self.memory_swap == -1:
            out.append(("memory.swap.max", "max"))
        elif self.memory is not None:
            out.append(("memory.swap.max", str(self.effective_memsw() - self.memory)))
        if self.memory is not None:
            out.append(("memory.max", str(self.memory)))
        if self.memory_reservation is not None:
            out.append(("memory.low", str(self.memory_reservation)))
        if self.cpu_shares is not None:
            out.append(("cpu.weight", str(shares_to_weight(self.cpu_shares))))
        if self.nano_cpus is not None:
            out.append(("cpu.max", f"{self._quota()} {CFS_PERIOD_US}"))
        if self.cpuset_cpus:
            out.append(("cpuset.cpus", self.cpuset_cpus))
        if self.cpuset_mems:
            out.append(("cpuset.mems", self.cpuset_mems))
        return out


def shares_to_weight(shares: int) -> int:
    """runc cgroups.ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000]; 0 stays 0 (unset)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def _parse_flag_int(dest: str, value: str, base0: bool) -> int:
    try:
        return _go_parse_int(value, base0)
    except _Syntax as err:
        raise _flag_error(dest, value, str(err)) from None


def _check_cpuset(requested: str | None, online: str, what: str, unavailable: str) -> None:
    """moby sysinfo isCpusetListAvailable: the request parses (capped at 8192 or the highest
    online index) and every index is online; `available` in the message is the list as read."""
    if not requested:
        return
    online = online.strip()
    avail = parse_cpuset(online, what, 0) if online else set()
    want = parse_cpuset(requested, what, max(_MAX_CPUSET, max(avail, default=0)))
    if online and not want <= avail:
        raise ConfigError(f"{unavailable} - requested {requested}, available: {online}")
