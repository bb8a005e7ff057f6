"""--explain and --dry-run: print each host change as the `ip`/`nft`/`sysctl`/`echo`/`kill` line a
person would type; with --dry-run, print it and do not make it.

The line is printed by the same function that makes the change, from the same data, so the
two cannot drift (the idea of CNI's knftables Fake/Dump: one model, two renderings). Off by
default: one attribute check per call.

Dry run (`dry`): every host-changing primitive checks it, prints its line and skips the
change: netlink (net/netlink.py), the nft transaction (checked by libnftables without being
committed, `nft -c`), sysctl writes, cgroup mkdir/writes/rmdir, IPAM leases (the address is
peeked, not reserved), record writes (state.py), process creation (`run` forks nothing). A
value only the change itself would produce is written as a placeholder: PID for the
container's init (`netns $PID`, `nsenter -t $PID -n ...`), DNS_PID for a network's DNS
responder. Everything else (the id, veth names, addresses, the subnet) is computed as the real
run computes it, so a dry run's lines equal the executed run's lines for the same config and
host state (tests/integration/test_dryrun.py), the placeholders aside.
"""

import os

enabled = False
dry = False
PID = "$PID"  # the container init's pid, in a dry run
DNS_PID = "$DNS_PID"  # a DNS responder's pid, in a dry run
_fd = 2


def cmd(line: str) -> None:
    if enabled:
        os.write(_fd, f"+ {line}\n".encode())


def start_dry() -> None:
    """--dry-run: print every line, change nothing (the lines are the plan)."""
    global enabled, dry
    enabled = dry = True


def to_fd(fd: int) -> None:
    """Print to `fd` from now on (a process whose stderr is not the user's: the supervisor)."""
    global _fd
    _fd = fd


def render_kill(sig: int, pid) -> str:
    """`kill -TERM 12345`: the signal by name, as kill(1) takes it."""
    return f"kill -{signame(sig)} {pid}"


def signame(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name.removeprefix("SIG")
    except ValueError:
        return str(sig)
