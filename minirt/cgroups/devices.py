"""The devices cgroup's rules: which device nodes a container may create (m), read (r), write (w).

Pure and version-independent: rules() turns a config into an ordered list of
(allow, type, major, minor, access); the v1 driver writes them to devices.deny/devices.allow
(v1_writes), and a v2 BPF device program would evaluate the same list (v2 has no devices files:
runc attaches a BPF_PROG_TYPE_CGROUP_DEVICE program compiled from these rules; minirt does not
load one yet, see docs/security.md).

The default list is what Docker 20.10 ends up with on runc 1.1:
- moby oci/defaults.go DefaultLinuxSpec: deny everything, then allow c 1:5 zero, 1:3 null,
  1:9 urandom, 1:8 random, 5:0 tty, 5:1 console (rwm each);
- then the --device rules (moby daemon/oci_linux.go WithDevices);
- then runc's AllowedDevices (libcontainer/specconv/spec_linux.go), appended to every
  container's rules: mknod of any char and block device (`c *:* m`, `b *:* m`: creating a node
  is harmless, opening it is what the rules guard), 1:3, 1:8, 1:7 full, 5:0, 1:5, 1:9,
  136:* (pts), 5:2 (ptmx), 10:200 (tun).
Older moby also listed a deny of c 10:229 (fuse); after deny-all it changes nothing.
--privileged is moby's single `a *:* rwm` allow.
"""

WILDCARD = -1

DOCKER_DEFAULT = (
    (False, "a", WILDCARD, WILDCARD, "rwm"),
    (True, "c", 1, 5, "rwm"),
    (True, "c", 1, 3, "rwm"),
    (True, "c", 1, 9, "rwm"),
    (True, "c", 1, 8, "rwm"),
    (True, "c", 5, 0, "rwm"),
    (True, "c", 5, 1, "rwm"),
)
RUNC_ALLOWED = (
    (True, "c", WILDCARD, WILDCARD, "m"),
    (True, "b", WILDCARD, WILDCARD, "m"),
    (True, "c", 1, 3, "rwm"),
    (True, "c", 1, 8, "rwm"),
    (True, "c", 1, 7, "rwm"),
    (True, "c", 5, 0, "rwm"),
    (True, "c", 1, 5, "rwm"),
    (True, "c", 1, 9, "rwm"),
    (True, "c", 136, WILDCARD, "rwm"),
    (True, "c", 5, 2, "rwm"),
    (True, "c", 10, 200, "rwm"),
)
PRIVILEGED = ((True, "a", WILDCARD, WILDCARD, "rwm"),)


def rules(privileged: bool, devices: list[dict] | None) -> list[tuple]:
    """The ordered rule list for a container (`devices` as secopts.device_info returns them)."""
    if privileged:
        return list(PRIVILEGED)
    added = [(True, d["type"], d["major"], d["minor"], d["permissions"]) for d in devices or []]
    return list(DOCKER_DEFAULT) + added + list(RUNC_ALLOWED)


def _num(n: int) -> str:
    return "*" if n == WILDCARD else str(n)


def rule_text(rule: tuple) -> str:
    """The v1 file syntax (Documentation/admin-guide/cgroup-v1/devices.rst): `c 1:3 rwm`, or `a`."""
    _allow, kind, major, minor, access = rule
    if kind == "a":
        return "a"  # the kernel takes "a" alone for all types, all numbers, all access
    return f"{kind} {_num(major)}:{_num(minor)} {access}"


def v1_writes(rule_list: list[tuple]) -> list[tuple[str, str]]:
    """[(file, line)]: each rule to devices.allow or devices.deny, in order. A deny of "a" first
    switches the cgroup to default-deny and empties its exceptions, so only what follows is
    allowed (runc's fs/devices.go does the same on a fresh cgroup)."""
    return [("devices.allow" if r[0] else "devices.deny", rule_text(r)) for r in rule_list]
