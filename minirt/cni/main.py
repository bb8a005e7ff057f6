"""The minirt-cni executable: read the CNI_* environment and stdin, run the verb, print the outcome.

Runs in: the runtime's network namespace, one process per call (libcni's invoke.ExecPluginWithResult).

The output contract (SPEC.md, "Section 5: Result Types"): on success exit 0 with the Result on
stdout (ADD), the version information (VERSION) or nothing (DEL, CHECK, STATUS, GC); on failure
exit 1 with an error Result {cniVersion, code, msg, details} on stdout, and the same as one line
on stderr for the runtime's log. The error's cniVersion is the configuration's when it was read,
else the latest we speak.

minirt's own errors get the closest code (protocol.py lists them): a bad setting 7, something in
use 101, a refusal by the kernel (netlink or nftables) 5 "I/O failure", anything else 999 (libcni
skel's ErrInternal), with the traceback on stderr only under MINIRT_DEBUG=1.

Cost: the plugin imports only what its verb needs (protocol and jsonenc up front; netlink, IPAM
and nftables inside the verbs), and exits with os._exit after flushing, as `minirt` does
(docs/performance.md: interpreter shutdown after pyroute2 costs ~28 ms).
"""

import os
import sys

from minirt.cni import protocol
from minirt.cni.protocol import CniError


def _read_stdin() -> bytes:
    chunks = []
    try:
        while True:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as e:
        raise CniError(protocol.IO_FAILURE, f"error reading from stdin: {e.strerror}") from None


def _code_of(e: Exception) -> int:
    from minirt.errors import ConfigError, ConflictError, NetworkError, NoSuchObject

    if isinstance(e, (ConfigError, NoSuchObject)):
        return protocol.INVALID_CONFIG
    if isinstance(e, ConflictError):
        return protocol.CONFLICT
    if isinstance(e, NetworkError):
        return protocol.IO_FAILURE
    return protocol.INTERNAL


def run(environ, stdin: bytes) -> tuple[int, str, str]:
    """One call: (exit status, stdout, stderr). Pure apart from the verb's own host changes."""
    version = protocol.LATEST
    try:
        command = protocol.command_of(environ)
        if command == "VERSION":
            return 0, protocol.encode(protocol.version_result(stdin)), ""
        env = protocol.parse_env(environ)
        version = protocol.version_hint(stdin)
        conf = protocol.parse_config(stdin, command)
        version = conf.version
        if environ.get("MINIRT_EXPLAIN") == "1":  # each host change as its ip/nft line, on stderr
            from minirt import explain

            explain.enabled = True
        from minirt.cni import plugin

        result = plugin.COMMANDS[command](env, conf, environ)
        if result is None:
            return 0, "", ""
        return 0, protocol.encode(protocol.render_result(version, result)), ""
    except CniError as e:
        err = e
    except Exception as e:  # noqa: BLE001 - every failure becomes an error Result
        from minirt.errors import MinirtError

        if not isinstance(e, MinirtError) and environ.get("MINIRT_DEBUG"):
            import traceback

            traceback.print_exc()
        notes = "\n".join(getattr(e, "__notes__", ()))
        err = CniError(_code_of(e), str(e) if isinstance(e, MinirtError) else f"internal error: {e!r}", notes)
    out = protocol.encode(protocol.error_result(version, err.code, err.msg, err.details))
    return 1, out, f"minirt-cni: {err.msg}\n"


def main() -> int:
    try:
        stdin = b"" if os.environ.get("CNI_COMMAND") == "VERSION" and os.isatty(0) else _read_stdin()
    except CniError as e:
        sys.stdout.write(protocol.encode(protocol.error_result(protocol.LATEST, e.code, e.msg)))
        return 1
    code, out, err = run(os.environ, stdin)
    if out:
        sys.stdout.write(out)
    if err:
        sys.stderr.write(err)
    return code


def entry() -> None:
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
