"""Read the kernel's view of the host, for leak checks and assertions (never minirt's records)."""

import json
import os
import subprocess


def links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def nft_tables() -> set[str]:
    r = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    if r.returncode != 0:
        return set()
    return {f"{t['table']['family']} {t['table']['name']}" for t in json.loads(r.stdout)["nftables"] if "table" in t}


def mounts() -> set[str]:
    """Mount points that minirt could have leaked: overlays and anything under a minirt path."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4]
            fstype = fields[fields.index("-") + 1]
            if fstype == "overlay" or "minirt" in mnt or "pytest" in mnt:
                out.add(f"{fstype} {mnt}")
    return out


def minirt_processes(exclude: set[int], root: str | None = None) -> set[str]:
    """Processes whose command line mentions minirt (our runs, sentinels); with `root`, only
    those started with MINIRT_ROOT=root, so another run on the machine cannot interfere."""
    out = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in exclude:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "minirt" not in cmd or "pytest" in cmd:
            continue
        if root is not None:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if f"MINIRT_ROOT={root}".encode() not in f.read().split(b"\0"):
                        continue
            except OSError:
                continue
        out.add(f"{pid} {cmd.strip()}")
    return out


def snapshot(exclude_pids: set[int]) -> dict[str, set[str]]:
    return {
        "links": links(),
        "netns": netns(),
        "nft tables": nft_tables(),
        "mounts": mounts(),
        "processes": minirt_processes(exclude_pids),
    }


def diff(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    problems = []
    for key in before:
        added = after[key] - before[key]
        if added:
            problems.append(f"{key} leaked: {sorted(added)}")
    return problems
