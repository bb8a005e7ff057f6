"""minirt trace [CONTAINER | --port [IP:]PORT[/proto] | --network NET] [--count N] [--timeout S] [--json]:
follow real packets through every table's rules, with NAT and the verdict that decided.

Runs in: the host network namespace, for as long as the trace runs. The trace chains are
removed on every way out: the end of --count/--timeout, Ctrl-C, SIGTERM/SIGHUP, an error; after
a kill -9, `minirt gc` removes them (minirt/trace/session.py). See docs/trace.md.
"""

import os
import signal
import sys
import time

from minirt.cliparse import FLAG, VALUE, Option, parse
from minirt.errors import ConfigError, MinirtError

PROG = "minirt trace [CONTAINER | --port [IP:]PORT[/proto] | --network NET] [OPTIONS]"
OPTIONS = [
    Option(("--port",), VALUE, "packets to this published host port, and their replies", "[IP:]PORT[/proto]"),
    Option(("--network",), VALUE, "packets from, to or through this network", "NET"),
    Option(("-c", "--count"), VALUE, "stop after N packets", "N"),
    Option(("--timeout",), VALUE, "stop after S seconds", "S"),
    Option(("--json",), FLAG, "one JSON object per packet"),
    Option(("--explain",), FLAG, "print the nft commands that add and remove the trace rules"),
]


class _Stop(Exception):
    """SIGTERM or SIGHUP: end the trace the way Ctrl-C does."""


def _number(value, flag: str, cast):
    if value is None:
        return None
    try:
        n = cast(value)
    except ValueError:
        n = -1
    if n <= 0:
        raise ConfigError(f"trace {flag} {value!r}: expected a positive number")
    return n


def main(args: list[str]) -> int:
    from minirt import explain
    from minirt.state import root_dir

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog=PROG)
    explain.enabled = opts["explain"]
    count = _number(opts["count"], "--count", int)
    timeout = _number(opts["timeout"], "--timeout", float)
    chosen = [x for x in (refs and refs[0], opts["port"], opts["network"]) if x]
    if len(refs) > 1 or len(chosen) > 1:
        raise ConfigError("trace: give one container, or --port, or --network (or nothing: every network)")
    root = root_dir()
    label, matches = _select(root, refs[0] if refs else None, opts["port"], opts["network"])
    t = _Trace(root, _nft_binary(), opts["json"], count)

    def stop(_sig, _frame):
        raise _Stop()

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            t.start(matches, label)
            t.follow(time.monotonic() + timeout if timeout else None)
        except (KeyboardInterrupt, _Stop):
            pass
        t.drain()
    except (KeyboardInterrupt, _Stop):  # a second one while the last packets were printed
        pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        t.close()
    sys.stderr.write(f"minirt: {t.n} packet(s) traced; trace rules removed\n")
    return 0


class _Trace:
    """One trace: the nft child, the trace chains, the packets printed so far."""

    def __init__(self, root: str, nft: str, as_json: bool, count) -> None:
        self.root, self.nft, self.as_json, self.count = root, nft, as_json, count
        self.mon = self.asm = None
        self.own: set = set()
        self.installed = False
        self.n = 0
        # MINIRT_TRACE_RAW=FILE: nft's own lines too, for a bug report (and the parser's test data)
        path = os.environ.get("MINIRT_TRACE_RAW")
        self.raw = open(path, "a") if path else None

    def start(self, matches, label: str) -> None:
        """The listener first, then the rules: no selected packet goes unreported."""
        from minirt.trace import monitor, rules, session

        self.mon = monitor.Monitor(self.nft)
        if not self.mon.wait_ready():
            raise MinirtError(f"trace: `nft monitor trace` did not start: {self.mon.error() or 'no reason given'}")
        self.installed = True  # removal is idempotent: set first, so no interrupt can skip it
        session.install(self.root, matches, label)
        self.own = own = set(rules.chain_names(os.getpid()))
        hooks = _Hooks()
        self.asm = monitor.Assembler(hooks, lambda ev: ev.family == "inet" and ev.table == "minirt" and ev.chain in own,
                                     _Resolver())  # fmt: skip
        for (family, table, chain), (hook, prio) in sorted(hooks.known.items()):
            if hook in ("prerouting", "output") and isinstance(prio, int) and prio < rules.PRIORITY:
                sys.stderr.write(f"minirt: note: {family} {table} {chain} ({hook}, priority {prio}) runs "
                                 "before the trace rule: its verdicts are not shown\n")  # fmt: skip
        sys.stderr.write(f"minirt: tracing {label} (Ctrl-C to stop)\n")
        sys.stderr.flush()

    def follow(self, deadline) -> None:
        """Read, assemble and print until --count packets, the deadline, or a signal."""
        from minirt.trace import monitor

        while not self.enough():
            wait = monitor.QUIET / 2
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            lines = self.mon.read(wait)
            if lines is None:
                raise MinirtError(f"trace: `nft monitor trace` ended: {self.mon.error() or 'no reason given'}")
            if self.raw is not None:
                self.raw.write("".join(line + "\n" for line in lines))
                self.raw.flush()
            done = []
            for line in lines:
                ev = monitor.parse_line(line)
                if ev is not None:
                    done += self.asm.feed(ev)
            self.emit(done + self.asm.expire())

    def enough(self) -> bool:
        return self.count is not None and self.n >= self.count

    def drain(self) -> None:
        """The packets still open at the end."""
        if self.asm is not None and not self.enough():
            self.emit(self.asm.drain())

    def emit(self, packets) -> None:
        self.n = _emit(packets, self.own, self.as_json, self.n, self.count)

    def close(self) -> None:
        """Stop nft, remove the rules and the state file; signals cannot interrupt it."""
        from minirt.trace import session

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the removal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if self.raw is not None:
                self.raw.close()
            if self.mon is not None:
                self.mon.stop()
            if self.installed:
                session.remove(self.root, os.getpid())
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _emit(packets, own: set, as_json: bool, n: int, count) -> int:
    from minirt.trace import render

    for pkt in packets:
        if count is not None and n >= count:
            break
        if not pkt.hops or pkt.hops[0]["chain"] not in own:
            continue  # traced by someone else's rule (another trace, a user's nftrace): not ours
        rec = pkt.to_dict(_is_trace_hop)
        if not rec["hops"]:
            continue
        _fill_masquerade(rec)
        n += 1
        sys.stdout.write(render.json_line(rec) + "\n" if as_json else render.text(rec, n) + "\n\n")
        sys.stdout.flush()
    return n


def _is_trace_hop(h: dict) -> bool:
    from minirt.trace import rules

    return h["family"] == "inet" and h["table"] == "minirt" and rules.is_trace_chain(h["chain"])


def _fill_masquerade(rec: dict) -> None:
    """A masquerade's new source is the outgoing interface's address (nft_masq: the address the
    route to the destination would choose, the interface's primary one in practice)."""
    for nat in rec["nat"]:
        if nat["kind"] == "masquerade" and not nat.get("after") and nat.get("oif"):
            nat["after"] = _ifaddr(nat["oif"])
            nat["after_note"] = f"address of {nat['oif']}"


def _ifaddr(ifname: str) -> str | None:
    import _socket
    import fcntl
    import struct

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        data = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", ifname.encode()[:15]))  # SIOCGIFADDR
        return ".".join(str(b) for b in data[20:24])
    except OSError:
        return None
    finally:
        s.close()


def _nft_binary() -> str:
    import shutil

    nft = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None)
    if not nft:
        raise MinirtError("trace: needs the `nft` command to read trace events (apt install nftables)")
    return nft


def _select(root: str, container, port, network):
    """(label, matches) of the selection."""
    from minirt.trace import selection

    if container:
        from minirt import teardown
        from minirt.state import Store

        store = Store(root)
        cid = store.resolve(container)
        rec = store.load(cid)
        name = rec.get("name") or container
        return f"container {name}", selection.for_container(name, rec, teardown.plan_of(rec))
    published = _published()
    if port:
        return f"port {port}", selection.for_port(port, published)
    from minirt.net import netrecord

    if network:
        return f"network {network}", selection.for_network(netrecord.load_existing(root, network), published)
    nets = netrecord.list_networks(root)
    if not nets:
        raise ConfigError("trace: no networks yet; name a container, --port or --network")
    matches = []
    for net in nets:
        matches += selection.for_network(net, published)
    return f"networks {', '.join(n.name for n in nets)}", selection._unique(matches)


def _published() -> dict:
    from minirt.net.firewall import ports

    return ports.listed()


class _Hooks:
    """{(family, table, chain): (hook, priority)} of the base chains, listed again when an
    event names a chain not seen yet (one added after the trace started)."""

    def __init__(self) -> None:
        self.known: dict = {}
        self.tried: set = set()
        self._load()

    def _load(self) -> None:
        import json

        from minirt.net.firewall.libnft import listing

        rc, out, _err = listing("list chains", json=True)
        if rc != 0 or not out:
            return
        for obj in json.loads(out).get("nftables", []):
            c = obj.get("chain")
            if c and c.get("hook"):
                self.known[(c["family"], c["table"], c["name"])] = (c["hook"], c.get("prio"))

    def get(self, key, default=None):
        if key not in self.known and key not in self.tried:
            self.tried.add(key)
            self._load()
        return self.known.get(key, default)


class _Resolver:
    """The text of a rule nft printed as `unknown rule handle N`: its cache predates the rule
    (nft 1.0.6 does not follow ruleset changes while it monitors). Looked up by handle."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def __call__(self, family, table, chain, handle):
        key = (family, table, chain, handle)
        if key not in self.cache:
            self.cache[key] = _rule_by_handle(family, table, chain, handle)
        return self.cache[key]


def _rule_by_handle(family, table, chain, handle):
    from minirt.net.firewall.libnft import listing

    rc, out, _err = listing(f"list chain {family} {table} {chain}", handles=True)
    if rc != 0:
        return None
    tail = f" # handle {handle}"
    for line in out.splitlines():
        if line.endswith(tail):
            return line[: -len(tail)].strip()
    return None
