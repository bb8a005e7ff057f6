"""Bring `lo` up in the current network namespace with one ioctl, no netlink library.

Runs in: the container init, inside its new netns (`--net none` and bridge; not `host` or
`container:`, whose netns is not ours). pyroute2 costs ~150 ms to
import; SIOCSIFFLAGS on a throwaway socket costs microseconds (what `ip link set lo up` does
via netlink, and bubblewrap's loopback_setup via raw rtnetlink).
"""

import _socket  # not socket: see process/sync.py
import fcntl
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sH14x"  # struct ifreq: name, then ifr_flags in the union


def up(ifname: str = "lo") -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack(_IFREQ, ifname.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack(_IFREQ, ifname.encode(), flags | IFF_UP))
    finally:
        s.close()
