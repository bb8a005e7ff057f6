"""Compile a Docker-format seccomp profile into a classic BPF program with libseccomp.

Runs in: the minirt parent, on a cache miss only (minirt/seccomp/__init__.py): this is the
~15-25 ms step the cache exists for. The profile is parsed with jsonenc (json's C scanner,
without json's ~8 ms import).

Syscall names the system libseccomp does not know are skipped and returned, as runc does
("the syscall is not supported by this kernel"); libseccomp 2.5.4 lacks a dozen newer names of
Docker's profile (docs/security.md). A name it knows only on another ABI (stime on x86) comes
back negative and is still added: libseccomp places it on the ABIs that have it.
"""

import os

from minirt.errors import ConfigError
from minirt.seccomp import profile as prof

SCMP_FLTATR_CTL_OPTIMIZE = 8  # seccomp.h enum scmp_filter_attr
# Binary-tree layout (libseccomp >= 2.5; the same decisions, only the order of the
# comparisons changes). Attaching Docker's profile costs ~1.5 ms linear and ~0.55 ms as a tree
# here, though the tree is longer (~1170 instructions against ~1000): since Linux 5.11 the
# kernel emulates the new filter once per syscall number and ABI at attach time to build its
# constant-allow bitmap (kernel/seccomp.c, seccomp_cache_prepare), and a tree answers each in
# a few steps where the linear list walks hundreds. Every syscall of the container is cheaper
# to filter too.
OPTIMIZE_TREE = 2


def compile_profile(text: bytes, caps, machine: str | None = None, release: str | None = None,
                    where: str = "") -> tuple[bytes, list[str]]:
    """(BPF program, sorted names skipped as unknown to libseccomp); (b"", []) when the
    profile disables seccomp (no defaultAction, no syscalls)."""
    from minirt import _seccomp, jsonenc

    u = os.uname()
    try:
        parsed = jsonenc.loads(text.decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"seccomp profile {where}: not valid JSON ({e})") from None
    plan = prof.plan(parsed, caps, machine or u.machine, release or u.release)
    if not plan.enabled:
        return b"", []
    f = _seccomp.Filter(plan.default_action)
    f.set_attr(SCMP_FLTATR_CTL_OPTIMIZE, OPTIMIZE_TREE)
    for arch in plan.arches:
        token = _seccomp.resolve_arch(arch)
        if not token:
            raise ConfigError(f"seccomp profile {where}: libseccomp {_seccomp.version()} does not know "
                              f"architecture {arch!r}")  # fmt: skip
        f.add_arch(token)
    skipped: set[str] = set()
    for rule in plan.rules:
        for name in rule.names:
            nr = _seccomp.resolve_syscall(name)
            if nr is None:
                skipped.add(name)
                continue
            try:
                f.add_rule(rule.action, nr, rule.args)
            except OSError as e:
                raise ConfigError(f"seccomp profile {where}: rule for {name}: libseccomp refused it "
                                  f"({os.strerror(e.errno) if e.errno else e})") from None  # fmt: skip
    return f.export_bpf(), sorted(skipped)


def libseccomp_identity() -> tuple[str, list[str]]:
    """The loaded libseccomp's version and the files that decide it (our extension, the shared
    library it mapped), for the cache's version file: a change of either is a new libseccomp."""
    from minirt import _seccomp

    files = [_seccomp.__file__]
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.rstrip("\n").partition("/")[2]
            if path and "/libseccomp.so" in "/" + path:
                files.append("/" + path)
                break
    return _seccomp.version(), files
