"""The escape corpus (issue 12): one table, read by tests/integration/test_escape_corpus.py and
by `make compare` (compare/scenarios.py), so the test and the Docker comparison run the same rows.

Each row runs build/probes/probe (tests/probes/probe.c, bind-mounted as /probe) twice: in a
default container, where the call must fail with the answer Docker 20.10 gives (recorded by
`make compare`), and under the options that lift the one defence in the way, where it must
pass that defence (the kernel's own answer is then accepted, e.g. EINVAL for reboot's wrong
magic). Every probe is harmless if it succeeds: see probe.c's header.

`{host_pid}` in an argument is replaced by a pid that exists on the host (the caller's own);
inside the container's pid namespace it does not.
"""

from dataclasses import dataclass

UNCONFINED = ("--security-opt", "seccomp=unconfined")


@dataclass(frozen=True)
class Row:
    name: str  # the row's id in pytest and its label in `make compare`
    args: tuple[str, ...]  # the probe's arguments
    blocked: frozenset[str]  # the answers a default container may give (Docker 20.10's)
    opts: tuple[str, ...]  # the options that let the call through the defence that blocks it
    passed: frozenset[str]  # the answers then
    why: str  # which defence blocks it by default
    pass_args: tuple[str, ...] | None = None  # other probe arguments for the passing run


def _s(*answers: str) -> frozenset[str]:
    return frozenset(answers)


CORPUS = [
    Row("mount tmpfs", ("mount", "/mnt"), _s("EPERM"), ("--cap-add", "SYS_ADMIN"), _s("OK"),
        "seccomp: mount only with CAP_SYS_ADMIN (and the capability itself)"),
    Row("unshare -U", ("unshare", "user"), _s("EPERM"), UNCONFINED, _s("OK"),
        "seccomp: unshare only with CAP_SYS_ADMIN (a user namespace needs no capability)"),
    Row("unshare -n", ("unshare", "net"), _s("EPERM"), ("--cap-add", "SYS_ADMIN"), _s("OK"),
        "seccomp and CAP_SYS_ADMIN"),
    Row("keyctl", ("keyctl",), _s("EPERM"), UNCONFINED, _s("OK"), "seccomp: not in the allow list"),
    Row("add_key", ("add_key",), _s("EPERM"), UNCONFINED, _s("OK"), "seccomp: not in the allow list"),
    # this kernel is built without module support: finit_module is sys_ni_syscall, ENOSYS once
    # the filter and CAP_SYS_MODULE let it through (a kernel with modules says ENOEXEC or EINVAL
    # for the empty image); anything but the filter's EPERM shows the call got through
    Row("finit_module(/dev/null)", ("init_module", "/dev/null"), _s("EPERM"), ("--cap-add", "SYS_MODULE"),
        _s("ENOSYS", "ENOEXEC", "EINVAL"), "seccomp: finit_module only with CAP_SYS_MODULE"),
    # kernel.domainname gets its own value back (and is per UTS namespace anyway)
    Row("write /proc/sys/kernel/domainname", ("sysctl-same", "/proc/sys/kernel/domainname"), _s("EROFS"),
        ("--privileged",), _s("OK"), "/proc/sys is mounted read-only"),
    # two words: mknod's answer, then open+read's (only read, never written)
    Row("mknod b 7:0 and read it", ("mknod-read", "/tmp/blk", "7", "0"), _s("OK EPERM"), ("--privileged",),
        _s("OK OK"), "devices cgroup: `b *:* m` lets the node be made, not opened"),
    # a host process is not there to attach to: ESRCH. The passing run attaches to the container's
    # own PID 1 (--init's reaper, so that it is not the probe itself) and detaches: Docker's profile
    # allows ptrace on kernels >= 4.8 even without CAP_SYS_PTRACE, so what stops the escape is the
    # pid namespace, not ptrace being blocked
    Row("ptrace a host pid", ("ptrace", "{host_pid}"), _s("ESRCH"), ("--init", "--cap-add", "SYS_PTRACE"), _s("OK"),
        "pid namespace: no host process is visible", pass_args=("ptrace", "1")),
    # this kernel has no /proc/kcore (CONFIG_PROC_KCORE off): ENOENT on both sides, masked or
    # not; a kernel with one reads EMPTY (masked by /dev/null) by default
    Row("read /proc/kcore", ("read", "/proc/kcore"), _s("ENOENT", "EMPTY"), ("--privileged",),
        _s("ENOENT", "OK", "EPERM", "EIO"), "masked path (absent on this kernel)"),
    Row("socket(AF_VSOCK)", ("socket", "40", "1", "0"), _s("EPERM"), UNCONFINED, _s("OK", "EAFNOSUPPORT"),
        "seccomp: socket family 40 refused"),
    Row("socket(AF_ALG)", ("socket", "38", "5", "0"), _s("EPERM"), UNCONFINED, _s("OK", "EAFNOSUPPORT"),
        "seccomp: socket family 38 refused"),
    Row("bpf", ("bpf",), _s("EPERM"), ("--cap-add", "SYS_ADMIN"), _s("OK"),
        "seccomp: bpf only with CAP_SYS_ADMIN (or CAP_BPF in newer profiles)"),
    Row("perf_event_open", ("perf_event_open",), _s("EPERM"), ("--cap-add", "SYS_ADMIN"), _s("OK"),
        "seccomp: perf_event_open only with CAP_SYS_ADMIN (or CAP_PERFMON in newer profiles)"),
    # settimeofday(NULL, NULL): the CAP_SYS_TIME check, then nothing to set: the clock never moves
    Row("settimeofday", ("settime-noop",), _s("EPERM"), ("--cap-add", "SYS_TIME"), _s("OK"),
        "seccomp: settimeofday only with CAP_SYS_TIME (and the capability itself)"),
    # a wrong magic number: EINVAL once the filter and CAP_SYS_BOOT let it through
    Row("reboot (bad magic)", ("reboot",), _s("EPERM"), ("--cap-add", "SYS_BOOT"), _s("EINVAL"),
        "seccomp: reboot only with CAP_SYS_BOOT"),
]

# Not escapes, but the profile's finer rules, checked the same way (tests/integration/test_seccomp.py
# used to hold them): the newer capability groups, clone3's ENOSYS, personality's argument filter.
SECCOMP_RULES = [
    Row("bpf (CAP_BPF)", ("bpf",), _s("EPERM"), ("--cap-add", "BPF"), _s("OK"), "seccomp: CAP_BPF group"),
    Row("perf_event_open (CAP_PERFMON)", ("perf_event_open",), _s("EPERM"), ("--cap-add", "PERFMON"), _s("OK"),
        "seccomp: CAP_PERFMON group"),
    Row("clone3 (SYS_ADMIN)", ("clone3",), _s("ENOSYS"), ("--cap-add", "SYS_ADMIN"), _s("OK"),
        "seccomp: ENOSYS without CAP_SYS_ADMIN so libcs fall back to clone"),
    Row("clone3 (unconfined)", ("clone3",), _s("ENOSYS"), UNCONFINED, _s("OK"), "seccomp"),
    Row("personality(ADDR_NO_RANDOMIZE)", ("personality", "0x40000"), _s("EPERM"), UNCONFINED, _s("OK"),
        "seccomp: only a few personality values"),
]


def probe_args(row: Row, passing: bool, host_pid: int) -> list[str]:
    args = row.pass_args if passing and row.pass_args else row.args
    return [a.replace("{host_pid}", str(host_pid)) for a in args]
