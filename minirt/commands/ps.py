"""minirt ps [-a] [-q]: containers, as `docker ps` shows them."""

from minirt.cliparse import FLAG, Option, parse
from minirt.state import Store

OPTIONS = [Option(("-a", "--all"), FLAG, "also stopped containers"), Option(("-q", "--quiet"), FLAG, "only ids")]


def main(args: list[str]) -> int:
    from minirt import liveness

    opts, _ = parse(OPTIONS, args, stop_at_operand=False, prog="minirt ps [OPTIONS]")
    store = Store()
    rows = []
    for cid in store.ids():
        try:
            rec = store.load(cid)
        except (OSError, ValueError):
            continue
        st = liveness.status(rec)
        if st != "running" and not opts["all"]:
            continue
        if opts["quiet"]:
            print(cid[:12])
            continue
        # Only a running container shows an address and ports, as in Docker (a stopped
        # container's PORTS column is empty): a stopped one gave its lease and its published
        # elements back, a dead one's are gc's to reclaim, and `start` may hand it others.
        running = st == "running"
        net = (rec.get("network") or {}) if running else {}
        shown = st if st != "exited" else f"exited ({rec.get('exit_code')})"
        if rec.get("oom_killed"):  # the kernel counted an OOM kill in its cgroup
            shown = shown[:-1] + ", OOM killed)" if st == "exited" else f"{st} (OOM killed)"
        cmd = " ".join(rec.get("config", {}).get("argv") or [])
        pid, ports = (str(rec.get("pid") or ""), _ports(rec)) if running else ("", "")
        rows.append((cid[:12], rec.get("name", ""), shown, pid, net.get("address", ""), ports, cmd[:30],
                     rec.get("created", "")))  # fmt: skip
    if not opts["quiet"]:
        head = ("ID", "NAME", "STATUS", "PID", "IP", "PORTS", "COMMAND", "CREATED")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        for r in [head] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _ports(rec: dict) -> str:
    return ", ".join(f"{m['host_ip']}:{m['host_port']}->{m['container_port']}/{m['proto']}"
                     for m in rec.get("config", {}).get("ports") or [])  # fmt: skip
