"""Container identity: 64-hex ids, 12-hex short ids, generated and validated names."""

import os

from minirt.errors import ConfigError

_ADJ = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nifty", "quiet", "sharp", "tender", "witty")
_NOUN = ("bohr", "curie", "dijkstra", "euler", "hopper", "knuth", "lovelace", "noether", "ritchie", "turing")
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def new_id() -> str:
    return os.urandom(32).hex()


def is_full_id(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def short(cid: str) -> str:
    return cid[:12]


def generated_name(cid: str) -> str:
    """adjective_scientist, derived from the id so it needs no extra randomness (Docker's namesgenerator idea)."""
    n = int(cid[:8], 16)
    return f"{_ADJ[n % len(_ADJ)]}_{_NOUN[(n // len(_ADJ)) % len(_NOUN)]}_{cid[:4]}"


def check_name(name: str) -> str:
    """Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (daemon/names.go RestrictedNamePattern)."""
    if len(name) < 2 or not name[0].isalnum() or not name.isascii() or not set(name) <= _NAME_OK:
        raise ConfigError(f"name {name!r}: invalid container name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def check_alias(alias: str) -> str:
    """--network-alias: a DNS name of [a-zA-Z0-9_.-] labels, starting alphanumeric, at most
    63 bytes (one lookup key of the network's responder, net/dnsd.py)."""
    ok = 0 < len(alias) <= 63 and alias.isascii() and set(alias) <= _NAME_OK and alias[0].isalnum()
    if not ok or alias.endswith(".") or ".." in alias:
        raise ConfigError(f"alias {alias!r}: invalid network alias, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return alias


def check_hostname(name: str) -> str:
    """RFC 1123 labels, at most 63 bytes (HOST_NAME_MAX in the UTS namespace is 64 with NUL)."""
    ok = name and len(name) <= 63 and all(c.isalnum() or c in "-." for c in name) and name.isascii()
    if not ok or name[0] in "-." or name[-1] in "-.":
        raise ConfigError(f"hostname {name!r}: invalid hostname")
    return name
