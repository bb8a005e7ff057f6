"""CNI attachment records: what ADD made for one (container ID, ifname), written down before it is made.

Runs in: minirt-cni (every verb) and `minirt gc` (which must not take a CNI attachment's port
elements for leftovers when minirt and minirt-cni share a state root). A leaf: state and
jsonenc only.

    <root>/networks/<name>/                  minirt's network record, lock and leases (net/network.py,
                                             net/ipam.py), shared with `minirt run` when the roots are
      cni/<containerID>:<ifname>.json        one record per attachment, the CNI key (SPEC.md: "An
                                             attachment may be uniquely identified by the
                                             (CNI_CONTAINERID, CNI_IFNAME) tuple"; ':' can be in
                                             neither, so two keys never share a file name)
          {"containerID", "ifname", "netns", "network", "host_ifname",
           "address", "mac",                 written once the address is leased
           "elements": [[map, key, value]]}  written before the elements are published

The record is claimed with link() of a complete temp file (atomic, like a lease: net/ipam.py), so
a second ADD of the same attachment is refused, and rewritten atomically (temp + rename) before
each later change, runc's "persist before the point of no return": a minirt-cni killed at any
instant leaves a record naming everything it may have made, for DEL or GC to undo. DEL removes
the record last, and only when every other step succeeded, so a failed DEL can be retried.

The host end of the veth is named from the key alone, `mc` + 12 hex of sha256(containerID NUL
ifname): DEL finds it without the container's netns, without prevResult and without the record;
`mc` keeps it apart from minirt's own `mr<id>` veths, which `minirt gc` reclaims.
"""

import os

from minirt import jsonenc
from minirt.state import atomic_write_json

VETH_PREFIX = "mc"


def host_ifname(container_id: str, ifname: str) -> str:
    """mc + 12 hex: 14 bytes, under IFNAMSIZ, the same for every verb of the attachment."""
    try:
        from _sha2 import sha256  # the builtin module: hashlib's OpenSSL import costs more
    except ImportError:  # pragma: no cover - interpreters built without it
        from hashlib import sha256
    return VETH_PREFIX + sha256(f"{container_id}\0{ifname}".encode()).hexdigest()[:12]


def is_host_ifname(name: str) -> bool:
    return len(name) == 14 and name.startswith(VETH_PREFIX) and all(c in "0123456789abcdef" for c in name[2:])


def _dir(net_dir: str) -> str:
    return f"{net_dir}/cni"


def _path(net_dir: str, container_id: str, ifname: str) -> str:
    return f"{_dir(net_dir)}/{container_id}:{ifname}.json"


def claim(net_dir: str, record: dict) -> bool:
    """Create the attachment's record; False if it exists (ADD twice without DEL)."""
    d = _dir(net_dir)
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = _path(net_dir, record["containerID"], record["ifname"])
    tmp = f"{d}/.claim.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (jsonenc.dumps(record) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def update(net_dir: str, record: dict) -> None:
    atomic_write_json(_path(net_dir, record["containerID"], record["ifname"]), record, durable=True)


def load(net_dir: str, container_id: str, ifname: str) -> dict | None:
    try:
        with open(_path(net_dir, container_id, ifname)) as f:
            rec = jsonenc.loads(f.read())
    except FileNotFoundError:
        return None
    except ValueError:  # damaged: still the attachment's, with only what its key says
        rec = {}
    return _complete(rec, container_id, ifname)


def _complete(rec, container_id: str, ifname: str) -> dict:
    if not isinstance(rec, dict):
        rec = {}
    rec.setdefault("containerID", container_id)
    rec.setdefault("ifname", ifname)
    rec.setdefault("host_ifname", host_ifname(container_id, ifname))
    return rec


def remove(net_dir: str, container_id: str, ifname: str) -> None:
    """Idempotent."""
    try:
        os.unlink(_path(net_dir, container_id, ifname))
    except FileNotFoundError:
        pass


def records(net_dir: str) -> list[dict]:
    """Every attachment record of the network (damaged ones with what their name says)."""
    try:
        names = sorted(os.listdir(_dir(net_dir)))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if name.startswith(".") or not name.endswith(".json") or ":" not in name:
            continue
        cid, _, ifname = name[: -len(".json")].rpartition(":")
        rec = load(net_dir, cid, ifname)
        if rec is not None:
            out.append(rec)
    return out


def claimed_elements(net_dir: str) -> dict[tuple[str, str], str]:
    """{(map, key): value} of the published elements the network's attachments record."""
    out = {}
    for rec in records(net_dir):
        for e in rec.get("elements") or []:
            if isinstance(e, list) and len(e) == 3:
                out[(e[0], e[1])] = e[2]
    return out
