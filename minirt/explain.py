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

Teardown in another process: a container's owner (the foreground `minirt run`, or the detached
supervisor) undoes its host changes when the container exits, not the `stop` or `rm -f` that
asked. `stop --explain` still shows them: it leaves a request in the container's
stop-requested file (relay_request: a memfd of its own, named by /proc/<pid>/fd/<fd>); the
owner, at its teardown, opens that file and prints its lines there as it makes the changes
(follow_request), and `stop` copies them to its stderr once the exit is recorded (relayed). No
file is left anywhere: the memfd dies with `stop`.
"""

import os

enabled = False
dry = False
PID = "$PID"  # the container init's pid, in a dry run
DNS_PID = "$DNS_PID"  # a DNS responder's pid, in a dry run
_fds = [2]
_MEMFD = "minirt-explain"  # the name stop's memfd has in /proc/PID/fd (`/memfd:minirt-explain (deleted)`)


def cmd(line: str) -> None:
    if enabled:
        data = f"+ {line}\n".encode()
        for fd in _fds:
            try:
                os.write(fd, data)
            except OSError:
                pass  # a reader gone (EPIPE): the change itself must not fail for its line


def start_dry() -> None:
    """--dry-run: print every line, change nothing (the lines are the plan)."""
    global enabled, dry
    enabled = dry = True


def to_fd(fd: int | None) -> None:
    """Print to `fd` from now on (a process whose stderr is not the user's: the supervisor);
    None: print nowhere, explain is off."""
    global enabled
    _fds[:] = [] if fd is None else [fd]
    if fd is None:
        enabled = False


def relay_request() -> tuple[int, str]:
    """`stop --explain`: a memfd for the owner's teardown lines, and the request naming it, to
    be written into the container's stop-requested file."""
    fd = os.memfd_create(_MEMFD, os.MFD_CLOEXEC)
    return fd, f"explain {os.getpid()} {fd}"


def follow_request(request: str) -> None:
    """The owner, before its teardown: print to the requester's memfd too (only there, if this
    process was not explaining already). A requester gone meanwhile is no error, and a request
    left by a `stop` that was interrupted names a pid that may be reused since: the fd is
    opened only if it still is our memfd."""
    global enabled
    words = request.split()
    if len(words) != 3 or words[0] != "explain" or not words[1].isdigit() or not words[2].isdigit():
        return
    path = f"/proc/{words[1]}/fd/{words[2]}"
    try:
        if not os.readlink(path).startswith(f"/memfd:{_MEMFD} "):
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    if not enabled:
        _fds[:] = []
        enabled = True
    _fds.append(fd)


def relayed(fd: int) -> str:
    """What the owner printed into the memfd of relay_request()."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def render_kill(sig: int, pid) -> str:
    """`kill -TERM 12345`: the signal by name, as kill(1) takes it."""
    return f"kill -{signame(sig)} {pid}"


def signame(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name.removeprefix("SIG")
    except ValueError:
        return str(sig)
