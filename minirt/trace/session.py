"""A trace session's host side: the trace chains, and the state file that outlives a kill.

Runs in: the `minirt trace` process (install, remove), and `minirt gc` (dead sessions).

    $MINIRT_ROOT/traces/<pid>.json   {"pid", "start_time", "table", "chains", "selection"}

runc's "persist before the point of no return" (teardown.py): the file is written before the
chains are added, and removed after they are gone. So a trace killed at any instant (kill -9,
the machine's OOM killer) leaves a file naming what it may have added, with an owner that is
no longer alive (pid + start time, procfs.is_alive); `minirt gc` removes those chains and the
file (reconcile.py). A live trace's file is left alone, as another root's chains are: gc looks
only at this root's files.
"""

import os

from minirt import explain, procfs
from minirt.errors import FirewallError
from minirt.state import atomic_write_json, read_json, root_dir
from minirt.trace import rules


def traces_dir(root: str | None = None) -> str:
    return f"{root or root_dir()}/traces"


def _path(root: str, pid: int) -> str:
    return f"{traces_dir(root)}/{pid}.json"


def _nft(script: str, step: str) -> None:
    """One libnftables transaction (firewall/libnft.py's context), explained line by line."""
    from minirt.net.firewall.libnft import context

    for line in script.splitlines():
        explain.cmd(f"nft '{line}'" if "{" in line or '"' in line else f"nft {line}")
    rc, _out, err = context().cmd(script)
    if rc != 0:
        first = next((x.strip() for x in err.splitlines() if "Error" in x), err.strip())
        raise FirewallError(f"nft {step}: {first}", script)


def install(root: str, matches, selection: str) -> dict:
    """Write the state file, then add the chains (one transaction). Returns the record."""
    pid = os.getpid()
    rec = {"pid": pid, "start_time": procfs.start_time(pid), "table": rules.TABLE, "chains": rules.chain_names(pid),
           "selection": selection, "created_table": not _table_exists()}  # fmt: skip
    os.makedirs(traces_dir(root), exist_ok=True)
    atomic_write_json(_path(root, pid), rec)
    try:
        _nft(rules.install_script(pid, matches), "add the trace rules")
    except BaseException:
        _forget(root, pid)
        raise
    return rec


def remove(root: str, pid: int) -> None:
    """Delete the session's chains (if the table is still there), and the table too when the
    trace created it and nothing else has come to live in it since; then the state file.
    Idempotent."""
    try:
        rec = read_json(_path(root, pid))
    except (OSError, ValueError):
        rec = {}
    if _table_exists():
        _nft(rules.remove_script(pid), "remove the trace rules")
        if rec.get("created_table") and _table_is_empty():
            _nft(f"delete table {rules.TABLE}", "remove the table the trace created")
    _forget(root, pid)


def _forget(root: str, pid: int) -> None:
    try:
        os.unlink(_path(root, pid))
    except FileNotFoundError:
        pass


def _table_exists() -> bool:
    from minirt.net.firewall.libnft import context

    rc, _out, _err = context().cmd(f"list table {rules.TABLE}")
    return rc == 0


def _table_is_empty() -> bool:
    import json

    from minirt.net.firewall.libnft import listing

    rc, out, _err = listing(f"list table {rules.TABLE}", json=True)
    if rc != 0:
        return False
    objects = json.loads(out).get("nftables", [])
    return not any(k in obj for obj in objects for k in ("chain", "set", "map", "flowtable"))


def sessions(root: str) -> list[dict]:
    try:
        names = sorted(os.listdir(traces_dir(root)))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            out.append(read_json(f"{traces_dir(root)}/{name}"))
        except (OSError, ValueError):
            continue
    return out


def dead(root: str) -> list[dict]:
    """Sessions whose tracing process is gone (pid + start time)."""
    return [s for s in sessions(root) if not procfs.is_alive(int(s.get("pid", 0)), s.get("start_time"))]
