"""minirt inspect CONTAINER...: Docker-shaped JSON (State, Config, NetworkSettings).

`--plumbing` (minirt's own, opt-in) prints instead a short text of each container's own
plumbing, read from the kernel and checked against the record (minirt/graph/text.py): netns ->
ethN (address) <-veth-> host end -> bridge (subnet) -> uplink, the published ports, the cgroup.
It is a flag rather than a default or a `--format` value so that `inspect`'s output stays the
JSON Docker's tools parse, and `--format` stays free for Docker's Go-template meaning.
"""

from minirt import jsonenc
from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError
from minirt.state import Store


def document(rec: dict, status: str) -> dict:
    cfg = rec.get("config", {})
    net = rec.get("network") or {}
    image = cfg.get("image") or {}
    return {
        "Id": rec["id"],
        "Name": rec.get("name"),
        "Created": rec.get("created"),
        "Image": image.get("id") or "",  # Docker: the image ID; Config.Image is the name given
        "State": {
            "Status": status,
            "Running": status == "running",
            "Pid": rec.get("pid") if status == "running" else 0,
            "OOMKilled": bool(rec.get("oom_killed")),
            "ExitCode": rec.get("exit_code") or 0,
            "StartedAt": rec.get("started_at"),
            "FinishedAt": rec.get("finished_at"),
            "RestartCount": rec.get("restart_count", 0),
        },
        "Config": {
            "Hostname": cfg.get("hostname"),
            "Env": cfg.get("env"),
            "Cmd": cfg.get("argv"),
            "WorkingDir": cfg.get("workdir"),
            "Rootfs": cfg.get("rootfs"),
            "User": cfg.get("user") or "",
            "Image": image.get("name") or "",
            "Entrypoint": image.get("entrypoint"),
            "Labels": image.get("labels") or {},
            "StopSignal": cfg.get("stop_signal") or None,
        },
        "HostConfig": {
            "NetworkMode": cfg.get("network") or cfg.get("net"),
            "RestartPolicy": cfg.get("restart") or "no",
            "AutoRemove": bool(cfg.get("rm")),
            "Privileged": bool(cfg.get("privileged")),
            "CapAdd": cfg.get("cap_add"),
            "CapDrop": cfg.get("cap_drop"),
            "SecurityOpt": cfg.get("security_opt") or None,  # Docker: null unless --security-opt was given
            "Binds": [f"{v['source']}:{v['target']}" + (":ro" if v["readonly"] else "") for v in cfg.get("volumes") or []],
            **_resources(cfg),
            **_security(cfg),
        },
        # minirt's own: the maps the container runs with (Docker shows none per container)
        "Minirt": {"UidMap": cfg.get("uidmap") or [], "GidMap": cfg.get("gidmap") or []},
        "NetworkSettings": {
            "IPAddress": net.get("address", ""),
            "IPPrefixLen": net.get("prefixlen", 0),
            "Gateway": net.get("gateway", ""),
            "GlobalIPv6Address": net.get("address6", ""),
            "GlobalIPv6PrefixLen": net.get("prefixlen6", 0),
            "IPv6Gateway": net.get("gateway6", ""),
            "MacAddress": net.get("mac", ""),
            "Bridge": net.get("bridge", ""),
            "HostInterface": net.get("host_ifname", ""),
            "Ports": _ports(cfg, bool(net.get("address6"))),
            "Networks": _networks(rec, cfg, net),
        },
    }


def _resources(cfg: dict) -> dict:
    """Memory, NanoCpus, PidsLimit, ... and CgroupParent, with Docker's zero values when unset."""
    from minirt.cgroups.limits import Resources

    out = Resources.from_dict(cfg.get("resources")).docker_host_config()
    out["OomScoreAdj"] = cfg.get("oom_score_adj") or 0
    out["CgroupParent"] = cfg.get("cgroup_parent") or ""
    out["CgroupnsMode"] = cfg.get("cgroupns") or "host"
    out["UsernsMode"] = cfg.get("userns") or ""  # Docker: "" (the daemon's setting) or "host"
    return out


def _security(cfg: dict) -> dict:
    """Docker's names and zero values: GroupAdd, ReadonlyRootfs, Sysctls, Ulimits, Devices."""
    return {
        "GroupAdd": cfg.get("group_add") or None,
        "ReadonlyRootfs": bool(cfg.get("read_only")),
        "Sysctls": cfg.get("sysctls") or None,
        "Ulimits": [{"Name": u["name"], "Hard": u["hard"], "Soft": u["soft"]}
                    for u in cfg.get("ulimits") or []] or None,
        "Devices": [{"PathOnHost": d["path_on_host"], "PathInContainer": d["path_in_container"],
                     "CgroupPermissions": d["permissions"]} for d in cfg.get("devices") or []],
    }


def _endpoint(e: dict, aliases: list) -> dict:
    return {"IPAddress": e.get("address", ""), "IPPrefixLen": e.get("prefixlen", 0), "Gateway": e.get("gateway", ""),
            "GlobalIPv6Address": e.get("address6", ""), "MacAddress": e.get("mac", ""),
            "Aliases": aliases, "Interface": e.get("eth", "eth0"), "HostInterface": e.get("host_ifname", "")}  # fmt: skip


def _networks(rec: dict, cfg: dict, net: dict) -> dict:
    """Docker's NetworkSettings.Networks: the first network, then those added by `network connect`."""
    if not net:
        return {}
    out = {net.get("network") or cfg.get("network") or "minirt": _endpoint(net, cfg.get("aliases") or [])}
    for e in rec.get("connected") or []:
        out[e["network"]] = _endpoint(e, e.get("aliases") or [])
    return out


OPTIONS = [Option(("--plumbing",), FLAG, "text: netns -> eth0 <-veth-> host veth -> bridge -> uplink, "
                  "published ports, cgroup; read from the kernel, checked against the record")]  # fmt: skip


def main(args: list[str]) -> int:
    from minirt import liveness

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt inspect [OPTIONS] CONTAINER [CONTAINER...]")
    if not refs:
        raise ConfigError("inspect: give at least one container")
    store = Store()
    if opts["plumbing"]:
        return _plumbing(store, refs)
    out = []
    for ref in refs:
        rec = store.load(store.resolve(ref))
        out.append(document(rec, liveness.status(rec)))
    # json.dumps(out, indent=4)'s text, without json's import (~10 ms of inspect's ~30)
    print(jsonenc.dumps(out, sort_keys=False, step="    "))
    return 0


def _plumbing(store: Store, refs: list[str]) -> int:
    """inspect --plumbing: the graph of every network (one gathering for all the containers),
    then each container's part of it. The references are resolved first: a bad one changes
    nothing and prints nothing."""
    from minirt import liveness
    from minirt.graph import facts, model, text

    recs = [store.load(store.resolve(ref)) for ref in refs]
    g = model.build(facts.gather(store.root))
    print("\n".join(text.plumbing(g, rec, liveness.status(rec)) for rec in recs), end="")
    return 0


def _ports(cfg: dict, dual_stack: bool = False) -> dict:
    """Docker's shape: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}; on a
    dual-stack network a mapping on all addresses also lists {"HostIp": "::"}, as Docker."""
    out: dict = {}
    for m in cfg.get("ports") or []:
        key = f"{m['container_port']}/{m['proto']}"
        out.setdefault(key, []).append({"HostIp": m["host_ip"], "HostPort": str(m["host_port"])})
        if dual_stack and m["host_ip"] == "0.0.0.0":
            out[key].append({"HostIp": "::", "HostPort": str(m["host_port"])})
    return out
