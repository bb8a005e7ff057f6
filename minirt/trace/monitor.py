"""`nft monitor trace` as a child process, and its lines parsed into one record per packet.

Runs in: the `minirt trace` process, host network namespace (the kernel sends trace events only
to listeners in the packet's own network namespace).

Why the `nft` program, not pyroute2: pyroute2's nfnetlink code (0.9.x) has no parser for
NFT_MSG_TRACE messages, and a trace event names a rule only by its handle. Turning the handle
back into the rule's text, and the raw header bytes into `ip saddr ... tcp dport ...`, is
exactly what libnftables' own printer does (nftables src/trace.c); `nft monitor trace` is the
kernel-facing reference printer, so we read its text and parse that (one line per event, and
nft flushes each line, so a pipe sees them at once). Re-implementing the rule decoder would be
a second, weaker nft.

What nft 1.0.6 prints (recorded in tests/unit/data/trace_*.txt):

    trace id 9a3c41f2 inet minirt trace-77-pre packet: iif "wanh" ether saddr ... ip saddr
        198.51.100.2 ip daddr 198.51.100.1 ... tcp sport 40312 tcp dport 8080 tcp flags == syn ...
    trace id 9a3c41f2 inet minirt trace-77-pre rule ip daddr ... meta nftrace set 1 comment "..." (verdict continue)
    trace id 9a3c41f2 inet minirt trace-77-pre policy accept
    trace id 9a3c41f2 inet minirt prerouting packet: iif "wanh" ...       <- the next base chain
    trace id 9a3c41f2 inet minirt prerouting rule fib daddr type local jump ports (verdict jump ports)
    trace id 9a3c41f2 inet minirt ports rule dnat ip to ... (verdict accept)
    trace id 9a3c41f2 inet userfw forward rule ... drop comment "..." (verdict drop)
    trace id 9a3c41f2 inet t sub2 unknown rule handle 12 (verdict drop)   <- added after nft started

The kernel puts the packet's headers into the first event of each base chain it runs (nft_do_chain
-> nft_trace_init: packet_dumped is per chain run), so a `packet:` line opens a hop, and the
addresses of consecutive hops show what NAT changed in between. Only rules that matched produce
events; every base chain ends with a rule verdict or a `policy` event.

A trace id is a hash of the skb's address: two packets one after the other can share it. So a
packet record starts at a `packet:` line in one of our own trace chains (every traced packet
passes one first: it is what sets nftrace), and ends at a drop, or when its id has been quiet for
a moment (the kernel sends all of one packet's events within one softirq).
"""

import os
import re
import select
import signal
import subprocess
import time

_LINE = re.compile(r"trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$")
_VERDICT = re.compile(r"^(.*?) \(verdict ([^)]*)\)(.*)$")
_UNKNOWN = re.compile(r"^unknown rule handle (\d+)$")
_COMMENT = re.compile(r'comment "([^"]*)"')
NAT_WORDS = ("dnat", "snat", "masquerade", "redirect")
# packet fields we keep: (protocol word, field word); `iif`/`oif` are single words
_FIELDS = {("ip", "saddr"), ("ip", "daddr"), ("ip6", "saddr"), ("ip6", "daddr"), ("ip", "protocol"),
           ("ip6", "nexthdr"), ("tcp", "sport"), ("tcp", "dport"), ("udp", "sport"), ("udp", "dport"),
           ("tcp", "flags"), ("icmp", "type"), ("icmpv6", "type"), ("sctp", "sport"), ("sctp", "dport")}  # fmt: skip
QUIET = 0.25  # seconds without an event after which a packet's record is complete


class Event:
    """One line of `nft monitor trace`."""

    __slots__ = ("id", "family", "table", "chain", "kind", "text", "verdict", "handle", "packet")

    def __init__(self, tid, family, table, chain, kind, text="", verdict="", handle=None, packet=None):
        self.id, self.family, self.table, self.chain = tid, family, table, chain
        self.kind = kind  # "packet" | "rule" | "policy" | "return"
        self.text, self.verdict, self.handle, self.packet = text, verdict, handle, packet


def parse_line(line: str) -> Event | None:
    """One line -> Event, or None for anything that is not a trace event."""
    m = _LINE.match(line.rstrip())
    if not m:
        return None
    tid, family, table, chain, rest = m.groups()
    rest = rest.strip()
    if rest.startswith("packet:"):
        return Event(tid, family, table, chain, "packet", packet=parse_packet(rest[len("packet:") :]))
    if rest.startswith("policy "):
        return Event(tid, family, table, chain, "policy", verdict=rest.split()[1])
    if rest == "return" or rest.startswith("return "):
        return Event(tid, family, table, chain, "return", verdict="return")
    if rest.startswith("rule ") or rest.startswith("unknown rule handle"):
        body = rest[len("rule ") :] if rest.startswith("rule ") else rest
        vm = _VERDICT.match(body)
        text, verdict = (vm.group(1), vm.group(2)) if vm else (body, "")
        um = _UNKNOWN.match(text)
        if um:
            return Event(tid, family, table, chain, "rule", "", verdict, handle=int(um.group(1)))
        return Event(tid, family, table, chain, "rule", text, verdict)
    return None


def _words(s: str) -> list[str]:
    """Split on spaces, keeping "quoted strings" whole (interface names) without their quotes."""
    out, i, n = [], 0, len(s)
    while i < n:
        if s[i] == " ":
            i += 1
        elif s[i] == '"':
            j = s.find('"', i + 1)
            j = n if j < 0 else j
            out.append(s[i + 1 : j])
            i = j + 1
        else:
            j = s.find(" ", i)
            j = n if j < 0 else j
            out.append(s[i:j])
            i = j
    return out


def parse_packet(s: str) -> dict:
    """`iif "wanh" ... ip saddr A ip daddr B ... tcp dport 8080 ...` -> {"iif": "wanh",
    "ip saddr": "A", "tcp dport": "8080", ...}: only the fields a path needs (_FIELDS)."""
    w = _words(s)
    out = {}
    i = 0
    while i < len(w):
        if w[i] in ("iif", "oif") and i + 1 < len(w):
            out[w[i]] = w[i + 1]
            i += 2
            continue
        if i + 2 < len(w) and (w[i], w[i + 1]) in _FIELDS:
            key, j = f"{w[i]} {w[i + 1]}", i + 2
            if w[j] == "==" and j + 1 < len(w):
                j += 1
            value = w[j]
            # flags print as `syn | ack`: keep the whole list
            while j + 2 < len(w) and w[j + 1] == "|":
                j += 2
                value += "|" + w[j]
            out[key] = value
            i = j + 1
            continue
        i += 1
    return out


def summary(p: dict) -> dict:
    """{"proto", "src", "dst", "sport", "dport", "iif", "oif"} of parsed packet fields."""
    fam = "ip6" if "ip6 saddr" in p else "ip"
    proto = p.get("ip protocol") or p.get("ip6 nexthdr") or ""
    for l4 in ("tcp", "udp", "sctp"):
        if f"{l4} dport" in p or f"{l4} sport" in p:
            proto = l4
    if "icmp type" in p:
        proto = "icmp"
    if "icmpv6 type" in p:
        proto = "icmpv6"
    out = {"proto": proto, "src": p.get(f"{fam} saddr"), "dst": p.get(f"{fam} daddr"),
           "sport": _int(p.get(f"{proto} sport")), "dport": _int(p.get(f"{proto} dport")),
           "iif": p.get("iif"), "oif": p.get("oif")}  # fmt: skip
    if p.get("tcp flags"):
        out["flags"] = p["tcp flags"]
    if p.get("icmp type") or p.get("icmpv6 type"):
        out["icmp"] = p.get("icmp type") or p.get("icmpv6 type")
    return out


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def comment_of(rule: str) -> str | None:
    m = _COMMENT.search(rule or "")
    return m.group(1) if m else None


# -- packets ------------------------------------------------------------------------------


class Packet:
    """One traced packet: its hops (base chains run, in order), each with the rules that matched.

    hops: [{"family", "table", "chain", "hook", "priority", "packet": summary, "rules": [{"chain",
    "rule", "comment", "verdict", "handle"?}], "verdict"}]"""

    __slots__ = ("id", "hops", "last", "done", "seq")

    def __init__(self, tid: str):
        self.id, self.hops, self.last, self.done, self.seq = tid, [], 0.0, False, 0

    def add(self, ev: Event, hooks: dict, resolve=None) -> None:
        if ev.kind == "packet" or not self.hops:
            hook, prio = hooks.get((ev.family, ev.table, ev.chain), (None, None))
            self.hops.append({"family": ev.family, "table": ev.table, "chain": ev.chain, "hook": hook,
                              "priority": prio, "packet": summary(ev.packet or {}), "rules": [],
                              "verdict": None})  # fmt: skip
            if ev.kind == "packet":
                return
        hop = self.hops[-1]
        if ev.kind == "policy":
            hop["rules"].append({"chain": ev.chain, "rule": None, "policy": True, "comment": None,
                                 "verdict": ev.verdict})  # fmt: skip
            hop["verdict"] = ev.verdict
            self.done = ev.verdict == "drop"
        elif ev.kind == "return":
            hop["rules"].append({"chain": ev.chain, "rule": None, "comment": None, "verdict": "return"})
        else:
            text = ev.text
            step = {"chain": ev.chain, "rule": text, "comment": comment_of(text), "verdict": ev.verdict}
            if ev.handle is not None:
                step["handle"] = ev.handle
                found = resolve(ev.family, ev.table, ev.chain, ev.handle) if resolve else None
                step["rule"] = found
                step["comment"] = comment_of(found)
            hop["rules"].append(step)
            if ev.verdict in ("accept", "drop", "queue", "stolen") or ev.verdict.startswith("queue"):
                hop["verdict"] = ev.verdict
                self.done = ev.verdict == "drop"

    def to_dict(self, own_chain=None) -> dict:
        """The record `--json` prints: the packet as it arrived (the first hop's view: our trace
        chain runs before anything can change it), the hops without our own trace chain, what
        NAT changed, and the outcome (who dropped it, or where it left)."""
        keep = [i for i, h in enumerate(self.hops) if not (own_chain and own_chain(h))]
        index = {old: new for new, old in enumerate(keep)}
        nat = nat_changes(self.hops)
        for n in nat:  # hop numbers of the shown hops (a change is never seen at the first hop)
            for key in ("seen_at", "done_at"):
                if key in n:
                    n[key] = index.get(n[key], len(keep) - 1)
        hops = [self.hops[i] for i in keep]
        first = self.hops[0]["packet"] if self.hops else {}
        out = {"trace_id": self.id, "packet": first, "hops": hops, "nat": nat}
        out.update(outcome(hops))
        return out


def nat_changes(hops: list[dict]) -> list[dict]:
    """What NAT did: the addresses of consecutive hops compared (nat rules that ran in between
    named), plus a NAT rule in the last hop, whose result no later hop shows (postrouting's
    masquerade/snat)."""
    out = []
    pending = None  # the last NAT rule seen since the previous comparison
    prev = None
    for i, h in enumerate(hops):
        p = h["packet"]
        if prev is not None and p.get("src"):
            for kind, a, pa in (("dnat", "dst", "dport"), ("snat", "src", "sport")):
                before, after = _ep(prev, a, pa), _ep(p, a, pa)
                if before != after and prev.get(a):
                    n = {"kind": kind, "before": before, "after": after, "hook": h["hook"], "seen_at": i,
                         "table": None, "rule": None, "comment": None}
                    if pending is not None:
                        n.update(table=pending[0], chain=pending[1]["chain"], rule=pending[1]["rule"],
                                 comment=pending[1]["comment"])
                    else:  # no NAT rule ran: conntrack applied a NAT decided for an earlier packet
                        n["by"] = "conntrack"
                    out.append(n)
            pending = None
        if p.get("src"):
            prev = p
        for r in h["rules"]:
            if r.get("rule") and r["verdict"] == "accept" and nat_statement(r["rule"]):
                pending = (f"{h['family']} {h['table']}", r, h, i)
    if pending is not None:  # the last hop's NAT: nothing after it shows the new address
        table, r, h, i = pending
        kind, after = nat_statement(r["rule"])
        before_key = ("src", "sport") if kind in ("snat", "masquerade") else ("dst", "dport")
        out.append({"kind": kind, "before": _ep(h["packet"], *before_key), "after": after, "done_at": i,
                    "hook": h["hook"], "table": table, "chain": r["chain"], "rule": r["rule"], "comment": r["comment"],
                    "oif": h["packet"].get("oif")})  # fmt: skip
    return out


def nat_statement(rule: str) -> tuple[str, str | None] | None:
    """(kind, literal target or None) of the NAT statement in a rule's text, or None. `ct
    status dnat` is a match, not a statement; a map lookup (`dnat ip to ... map @m`) has no
    literal target: the next hop's addresses show it."""
    words = rule.split()
    for i, w in enumerate(words):
        if w in NAT_WORDS and (i == 0 or words[i - 1] not in ("status", "state", "!=", "==")):
            after = None
            if w in ("snat", "dnat") and "to" in words[i:]:
                j = words.index("to", i)
                target = words[j + 1] if j + 1 < len(words) else None
                if target not in (None, "ip", "ip6") and "map" not in words[j:]:
                    after = target
            return w, after
    return None


def _ep(p: dict, addr: str, port: str) -> str | None:
    a = p.get(addr)
    if a is None:
        return None
    if p.get(port) is None:
        return a
    return f"[{a}]:{p[port]}" if ":" in a else f"{a}:{p[port]}"


def outcome(hops: list[dict]) -> dict:
    """{"result": "dropped"|"accepted", "dropped_by": {...}|None, "last_hook"}."""
    for h in hops:
        if h["verdict"] == "drop":
            r = h["rules"][-1] if h["rules"] else {}
            by = {"family": h["family"], "table": h["table"], "chain": r.get("chain") or h["chain"],
                  "base_chain": h["chain"], "hook": h["hook"], "policy": bool(r.get("policy")),
                  "rule": r.get("rule"), "comment": r.get("comment"), "handle": r.get("handle")}  # fmt: skip
            return {"result": "dropped", "dropped_by": by, "last_hook": h["hook"]}
    last = hops[-1] if hops else {"hook": None, "packet": {}}
    return {"result": "accepted", "dropped_by": None, "last_hook": last["hook"], "out": last["packet"].get("oif")}


class Assembler:
    """Events in, complete Packets out, in the order the packets started (see the module
    docstring for where a packet starts and ends). hooks: {(family, table, chain): (hook,
    priority)} of the base chains; starts(ev): whether ev's chain is one of our trace chains;
    resolve(family, table, chain, handle): the text of a rule nft did not know (added after it
    started), or None.

    A packet can end before one that started earlier (a drop, or its trace id reused at once),
    so finished packets wait until every earlier one is finished too: --count 1 prints the
    first packet, not the first to finish."""

    def __init__(self, hooks: dict, starts, resolve=None, clock=time.monotonic):
        self.hooks, self.starts, self.resolve, self.clock = hooks, starts, resolve, clock
        self.open: dict[str, Packet] = {}
        self.finished: list[Packet] = []
        self.seq = 0

    def feed(self, ev: Event) -> list[Packet]:
        now = self.clock()
        pkt = self.open.get(ev.id)
        if ev.kind == "packet" and self.starts(ev) and pkt is not None:
            self._finish(ev.id)  # the same skb address, a new packet
            pkt = None
        if pkt is None:
            pkt = self.open[ev.id] = Packet(ev.id)
            pkt.seq = self.seq
            self.seq += 1
        pkt.add(ev, self.hooks, self.resolve)
        pkt.last = now
        if pkt.done:
            self._finish(ev.id)
        return self._release()

    def expire(self, quiet: float = QUIET) -> list[Packet]:
        now = self.clock()
        for tid in [tid for tid, p in self.open.items() if now - p.last >= quiet]:
            self._finish(tid)
        return self._release()

    def drain(self) -> list[Packet]:
        for tid in list(self.open):
            self._finish(tid)
        return self._release()

    def _finish(self, tid: str) -> None:
        self.finished.append(self.open.pop(tid))

    def _release(self) -> list[Packet]:
        first_open = min((p.seq for p in self.open.values()), default=None)
        ready = sorted((p for p in self.finished if first_open is None or p.seq < first_open), key=lambda p: p.seq)
        if ready:
            done = {id(p) for p in ready}
            self.finished = [p for p in self.finished if id(p) not in done]
        return ready


def parse_text(text: str, hooks: dict, starts, resolve=None) -> list[Packet]:
    """A whole recorded `nft monitor trace` output -> its packets, in completion order."""
    asm = Assembler(hooks, starts, resolve, clock=lambda: 0.0)
    out = []
    for line in text.splitlines():
        ev = parse_line(line)
        if ev is not None:
            out += asm.feed(ev)
    return out + asm.drain()


# -- the child process ---------------------------------------------------------------------

NFNLGRP_NFTRACE = 9  # include/uapi/linux/netfilter/nfnetlink.h
NETLINK_NETFILTER = 12
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Monitor:
    """`nft monitor trace` running as our child; lines() yields its lines as they come."""

    def __init__(self, nft: str = "nft"):
        from minirt import _syscalls

        def child_setup() -> None:  # dies with us, even after a kill -9 of minirt
            _syscalls.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        self.proc = subprocess.Popen([nft, "monitor", "trace"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=child_setup)  # fmt: skip
        self._buf = b""

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Until the child's netlink socket has joined the trace group (/proc/PID/net/netlink,
        Groups column: a bitmask of the first 32 groups), so nothing traced after this is lost."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if _subscribed(self.proc.pid):
                return True
            time.sleep(0.01)
        return False

    def read(self, timeout: float) -> list[str] | None:
        """Complete lines available within timeout ([] if none), or None once nft has exited."""
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], max(timeout, 0))
        if not r:
            return []
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return [line.decode(errors="replace") for line in lines]

    def error(self) -> str:
        try:
            return self.proc.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _subscribed(pid: int) -> bool:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        with open(f"/proc/{pid}/net/netlink") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return False
    bit = 1 << (NFNLGRP_NFTRACE - 1)
    for row in rows:
        cols = row.split()
        if len(cols) >= 10 and cols[1] == str(NETLINK_NETFILTER) and cols[9] in inodes and int(cols[3], 16) & bit:
            return True
    return False
