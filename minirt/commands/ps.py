"""minirt ps [-a] [-q] [--format json]: containers, as `docker ps` shows them.

`--format json` prints one JSON object per container and line, with the keys of Docker's
`docker ps --format json` (Docker 23+: ID, Names, Image, Command, CreatedAt, State, Status,
Ports, Networks, Labels) that minirt has a value for; any other --format is refused, since
Docker's is a Go template.
"""

import sys

from minirt.cliparse import FLAG, VALUE, Option, parse
from minirt.errors import ConfigError
from minirt.state import Store

OPTIONS = [Option(("-a", "--all"), FLAG, "also stopped containers"), Option(("-q", "--quiet"), FLAG, "only ids"),
           Option(("--format",), VALUE, "json: one JSON object per line (Docker's keys)", "FORMAT")]


def main(args: list[str]) -> int:
    from minirt import liveness

    opts, _ = parse(OPTIONS, args, stop_at_operand=False, prog="minirt ps [OPTIONS]")
    fmt = opts.get("format")
    if fmt is not None and fmt != "json":
        raise ConfigError(f"ps --format {fmt!r}: only 'json' is supported (Docker's Go templates are not)")
    store = Store()
    rows = []
    for cid, rec in store.records():
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
        if fmt == "json":
            print(_json_line(rec, cid, st, shown, ports, cmd))
            continue
        rows.append((cid[:12], rec.get("name", ""), shown, pid, net.get("address", ""), ports, cmd[:30],
                     rec.get("created", "")))  # fmt: skip
    if not opts["quiet"] and fmt is None:
        head = ("ID", "NAME", "STATUS", "PID", "IP", "PORTS", "COMMAND", "CREATED")
        widths = [max(map(len, column)) for column in zip(head, *rows)]
        sys.stdout.write("".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n"
                                 for r in [head] + rows))  # fmt: skip
    return 0


def _ports(rec: dict) -> str:
    return ", ".join(f"{m['host_ip']}:{m['host_port']}->{m['container_port']}/{m['proto']}"
                     for m in rec.get("config", {}).get("ports") or [])  # fmt: skip


def _json_line(rec: dict, cid: str, state: str, shown: str, ports: str, cmd: str) -> str:
    """One container as `docker ps --format json` prints it: Docker's keys in its (Go's sorted)
    order, every value a string, compact. Built with jsonenc's string escaper: `import json`
    would cost ~10 ms of a ~25 ms start."""
    from minirt.jsonenc import _str

    cfg = rec.get("config", {})
    image = (cfg.get("image") or {}).get("name") or cfg.get("rootfs") or ""
    net = cfg.get("network") or cfg.get("net") or ""
    labels = ",".join(f"{k}={v}" for k, v in ((cfg.get("image") or {}).get("labels") or {}).items())
    fields = {"Command": f'"{cmd}"', "CreatedAt": rec.get("created", ""), "ID": cid[:12], "Image": image,
              "Labels": labels, "Names": rec.get("name", ""),
              "Networks": net if isinstance(net, str) else ",".join(net), "Ports": ports, "State": state,
              "Status": shown}
    return "{" + ",".join(f"{_str(k)}:{_str(str(v))}" for k, v in fields.items()) + "}"
