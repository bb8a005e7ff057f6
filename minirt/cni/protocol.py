"""The CNI contract, pure: spec versions, the CNI_* environment, the plugin configuration, Results, errors.

Runs in: minirt-cni, before anything touches the host (no I/O: the caller passes the environment
and stdin's bytes in), and the unit tests.

What is checked here, and the error code each failure gets (SPEC.md, "Error"; the same checks
and codes as libcni's skel package, pkg/skel/skel.go):

    CNI_COMMAND missing or unknown                                 4  invalid environment
    CNI_CONTAINERID / CNI_IFNAME / CNI_NETNS missing or malformed  4  (required per verb, as skel)
    CNI_ARGS not KEY=VALUE;...                                     4
    stdin not UTF-8 JSON                                           6  decoding failure
    cniVersion missing (skel reads it as 0.1.0) or not supported   1  incompatible version
    CHECK below 0.4.0, STATUS and GC below 1.1.0                   1  (the verb did not exist yet)
    name missing or malformed, a key of the wrong type or value    7  invalid network config
    a key of the reference bridge plugin minirt-cni does not do    2  unsupported field (key and value named)

Results are built in one internal shape (1.1.0's) and rendered for the configuration's version
(render_result): 0.3.x/0.4.0 (types/040) carry `"version": "4"` in each ips entry and no MTU;
1.0.0 drops `version`; 1.1.0 adds `mtu` to interfaces (SPEC.md, "ADD Success").

Be aware:
- CNI_PATH is not required: minirt-cni delegates to no other plugin (skel requires it anyway).
- CNI_ARGS keys are accepted and ignored (the runtime's K8S_POD_NAME and friends); there is no
  `IP=` static address (host-local's convention).
- A conflist on stdin is accepted too (the issue asks for it; runtimes send a single plugin
  configuration): its minirt-cni entry is used, with the list's cniVersion and name.
"""

from minirt import jsonenc

PLUGIN_TYPE = "minirt-cni"
SUPPORTED = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
DEFAULT_ROOT = "/run/minirt-cni"

# SPEC.md "Error": 0-99 are the spec's, 100+ the plugin's own.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN = 11
NOT_AVAILABLE = 50
CHECK_FAILED = 100  # CHECK: the attachment is not what ADD left (prevResult)
CONFLICT = 101  # in use: the interface name in the container, a host port, the last address, the attachment
INTERNAL = 999  # an error with no code of its own (libcni skel's types.ErrInternal)

# Which variables each verb needs (skel's reqForCmd, minus CNI_PATH: nothing is delegated)
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "STATUS": (),
    "GC": (),
    "VERSION": (),
}
_MIN_VERSION = {"CHECK": (0, 4, 0), "STATUS": (1, 1, 0), "GC": (1, 1, 0)}
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

# Keys of the reference bridge plugin that minirt-cni does not implement: refused when set to
# anything but their "off" value, never silently ignored (SPEC.md: code 2 names key and value).
_UNSUPPORTED = {
    "ipam": None,  # any value: minirt-cni is its own IPAM (subnet, gateway at the top level)
    "vlan": 0,
    "vlanTrunk": None,
    "preserveDefaultVlan": None,
    "promiscMode": False,
    "forceAddress": False,
    "macspoofchk": False,
    "enabledad": False,
    "disableContainerInterface": False,
    "portIsolation": False,
}


class CniError(Exception):
    """One error Result: code, msg (short), details (longer). str() is msg."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def parse_version(text) -> tuple[int, int, int]:
    """'1.0.0' -> (1, 0, 0); ValueError for anything that is not MAJOR.MINOR.PATCH."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"not a CNI version: {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def error_result(version: str, code: int, msg: str, details: str = "") -> dict:
    out = {"cniVersion": version, "code": code, "msg": msg}
    if details:
        out["details"] = details
    return out


def version_result(stdin: bytes) -> dict:
    """VERSION: the input's cniVersion echoed (SPEC.md, "VERSION Success"; skel prints its own
    latest instead), or the latest when there is none to echo."""
    version = LATEST
    try:
        conf = jsonenc.loads(stdin.decode())
        if isinstance(conf, dict):
            parse_version(conf.get("cniVersion"))
            version = conf["cniVersion"]
    except (ValueError, UnicodeDecodeError):
        pass
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED)}


def version_hint(stdin: bytes) -> str:
    """The version an error Result about this configuration is written in: its cniVersion when
    that is one we speak (even if the rest is refused), else the latest."""
    try:
        conf = jsonenc.loads(stdin.decode())
    except (ValueError, UnicodeDecodeError):
        return LATEST
    version = conf.get("cniVersion") if isinstance(conf, dict) else None
    return version if version in SUPPORTED else LATEST


def encode(obj: dict) -> str:
    return jsonenc.dumps(obj) + "\n"


# -- the environment ----------------------------------------------------------------------------


class Env:
    """The CNI_* variables of one invocation, validated for its verb."""

    __slots__ = ("command", "container_id", "netns", "ifname", "args", "path")

    def __init__(self, command: str, container_id: str, netns: str, ifname: str, args: dict, path: str):
        self.command, self.container_id, self.netns = command, container_id, netns
        self.ifname, self.args, self.path = ifname, args, path


def command_of(environ) -> str:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(INVALID_ENV, "required env variables [CNI_COMMAND] missing")
    if command not in COMMANDS:
        raise CniError(INVALID_ENV, f"unknown CNI_COMMAND: {command}", f"known: {', '.join(COMMANDS)}")
    return command


def parse_env(environ) -> Env:
    command = command_of(environ)
    missing = [v for v in _REQUIRED[command] if not environ.get(v)]
    if missing:
        raise CniError(INVALID_ENV, f"required env variables [{','.join(missing)}] missing")
    cid = environ.get("CNI_CONTAINERID", "")
    ifname = environ.get("CNI_IFNAME", "")
    if "CNI_CONTAINERID" in _REQUIRED[command]:
        check_container_id(cid)
    if "CNI_IFNAME" in _REQUIRED[command]:
        check_ifname(ifname, "CNI_IFNAME")
    return Env(command, cid, environ.get("CNI_NETNS", ""), ifname, parse_args(environ.get("CNI_ARGS", "")),
               environ.get("CNI_PATH", ""))  # fmt: skip


def check_container_id(cid: str) -> None:
    """SPEC.md, Parameters: not empty, an alphanumeric first character, then alphanumerics, '_',
    '.' or '-' (skel's ValidateContainerID; it also names files of ours, so no '/')."""
    if not cid or not cid[0].isascii() or not cid[0].isalnum() or not set(cid) <= _ID_CHARS:
        raise CniError(INVALID_ENV, f"invalid characters in CNI_CONTAINERID: {cid!r}",
                       "it must start with a letter or digit, then letters, digits, '_', '.' or '-'")  # fmt: skip


def check_ifname(name, what: str) -> None:
    """SPEC.md: a Linux interface name: 1-15 bytes, not '.' or '..', no '/', ':' or whitespace."""
    bad = (
        not isinstance(name, str)
        or not 0 < len(name.encode()) <= 15
        or name in (".", "..")
        or any(c in "/:" or c.isspace() for c in name)
    )
    if bad:
        code = INVALID_ENV if what.startswith("CNI_") else INVALID_CONFIG
        raise CniError(code, f"{what} {name!r} is not a valid interface name",
                       "1-15 bytes, not '.' or '..', without '/', ':' or whitespace")  # fmt: skip


def parse_args(text: str) -> dict:
    """CNI_ARGS: "FOO=BAR;ABC=123" (SPEC.md). Empty pairs are tolerated (a trailing ';')."""
    out = {}
    for pair in text.split(";"):
        if not pair:
            continue
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise CniError(INVALID_ENV, f"CNI_ARGS: {pair!r} is not KEY=VALUE", f"CNI_ARGS={text}")
        out[key] = value
    return out


# -- the configuration --------------------------------------------------------------------------


class PortMapping:
    """One runtimeConfig.portMappings entry (CONVENTIONS.md, "Port mappings"), in minirt's own
    port shape (minirt/net/ports.PortMapping's attributes), so firewall/ports.elements() takes it."""

    __slots__ = ("host_ip", "host_port", "container_port", "proto")

    def __init__(self, host_ip: str, host_port: int, container_port: int, proto: str):
        self.host_ip, self.host_port, self.container_port, self.proto = host_ip, host_port, container_port, proto

    def __repr__(self) -> str:
        return f"PortMapping({self.host_ip!r}, {self.host_port}, {self.container_port}, {self.proto!r})"


class NetConf:
    """A validated plugin configuration. Options as the reference bridge plugin spells them
    (plugins/main/bridge/bridge.go NetConf) where it has them; minirt's defaults otherwise."""

    __slots__ = ("raw", "version", "name", "bridge", "subnet", "gateway", "ip_masq", "is_gateway",
                 "is_default_gateway", "mtu", "hairpin", "data_dir", "port_mappings", "skipped_mappings",
                 "prev_result", "dns", "valid_attachments")  # fmt: skip

    def vtuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)


def decode(stdin: bytes):
    try:
        return jsonenc.loads(stdin.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise CniError(DECODE_FAILURE, f"error decoding the network configuration: {e}") from None


def parse_config(stdin: bytes, command: str) -> NetConf:
    conf = decode(stdin)
    if not isinstance(conf, dict):
        raise CniError(DECODE_FAILURE, "the network configuration is not a JSON object")
    if "plugins" in conf:
        conf = _from_list(conf)
    version = conf.get("cniVersion", "0.1.0")  # libcni's ConfigDecoder: no cniVersion means 0.1.0
    try:
        vt = parse_version(version)
    except ValueError:
        raise CniError(DECODE_FAILURE, f"cniVersion {version!r} is not a version (MAJOR.MINOR.PATCH)") from None
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f"config is {version!r}, plugin supports {list(SUPPORTED)}")  # fmt: skip
    if command in _MIN_VERSION and vt < _MIN_VERSION[command]:
        raise CniError(INCOMPATIBLE_VERSION, f"config version does not allow {command}",
                       f"{command} needs cniVersion {'.'.join(map(str, _MIN_VERSION[command]))} or later")  # fmt: skip
    c = NetConf()
    c.raw, c.version = conf, version
    c.name = _name(conf.get("name"))
    for key, off in _UNSUPPORTED.items():
        if key in conf and (off is None or conf[key] not in (off, None)):
            raise CniError(UNSUPPORTED_FIELD, f"unsupported field {key}: {_show(conf[key])}",
                           f"minirt-cni does not implement {key!r} (docs/cni.md)")  # fmt: skip
    c.bridge = _opt(conf, "bridge", str)
    if c.bridge is not None:
        check_ifname(c.bridge, "bridge")
    c.subnet = _opt(conf, "subnet", str)
    c.gateway = _opt(conf, "gateway", str)
    _check_addresses(c)
    # minirt's defaults: a gateway on the bridge, a default route, masquerade (as `minirt run`;
    # the reference plugin defaults all three to false). isDefaultGateway implies isGateway,
    # as in the reference plugin.
    is_default = _opt(conf, "isDefaultGateway", bool)
    c.is_gateway = _opt(conf, "isGateway", bool, True) or is_default is True
    c.is_default_gateway = c.is_gateway if is_default is None else is_default
    c.ip_masq = _opt(conf, "ipMasq", bool, True)
    c.mtu = _opt(conf, "mtu", int)
    if c.mtu is not None and not 68 <= c.mtu <= 65535:
        raise CniError(INVALID_CONFIG, f"mtu {c.mtu}: not between 68 and 65535")
    c.hairpin = _opt(conf, "hairpinMode", bool, False)
    c.data_dir = _opt(conf, "dataDir", str)
    if c.data_dir is not None and not c.data_dir.startswith("/"):
        raise CniError(INVALID_CONFIG, f"dataDir {c.data_dir!r}: not an absolute path")
    c.dns = _opt(conf, "dns", dict, {})
    rc = _opt(conf, "runtimeConfig", dict, {})
    c.port_mappings, c.skipped_mappings = _port_mappings(rc.get("portMappings"))
    prev = conf.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise CniError(INVALID_CONFIG, "prevResult is not a JSON object")
    c.prev_result = normalize_result(prev) if prev else None
    c.valid_attachments = _attachments(conf.get("cni.dev/valid-attachments"), command)
    return c


def _from_list(conflist: dict) -> dict:
    plugins = conflist.get("plugins")
    if not isinstance(plugins, list):
        raise CniError(INVALID_CONFIG, "plugins is not a list")
    mine = [p for p in plugins if isinstance(p, dict) and p.get("type") == PLUGIN_TYPE]
    if len(mine) != 1:
        raise CniError(INVALID_CONFIG, f"the configuration list names {len(mine)} {PLUGIN_TYPE} plugins, not one")
    out = dict(mine[0])
    for key in ("cniVersion", "name"):
        if key in conflist:
            out[key] = conflist[key]
    return out


def _show(value) -> str:
    """A value as JSON on one line, for messages."""
    return " ".join(jsonenc.dumps(value).split())


def _name(name) -> str:
    """SPEC.md, "Configuration format": alphanumeric first, then alphanumerics, '_', '.' or '-'.
    minirt's nft chains are named after it (net-<name>-in), so at most 64 characters
    (firewall/ruleset.py MAX_NAME)."""
    if not isinstance(name, str) or not name:
        raise CniError(INVALID_CONFIG, "missing network name")
    if not name[0].isascii() or not name[0].isalnum() or not set(name) <= _ID_CHARS or len(name) > 64:
        raise CniError(INVALID_CONFIG, f"invalid network name {name!r}",
                       "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")  # fmt: skip
    return name


def _opt(conf: dict, key: str, kind: type, default=None):
    value = conf.get(key)
    if value is None:
        return default
    # bool is an int subclass in Python: "mtu": true must not pass as 1
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CniError(INVALID_CONFIG, f"{key}: expected a {_KIND[kind]}, got {_show(value)}")
    return value


_KIND = {str: "string", bool: "boolean", int: "number", dict: "JSON object", list: "list"}


def _check_addresses(c: NetConf) -> None:
    from minirt.net import inet

    if c.subnet is not None:
        try:
            p = inet.prefix(c.subnet, bare=False)
        except inet.HostBitsSet as e:
            raise CniError(INVALID_CONFIG, f"subnet {c.subnet}: host bits set (did you mean {e.network}?)") from None
        except ValueError:
            p = None
        if p is None or p.version != 4 or p.plen > 30:
            raise CniError(INVALID_CONFIG, f"subnet {c.subnet!r}: expected an IPv4 network of /30 or larger",
                           "such as 10.88.0.0/24 (IPv6 subnets are not supported by minirt-cni yet)")  # fmt: skip
        c.subnet = str(p)
    if c.gateway is not None:
        try:
            inet.parse4(c.gateway)
        except ValueError:
            raise CniError(INVALID_CONFIG, f"gateway {c.gateway!r}: not an IPv4 address") from None
        if c.subnet is None:
            raise CniError(INVALID_CONFIG, "gateway without subnet", "give the subnet it belongs to")
        if not inet.contains(c.subnet, c.gateway):
            raise CniError(INVALID_CONFIG, f"gateway {c.gateway}: not inside subnet {c.subnet}")


def _port_mappings(value) -> tuple[list[PortMapping], list[dict]]:
    """runtimeConfig.portMappings -> (mappings, skipped). A mapping bound to an IPv6 host address
    is skipped (the attachment has an IPv4 address only), as the portmap plugin skips mappings
    of the other address family."""
    from minirt.net import inet

    if value is None:
        return [], []
    if not isinstance(value, list):
        raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: expected a list, got {_show(value)}")
    out, skipped, seen = [], [], {}
    for m in value:
        if not isinstance(m, dict):
            raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: {_show(m)} is not an object")
        host_port, ctr_port = m.get("hostPort"), m.get("containerPort")
        for key, port in (("hostPort", host_port), ("containerPort", ctr_port)):
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
                raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: {key} {_show(port)} is not a port 1-65535")
        proto = m.get("protocol") or "tcp"
        if not isinstance(proto, str) or proto.lower() not in ("tcp", "udp"):
            raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: protocol {_show(proto)}: tcp or udp")
        host_ip = m.get("hostIP") or "0.0.0.0"
        if not isinstance(host_ip, str):
            raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: hostIP {_show(host_ip)} is not a string")
        try:
            version, _n = inet.parse(host_ip, canonical6=False)
        except ValueError:
            raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: hostIP {host_ip!r}: not an address") from None
        if version == inet.V6:
            skipped.append(m)
            continue
        pm = PortMapping(host_ip, host_port, ctr_port, proto.lower())
        key = (pm.host_ip, pm.proto, pm.host_port)
        if key in seen and seen[key] != pm.container_port:
            raise CniError(INVALID_CONFIG, f"runtimeConfig.portMappings: host port {host_ip}:{host_port}/{pm.proto} "
                                           "is mapped twice")  # fmt: skip
        if key not in seen:
            seen[key] = pm.container_port
            out.append(pm)
    return out, skipped


def _attachments(value, command: str) -> list[tuple[str, str]] | None:
    """GC's cni.dev/valid-attachments: [{containerID, ifname}] (SPEC.md, GC). Required for GC:
    without it GC would remove every attachment of the network."""
    if value is None:
        if command == "GC":
            raise CniError(INVALID_CONFIG, "GC without cni.dev/valid-attachments",
                           "the runtime must list the attachments that are still valid (an empty list removes all)")
        return None
    if not isinstance(value, list):
        raise CniError(INVALID_CONFIG, f"cni.dev/valid-attachments: expected a list, got {_show(value)}")
    out = []
    for a in value:
        if not isinstance(a, dict) or not isinstance(a.get("containerID"), str) or not isinstance(a.get("ifname"), str):
            raise CniError(INVALID_CONFIG, f"cni.dev/valid-attachments: {_show(a)} is not {{containerID, ifname}}")
        out.append((a["containerID"], a["ifname"]))
    return out


# -- Results -------------------------------------------------------------------------------------


def normalize_result(result: dict) -> dict:
    """A Result of any supported version (a prevResult) in the internal shape: ips without
    `version` (0.3.x/0.4.0 carry it), lists present. Malformed entries are left for the verb's
    checks to report."""
    out = {
        "interfaces": [dict(i) for i in result.get("interfaces") or [] if isinstance(i, dict)],
        "ips": [],
        "routes": [dict(r) for r in result.get("routes") or [] if isinstance(r, dict)],
        "dns": result.get("dns") if isinstance(result.get("dns"), dict) else {},
    }
    for ip in result.get("ips") or []:
        if isinstance(ip, dict):
            ip = dict(ip)
            ip.pop("version", None)
            out["ips"].append(ip)
    return out


_IFACE_KEYS = {"0": ("name", "mac", "sandbox"), "1.0": ("name", "mac", "sandbox"),
               "1.1": ("name", "mac", "mtu", "sandbox", "socketPath", "pciID")}  # fmt: skip
_ROUTE_KEYS = {"0": ("dst", "gw"), "1.0": ("dst", "gw"),
               "1.1": ("dst", "gw", "mtu", "advmss", "priority", "table", "scope")}  # fmt: skip


def render_result(version: str, result: dict) -> dict:
    """The internal Result in `version`'s format: types/040 for 0.3.0-0.4.0, types/100 for 1.0.0
    and 1.1.0. Empty optional fields are left out, as the Go types' omitempty does."""
    major, minor, _patch = parse_version(version)
    era = "0" if major == 0 else ("1.0" if minor == 0 else "1.1")
    out = {"cniVersion": version, "interfaces": [], "ips": [], "routes": [], "dns": result.get("dns") or {}}
    for iface in result.get("interfaces") or []:
        out["interfaces"].append({k: iface[k] for k in _IFACE_KEYS[era] if iface.get(k) not in (None, "")})
    for ip in result.get("ips") or []:
        entry = {}
        if era == "0":  # types/040 IPConfig.Version, from the address's family
            entry["version"] = "6" if ":" in str(ip.get("address", "")) else "4"
        for k in ("interface", "address", "gateway"):
            if ip.get(k) not in (None, ""):
                entry[k] = ip[k]
        out["ips"].append(entry)
    for route in result.get("routes") or []:
        out["routes"].append({k: route[k] for k in _ROUTE_KEYS[era] if route.get(k) not in (None, "")})
    if not out["interfaces"]:
        del out["interfaces"]
    if not out["routes"]:
        del out["routes"]
    return out


def merge_results(prev: dict | None, mine: dict) -> dict:
    """ADD with a prevResult (a plugin earlier in the chain): "Plugins provided a prevResult ...
    must output it as their result, with any possible modifications made by that plugin included"
    (SPEC.md, "ADD Success"). Our interfaces go after the previous ones, our ips' `interface`
    indexes shift with them; DNS is ours unless we have none."""
    if not prev:
        return mine
    shift = len(prev["interfaces"])
    ips = [dict(ip, interface=ip["interface"] + shift) if isinstance(ip.get("interface"), int) else ip
           for ip in mine["ips"]]  # fmt: skip
    return {
        "interfaces": prev["interfaces"] + mine["interfaces"],
        "ips": prev["ips"] + ips,
        "routes": prev["routes"] + mine["routes"],
        "dns": mine["dns"] or prev["dns"],
    }


def sandbox_addresses(result: dict, ifname: str) -> list[tuple[str, int, str | None]]:
    """(address, prefixlen, gateway) of each IPv4 ips entry of the interface `ifname` inside the
    sandbox; what CHECK and DEL read from a prevResult. Malformed entries raise CniError 7."""
    from minirt.net import inet

    ifaces = result["interfaces"]
    out = []
    for ip in result["ips"]:
        idx = ip.get("interface")
        if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(ifaces):
            iface = ifaces[idx]
            if iface.get("name") != ifname or not iface.get("sandbox"):
                continue
        elif idx is not None:
            raise CniError(INVALID_CONFIG, f"prevResult: ips entry {_show(ip)} names no interface of interfaces")
        try:
            p = inet.prefix(str(ip.get("address")), strict=False, bare=False)
        except ValueError:
            raise CniError(INVALID_CONFIG, f"prevResult: {_show(ip.get('address'))} is not an address/prefix") from None
        if p.version == inet.V4:
            address = str(ip["address"]).partition("/")[0]
            out.append((address, p.plen, ip.get("gateway")))
    return out
