"""Bring `lo` up in the current network namespace with one ioctl, no netlink library.

Runs in: the container init, inside its new netns (`--net none`). pyroute2 costs ~150 ms to
import; SIOCSIFFLAGS on a throwaway socket costs microseconds (what `ip link set lo up` does
via netlink, and bubblewrap's loopback_setup via raw rtnetlink).
"""

import fcntl
import socket
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def up(ifname: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", ifname.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(), flags | IFF_UP))
