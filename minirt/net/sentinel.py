"""A watchdog that detaches a container from its network if minirt itself dies.

Runs in: a small process forked from minirt after the network is known and before anything is
allocated in it. It blocks on a pipe whose only write end minirt holds (close-on-exec, so the
container never has it). minirt writes "d" (done) once it has torn down or rolled back
itself; EOF without "d" means minirt was killed (kill -9, OOM), and the sentinel does the
teardown from what it knows: the container id, the network, the host veth name. Every step is
idempotent, so racing the kernel's own veth removal is harmless. This is sshuttle's firewall
helper idea (undo on stdin EOF); the container itself dies through PR_SET_PDEATHSIG.
"""

import os

from minirt import explain


def start(network_dir: str, cid: str, host_ifname: str, ports: list | None = None) -> int:
    """Fork the sentinel; returns the write end to pass to dismiss()."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(w)
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):  # hold no one's terminal, log pipe or report pipe open
                os.dup2(devnull, fd)
            os.closerange(3, r)
            os.closerange(r + 1, 1 << 16)
            os.setsid()  # out of minirt's process group: the terminal's ^C is not for us
            explain.enabled = False
            if os.read(r, 1) != b"d":
                from minirt.net import ipam
                from minirt.net.netlink import Rtnl

                leases = ipam.LeaseStore(f"{network_dir}/leases").leases()
                address = next((a for a, o in leases.items() if o.get("container") == cid), None)
                leases6 = ipam.LeaseStore(f"{network_dir}/leases6").leases()  # dual-stack only
                address6 = next((a for a, o in leases6.items() if o.get("container") == cid), None)
                try:
                    if ports and address:
                        from minirt.net.firewall import ports as fwports

                        fwports.unpublish(ports, address, address6)
                    Rtnl.host().delete_link(host_ifname)
                finally:
                    ipam.release_owner(network_dir, cid)
        except BaseException:  # noqa: BLE001 - a watchdog never returns into minirt's code
            code = 1
        finally:
            os._exit(code)
    os.close(r)
    return w


def dismiss(w: int) -> None:
    """minirt has cleaned up itself: let the sentinel exit without doing anything."""
    try:
        os.write(w, b"d")
    except OSError:
        pass
    os.close(w)
