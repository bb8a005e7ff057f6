"""IPv4 address management: a pure round-robin allocator and one lease file per address.

Runs in: the minirt parent, host, on the container start-up path (cheap imports only).

    <network dir>/
      lock                    flock held while allocating or releasing
      leases/<ip>             created O_CREAT|O_EXCL; {"container": id, "pid": p, "start_time": t}
      leases/last_reserved    the last address handed out (round-robin start)

CNI host-local's design (plugins/ipam/host-local/backend/disk): the O_EXCL create makes a
reservation atomic, the lock serialises allocators, and allocation is round-robin so that "a
crash-looping container will not see the same IP until the entire range has been run
through" (allocator.go). Crash safety: a lease names its owner by pid + start time; when that
process is gone (minirt killed with -9, a reboot of the state dir aside) the lease is stale and
the next allocation reclaims it, under the lock.
"""

import fcntl
import os

from minirt import jsonenc, procfs
from minirt.errors import ConflictError

LAST = "last_reserved"


def _ip_to_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return a << 24 | b << 16 | c << 8 | d


def _int_to_ip(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def mac_for(ip: str) -> str:
    """Docker's scheme: 02:42 + the IPv4 address (locally administered, stable per address)."""
    return "02:42:" + ":".join(f"{int(x):02x}" for x in ip.split("."))


class Allocator:
    """Usable host addresses of a subnet, in round-robin order (pure)."""

    def __init__(self, subnet: str, reserved: set[str]):
        net, plen = subnet.split("/")
        size = 1 << (32 - int(plen))
        self.first = (_ip_to_int(net) & ~(size - 1) & 0xFFFFFFFF) + 1
        self.last = self.first + size - 3  # skip network and broadcast
        self.reserved = {_ip_to_int(r) for r in reserved}

    def next_candidates(self, last: str | None):
        n = self.last - self.first + 1
        start = self.first
        if last is not None:
            li = _ip_to_int(last)
            if self.first <= li <= self.last:
                start = li + 1 if li < self.last else self.first
        for i in range(n):
            a = self.first + (start - self.first + i) % n
            if a not in self.reserved:
                yield _int_to_ip(a)


class LeaseStore:
    def __init__(self, directory: str):
        self.dir = directory

    def owner_of(self, addr: str) -> dict | None:
        try:
            with open(f"{self.dir}/{addr}") as f:
                return jsonenc.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            return {}  # half-written by a crashed allocator: treated as stale

    def reserve(self, addr: str, owner: dict) -> bool:
        """Atomic; False if a live owner holds addr. Call under the network lock (allocate())."""
        path = f"{self.dir}/{addr}"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                held = self.owner_of(addr)
                if held is None:
                    continue  # released meanwhile
                if procfs.is_alive(held.get("pid", 0), held.get("start_time")):
                    return False
                try:
                    os.unlink(path)  # stale: the owner died without releasing
                except FileNotFoundError:
                    pass
                continue
            try:
                os.write(fd, jsonenc.dumps(owner).encode())
            finally:
                os.close(fd)
            return True
        return False

    def release(self, addr: str, container_id: str) -> None:
        held = self.owner_of(addr)
        if held is not None and held.get("container") == container_id:
            try:
                os.unlink(f"{self.dir}/{addr}")
            except FileNotFoundError:
                pass

    def leases(self) -> dict[str, dict]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return {}
        out = {}
        for name in names:
            if name[0].isdigit():
                owner = self.owner_of(name)
                if owner is not None:
                    out[name] = owner
        return out

    def release_owner(self, container_id: str) -> None:
        for addr, owner in self.leases().items():
            if owner.get("container") == container_id:
                self.release(addr, container_id)

    def last_reserved(self) -> str | None:
        try:
            with open(f"{self.dir}/{LAST}") as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def set_last_reserved(self, addr: str) -> None:
        tmp = f"{self.dir}/.{LAST}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(addr)
        os.replace(tmp, f"{self.dir}/{LAST}")


def _locked(network_dir: str) -> int:
    os.makedirs(f"{network_dir}/leases", mode=0o700, exist_ok=True)
    fd = os.open(f"{network_dir}/lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def allocate(network_dir: str, subnet: str, gateway: str, owner: dict, prefer: str | None = None) -> str:
    """A free address; `prefer` (a restarted container's old one) first when it is still free."""
    fd = _locked(network_dir)
    try:
        store = LeaseStore(f"{network_dir}/leases")
        alloc = Allocator(subnet, {gateway})
        if prefer and prefer != gateway and alloc.first <= _ip_to_int(prefer) <= alloc.last:
            if store.reserve(prefer, owner):
                return prefer
        for addr in alloc.next_candidates(store.last_reserved()):
            if store.reserve(addr, owner):
                store.set_last_reserved(addr)
                return addr
        raise ConflictError(f"no free address in {subnet} (every address is leased to a running container)")
    finally:
        os.close(fd)


def release_owner(network_dir: str, container_id: str) -> None:
    """Idempotent: drop every lease of container_id in this network."""
    if not os.path.isdir(f"{network_dir}/leases"):
        return
    fd = _locked(network_dir)
    try:
        LeaseStore(f"{network_dir}/leases").release_owner(container_id)
    finally:
        os.close(fd)
