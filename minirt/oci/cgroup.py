"""The container's cgroup for minirt-oci: made with issue 11's drivers (cgroups/v1.py, v2.py),
limits from config.json's resources (spec.v1_writes / v2_writes), the freezer for pause.

Runs in: `create` (make, limit, place the init), `update`, `pause`/`resume`, `delete`, `kill --all`.
"""

import time

from minirt import cgroups
from minirt.cgroups import fsutil


def for_spec(sp) -> object:
    """A driver for the spec's cgroupsPath (nothing created yet)."""
    parent, name = sp.cgroups_path
    return cgroups.for_container(name, parent)


def of(rec: dict):
    return cgroups.driver(rec.get("cgroup"))


def apply_resources(cg, res: dict) -> None:
    """Write the resources. v1's memory order needs the current limit (spec.v1_writes)."""
    from minirt.oci import spec

    if cg.version == 1:
        current = None
        d = cg.dirs.get("memory")
        if d and (res.get("memory.limit") or res.get("memory.swap")):
            current = fsutil.read_int(f"{d}/memory.limit_in_bytes")
        cg.apply(spec.v1_writes(res, current))
    else:
        cg.apply(spec.v2_writes(res))


def _freezer(rec: dict) -> tuple[str, str] | None:
    """(file, version) of the container's freezer: v1's freezer.state, else v2's cgroup.freeze."""
    cg = rec.get("cgroup") or {}
    dirs = cg.get("dirs") or {}
    if cg.get("version") == 2:
        return (f"{dirs['']}/cgroup.freeze", "2") if "" in dirs else None
    return (f"{dirs['freezer']}/freezer.state", "1") if "freezer" in dirs else None


def frozen(rec: dict) -> bool:
    f = _freezer(rec)
    if f is None:
        return False
    try:
        v = fsutil.read(f[0])
    except OSError:
        return False
    return v == "FROZEN" if f[1] == "1" else v == "1"


def freeze(rec: dict, on: bool) -> None:
    """v1: write FROZEN/THAWED and wait until the state reads back (FREEZING is transient:
    runc's fs/freezer.go retries the same way); v2: cgroup.freeze 1/0, then cgroup.events."""
    from minirt.errors import MinirtError

    f = _freezer(rec)
    if f is None:
        raise MinirtError("this container has no freezer cgroup (pause needs the freezer controller)")
    path, version = f
    want = ("FROZEN" if on else "THAWED") if version == "1" else ("1" if on else "0")
    deadline = time.monotonic() + 10
    while True:
        fsutil.write(path, want)
        if version == "1":
            now = fsutil.read(path)
        else:
            now = "1" if fsutil.keyed(path.rsplit("/", 1)[0] + "/cgroup.events").get("frozen") else "0"
        if now == want:
            return
        if time.monotonic() > deadline:
            raise MinirtError(f"{path}: still {now} after 10 s, wanted {want}")
        time.sleep(0.01)
