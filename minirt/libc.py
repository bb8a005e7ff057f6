"""mount(2), umount2(2), pivot_root(2) and their flags (linux/mount.h).

Runs in: the container init. The calls come from the small C module minirt._syscalls
(ctypes costs ~4 ms to import; see _syscalls.c); failures raise OSError like the os module.
"""

from minirt._syscalls import mount as _mount
from minirt._syscalls import pivot_root, umount2

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2

__all__ = ["mount", "umount2", "pivot_root"]


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    _mount(source, target, fstype, flags, data)
