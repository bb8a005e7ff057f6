"""Files and fds every minirt-oci command shares: the pid file, --preserve-fds, the console
socket's connection. A leaf: commands, create and exec import it, it imports none of them."""

import os

from minirt.errors import ConfigError, MinirtError


def write_pid_file(path: str, pid: int) -> None:
    """runc's createPidFile: a temp file renamed over the target, so a reader never sees half."""
    path = os.path.abspath(path)
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def preserve_fds(opts: dict) -> int:
    """--preserve-fds N: fds 3 .. 3+N-1 pass to the process (conmon passes its pipes so)."""
    v = opts.get("preserve-fds") or "0"
    try:
        n = int(v)
    except ValueError:
        raise ConfigError(f'invalid value "{v}" for flag -preserve-fds') from None
    if n < 0:
        raise ConfigError("--preserve-fds must not be negative")
    for fd in range(3, 3 + n):
        try:
            os.fstat(fd)
        except OSError:
            raise ConfigError(f"--preserve-fds {n}: fd {fd} is not open") from None
    return n


def connect_console(path: str):
    """A connected AF_UNIX stream socket to --console-socket (the engine listens on it)."""
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise MinirtError(f"connecting to console socket {path}: {e.strerror}") from None
    return s
