"""The resource flags of `run` and `update`, Docker's names and units (docker run --help)."""

from minirt.cliparse import VALUE, Option

OPTIONS = [
    Option(("-m", "--memory"), VALUE, "memory limit (b, k, m, g; at least 6m)", "BYTES"),
    Option(("--memory-swap",), VALUE, "memory + swap limit; -1 for unlimited swap (default: twice --memory)",
           "BYTES"),  # fmt: skip
    Option(("--memory-reservation",), VALUE, "memory soft limit", "BYTES"),
    Option(("--cpus",), VALUE, "number of CPUs (CFS quota over a 100 ms period)", "N"),
    Option(("-c", "--cpu-shares"), VALUE, "CPU shares (relative weight; cpu.weight on cgroup v2)", "N"),
    Option(("--cpuset-cpus",), VALUE, "CPUs the container may use (0-3, 0,1)", "LIST"),
    Option(("--cpuset-mems",), VALUE, "memory nodes the container may use (0-3, 0,1)", "LIST"),
    Option(("--pids-limit",), VALUE, "maximum number of processes (-1 for unlimited)", "N"),
]
RUN_ONLY = [
    Option(("--oom-score-adj",), VALUE, "the container's OOM score adjustment (-1000 to 1000)", "N"),
    Option(("--cgroup-parent",), VALUE, "parent cgroup (default /minirt; relative = under minirt's own)", "PATH"),
    Option(("--cgroupns",), VALUE, "cgroup namespace: host or private (default: private on v2, host on v1)", "MODE"),
]


def _online(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def given(opts: dict) -> bool:
    """Any resource flag on the command line (without one, limits.py is not even imported)."""
    return any(opts.get(o.dest) is not None for o in OPTIONS)


def resources(opts: dict, update: bool = False):
    """limits.Resources from the parsed flags, validated against the online CPUs and nodes.
    update: `minirt update`, where --memory-swap may come alone (checked against the stored
    limits by Resources.validate_update)."""
    from minirt.cgroups.limits import FLAGS, Resources

    given = {k: opts.get(k) for k in FLAGS if opts.get(k) is not None}
    return Resources.parse(
        given,
        _online("/sys/devices/system/cpu/online") if "cpus" in given or "cpuset_cpus" in given else "",
        _online("/sys/devices/system/node/online") if "cpuset_mems" in given else "",
        update=update,
    )
