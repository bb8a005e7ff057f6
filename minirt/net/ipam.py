"""IPv4 (and IPv6) address management: a pure round-robin allocator and one lease file per address.

Dual-stack networks keep their IPv6 leases the same way in a second directory, leases6/
(names in canonical compressed form, e.g. leases6/fd00:77::2), allocated together with the
IPv4 lease under the same network lock (allocate6) and released with it (release_owner).

Runs in: host, minirt parent (on the container start-up path, so cheap imports only: no
ipaddress, no json: addresses are ints from net/inet.py).

    <network dir>/                    $MINIRT_ROOT/networks/<name>/
      lock                            flock(LOCK_EX) while allocate() or release_owner() runs
      leases/
        <ip>                          one lease per address, e.g. leases/10.88.0.2, holding its
                                      owner {"container": id, "pid": p, "start_time": t}
        last_reserved                 the address allocate() handed out last (round-robin start)
        .<ip>.<pid>.tmp               a lease being written, link()ed to <ip> once complete

This is CNI host-local's disk store (plugins/ipam/host-local/backend/disk/backend.go: a file per
address created exclusively, a directory lock, last_reserved_ip), made safe for owners that die
without releasing:

- A lease appears complete or not at all. Its content goes to a temporary file (created
  O_CREAT|O_EXCL|O_WRONLY), which is then link()ed to <ip>; link() fails with EEXIST as O_EXCL
  does, so the reservation is atomic, and no reader ever sees an empty or half-written owner
  (CNI creates <ip> with O_EXCL and writes after; that only works if nobody reclaims: to us an
  empty lease would look stale).
- A lease names its owner by pid + start time (procfs.is_alive, runc's check). minirt killed
  with -9 leaves its lease behind; once that process is gone the lease is stale, and the next
  reserve() of the address reclaims it.
- Every removal of <ip> (reclaim or release) holds flock on that very file and first checks
  that <ip> still names it (same inode). Two allocators that find the same stale lease both try:
  the first removes it and links its own lease; the second, once it gets the lock, sees that
  <ip> is no longer the file it locked, looks again and finds a live owner. (Renaming the stale
  file away is not enough: the loser would rename away the winner's fresh lease.)
- allocate() and release_owner() also hold the network's lock, so allocators take turns and
  last_reserved stays consistent; the per-file protocol keeps LeaseStore safe without it.
- A crash between link() and the unlink of the temporary file leaves only that file behind;
  release_owner() sweeps the ones of dead processes.

--explain prints `# ipam: lease ADDRESS in network NAME` for each address leased and
`# ipam: release ...` for each released (comments: a lease is a file of minirt's, not a command).
A dry run (explain.dry) peeks: it finds the address allocate() would lease (the same walk,
under the same lock when the network has one) and writes nothing, not even last_reserved.

Be aware: leases are not fsynced (they live on /run, a tmpfs that a reboot empties anyway), and
link() needs a filesystem with hard links (tmpfs and ext4 have them).
"""

import fcntl
import os

from minirt import explain, jsonenc, procfs
from minirt.errors import ConflictError
from minirt.net import inet

LAST = "last_reserved"
_ATTEMPTS = 8  # reclaim/re-check rounds per address; two suffice unless leases churn under us


def _ip6_to_int(ip: str) -> int:
    """IPv6 (canonical, compressed lower-case form only: one lease file name per address)."""
    return inet.parse6(ip, canonical6=True)


def _any_to_int(ip: str) -> int:
    return inet.parse(ip, canonical6=True)[1]


def mac_for(ip: str) -> str:
    """Docker's scheme: 02:42 + the 4 address bytes (locally administered, stable per address)."""
    n = inet.parse4(ip)
    return "02:42:" + ":".join(f"{n >> shift & 255:02x}" for shift in (24, 16, 8, 0))


class Allocator:
    """The usable host addresses of an IPv4 subnet, in round-robin order (pure, no I/O).
    Allocator6 is the same walk over IPv6 integers; only the bounds and conversions differ."""

    _to_int = staticmethod(inet.parse4)  # canonical only: "010.0.0.2" would name a second lease file
    _to_ip = staticmethod(inet.format4)

    def __init__(self, subnet: str, reserved: set[str]):
        self.first, self.last = self._bounds(subnet)
        self.reserved = {self._to_int(r) for r in reserved}

    @staticmethod
    def _bounds(subnet: str) -> tuple[int, int]:
        net, _, plen = subnet.partition("/")
        if not plen.isdigit() or int(plen) > 32:
            raise ValueError(f"not an IPv4 subnet: {subnet!r}")
        size = 1 << (32 - int(plen))
        base = inet.parse4(net) & ~(size - 1) & 0xFFFFFFFF
        # not the network address, nor the broadcast address; /31 and /32 have no hosts
        return base + 1, base + size - 2

    def usable(self, addr: str) -> bool:
        """addr is a host address of the subnet and not reserved (the gateway)."""
        try:
            n = self._to_int(addr)
        except ValueError:
            return False
        return self.first <= n <= self.last and n not in self.reserved

    def next_candidates(self, last: str | None):
        """Every usable address once, starting after `last` and wrapping round; from the first
        host when `last` is None or not a host of this subnet (a record of another subnet).
        Lazy: a /64 is never walked in full, the first free address ends the walk.

        Round-robin as CNI host-local (allocator.go): "a crash-looping container will not see
        the same IP until the entire range has been run through", so a peer that still holds
        the old address in its ARP cache or conntrack does not reach the new container."""
        count = self.last - self.first + 1
        start = self.first
        if last is not None:
            try:
                n = self._to_int(last)
            except ValueError:
                n = -1
            if self.first <= n <= self.last:
                start = n + 1
        for i in range(count):
            a = self.first + (start - self.first + i) % count
            if a not in self.reserved:
                yield self._to_ip(a)


def owner_alive(owner: dict) -> bool:
    """The lease's owner still runs; a malformed owner is stale.

    A CNI attachment's lease ({"container", "ifname", "via": "cni"}, minirt/cni) has no owner
    process: it lives from ADD to DEL or GC, as CNI host-local's leases do, so it never looks
    stale here (neither to reserve() nor to `minirt gc`)."""
    if owner.get("via") == "cni":
        return True
    pid, started = owner.get("pid"), owner.get("start_time")
    return type(pid) is int and type(started) is int and procfs.is_alive(pid, started)


def _parse_owner(data: bytes) -> dict:
    try:
        owner = jsonenc.loads(data.decode())
    except (ValueError, UnicodeDecodeError):
        return {}  # damaged: no owner can be named, so it is stale
    return owner if isinstance(owner, dict) else {}


class Allocator6(Allocator):
    """The usable addresses of an IPv6 subnet (no broadcast: every address after the
    subnet-router anycast one, up to the last), in the same round-robin order."""

    _to_int = staticmethod(_ip6_to_int)
    _to_ip = staticmethod(inet.format6)

    @staticmethod
    def _bounds(subnet: str) -> tuple[int, int]:
        net, _, plen = subnet.partition("/")
        if not plen.isdigit() or not 64 <= int(plen) <= 126:
            raise ValueError(f"not an IPv6 subnet of /64../126: {subnet!r}")
        size = 1 << (128 - int(plen))
        base = _ip6_to_int(net) & ~(size - 1)
        return base + 1, base + size - 1


class LeaseStore:
    """One lease file per address in `directory` (see the module docstring for the protocol)."""

    def __init__(self, directory: str):
        self.dir = directory

    def _path(self, addr: str) -> str:
        _any_to_int(addr)  # a name like "../x" never reaches the filesystem
        return f"{self.dir}/{addr}"

    def owner_of(self, addr: str) -> dict | None:
        """The lease's owner; None when free, {} when the lease is damaged (stale)."""
        try:
            with open(self._path(addr), "rb") as f:
                return _parse_owner(f.read())
        except FileNotFoundError:
            return None

    def reserve(self, addr: str, owner: dict) -> bool:
        """Lease addr to owner atomically; False when a live owner holds it. A stale lease (its
        owner's pid + start time no longer run) is reclaimed."""
        path = self._path(addr)
        held = self.owner_of(addr)
        if held is not None and owner_alive(held):
            return False  # the common "taken" answer, without writing anything
        tmp = self._write_tmp(addr, jsonenc.dumps(owner).encode())
        try:
            for _ in range(_ATTEMPTS):
                try:
                    os.link(tmp, path)
                    return True
                except FileExistsError:
                    pass
                if self._remove_if(addr, lambda o: not owner_alive(o)) is False:
                    return False  # a live owner holds it (possibly one that just won the race)
            return False
        finally:
            os.unlink(tmp)

    def _write_tmp(self, addr: str, data: bytes) -> str:
        tmp = f"{self.dir}/.{addr}.{os.getpid()}.tmp"
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:  # left by a crashed process that had our pid
            os.unlink(tmp)
            fd = os.open(tmp, flags, 0o600)
        try:
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _remove_if(self, addr: str, should_remove) -> bool | None:
        """Remove the lease of addr if should_remove(owner). True: removed; False: kept; None:
        there was no lease, or it was replaced while we waited for its lock (look again)."""
        path = self._path(addr)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # whoever removes <ip> holds this: one at a time
            try:
                now = os.stat(path)
            except FileNotFoundError:
                return None
            locked = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (locked.st_dev, locked.st_ino):
                return None
            if not should_remove(_parse_owner(os.read(fd, 1 << 16))):
                return False
            os.unlink(path)
            return True
        finally:
            os.close(fd)

    def release(self, addr: str, container_id: str, ifname: str | None = None) -> bool:
        """Remove addr's lease if container_id owns it (with ifname: that attachment of it, the
        CNI key); idempotent. True if it was removed."""
        for _ in range(_ATTEMPTS):
            removed = self._remove_if(addr, lambda o: _owned(o, container_id, ifname))
            if removed is not None:
                return removed
            if self.owner_of(addr) is None:
                return False
        return False

    def release_owner(self, container_id: str, ifname: str | None = None) -> list[str]:
        """Remove every lease of container_id (with ifname: of that attachment only); idempotent.
        Returns the addresses released."""
        mine = [a for a, o in self.leases().items() if _owned(o, container_id, ifname)]
        return [a for a in mine if self.release(a, container_id, ifname)]

    def leases(self) -> dict[str, dict]:
        """address -> owner, live or stale."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return {}
        out = {}
        for name in names:
            if name[:1].isdigit() or ":" in name:  # v4, or v6 (leases6/)
                owner = self.owner_of(name)
                if owner is not None:
                    out[name] = owner
        return out

    def sweep_tmp(self) -> None:
        """Remove temporary files of processes that are gone (crashed between write and link)."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            stem, _, pid = name.removesuffix(".tmp").rpartition(".")
            if name.startswith(".") and name.endswith(".tmp") and stem and pid.isdigit():
                if procfs.start_time(int(pid)) is None:
                    try:
                        os.unlink(f"{self.dir}/{name}")
                    except FileNotFoundError:
                        pass

    def last_reserved(self) -> str | None:
        try:
            with open(f"{self.dir}/{LAST}") as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def set_last_reserved(self, addr: str) -> None:
        """Atomic (temp + rename): readers see the old address or the new one."""
        tmp = f"{self.dir}/.{LAST}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, addr.encode())
        finally:
            os.close(fd)
        os.replace(tmp, f"{self.dir}/{LAST}")


def _owned(owner: dict, container_id: str, ifname: str | None) -> bool:
    return owner.get("container") == container_id and (ifname is None or owner.get("ifname") == ifname)


def _lock(network_dir: str, create: bool) -> int | None:
    """flock(LOCK_EX) on network_dir/lock; the fd, or None if the network is gone and not
    create (closing the fd unlocks)."""
    if create:
        os.makedirs(f"{network_dir}/leases", mode=0o700, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    else:
        flags = os.O_RDWR | os.O_CLOEXEC
    try:
        fd = os.open(f"{network_dir}/lock", flags, 0o600)
    except FileNotFoundError:
        if create:
            raise
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def allocate(network_dir: str, subnet: str, gateway: str, owner: dict, prefer: str | None = None) -> str:
    """Lease a free address of subnet to owner ({"container", "pid", "start_time"}) and return
    it: `prefer` (a restarting container's previous address) when it is still free, otherwise
    the first free one after last_reserved. Under the network's lock."""
    fd = _lock(network_dir, create=not explain.dry)
    try:
        address = _allocate_in(LeaseStore(f"{network_dir}/leases"), Allocator(subnet, {gateway}), subnet, owner, prefer)
    finally:
        if fd is not None:
            os.close(fd)
    _explain_lease(network_dir, address)
    return address


def _explain_lease(network_dir: str, address: str, what: str = "lease") -> None:
    if explain.enabled:
        explain.cmd(f"# ipam: {what} {address} in network {os.path.basename(network_dir)}")


def allocate6(network_dir: str, subnet: str, gateway: str, subnet6: str, gateway6: str, owner: dict,
              prefer: str | None = None, prefer6: str | None = None) -> tuple[str, str]:  # fmt: skip
    """Dual-stack networks: an IPv4 and an IPv6 address (leases6/) for owner, under one hold
    of the network's lock; the v4 lease is undone if no v6 address is free."""
    fd = _lock(network_dir, create=not explain.dry)
    try:
        if not explain.dry:
            os.makedirs(f"{network_dir}/leases6", mode=0o700, exist_ok=True)
        address = _allocate_in(LeaseStore(f"{network_dir}/leases"), Allocator(subnet, {gateway}), subnet, owner, prefer)
        try:
            store6 = LeaseStore(f"{network_dir}/leases6")
            address6 = _allocate_in(store6, Allocator6(subnet6, {gateway6}), subnet6, owner, prefer6)
        except BaseException:
            if not explain.dry:
                LeaseStore(f"{network_dir}/leases").release(address, owner["container"])
            raise
    finally:
        if fd is not None:
            os.close(fd)
    _explain_lease(network_dir, address)
    _explain_lease(network_dir, address6)
    return address, address6


def _allocate_in(store: LeaseStore, alloc: Allocator, subnet: str, owner: dict, prefer: str | None) -> str:
    reserve = _free if explain.dry else LeaseStore.reserve  # a dry run peeks: the same walk, no write
    if prefer and alloc.usable(prefer) and reserve(store, prefer, owner):
        return prefer
    for addr in alloc.next_candidates(store.last_reserved()):
        if reserve(store, addr, owner):
            if not explain.dry:
                store.set_last_reserved(addr)
            return addr
    raise ConflictError(
        f"no free address in {subnet} (every address is leased to a running container; "
        "remove one, or use a network with a larger subnet)"
    )


def _free(store: LeaseStore, addr: str, _owner: dict) -> bool:
    """What reserve() would answer, without reserving: free, or held by a stale owner."""
    held = store.owner_of(addr)
    return held is None or not owner_alive(held)


def release_owner(network_dir: str, container_id: str, ifname: str | None = None) -> list[str]:
    """Drop every lease of container_id in this network (IPv4 leases/ and IPv6 leases6/),
    under its lock; idempotent, and a network that is gone has nothing to release. With
    ifname, only the leases of that attachment (CNI keys leases by container ID and ifname).
    Returns the addresses released."""
    fd = _lock(network_dir, create=False)
    if fd is None:
        return []
    try:
        released = []
        for sub in ("leases", "leases6"):  # leases6: dual-stack networks only
            if sub == "leases" or os.path.isdir(f"{network_dir}/{sub}"):
                store = LeaseStore(f"{network_dir}/{sub}")
                if explain.dry:
                    released += [a for a, o in store.leases().items() if _owned(o, container_id, ifname)]
                    continue
                released += store.release_owner(container_id, ifname)
                store.sweep_tmp()
    finally:
        os.close(fd)
    for address in released:
        _explain_lease(network_dir, address, "release")
    return released
