"""libnftables JSON commands -> the `nft ...` lines a person would type, for --explain and errors.

Runs in: anywhere (pure).

    render(batch)  shell lines, one `nft` call per command, quoted so that they replay as
                   printed in sh/bash:  nft add rule inet minirt net-x-nat 'oifname != "minirt0" ...'
    script(batch)  the same commands as an `nft -f` file: one transaction, like the JSON batch

The same JSON goes to libnftables, so what is printed cannot drift from what is applied (CNI's
knftables Fake/Dump idea: one model, two renderings); golden-tested together with ruleset.py,
and the integration test replays both renderings into a kernel and compares the result with
the JSON's. Only the vocabulary ruleset.py emits is covered: anything else, or a string nft's
text syntax cannot hold, raises ValueError, so a new builder cannot silently render wrong.

Quoting: nft reads `"minirt:net:x"` and `"0br"` only with their double quotes, and a shell
would strip them, so a command tail holding anything but plain words (braces, quotes, `;`)
goes in single quotes; plain ones (`oifname vmap @fwd_in`) stay bare.
"""

# (chain type, numeric priority) -> nft's standard priority name (nft(8), CHAINS)
PRIORITY_NAMES = {("filter", -300): "raw", ("filter", 0): "filter", ("nat", -100): "dstnat", ("nat", 100): "srcnat"}
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def render(batch: list[dict]) -> list[str]:
    """Shell lines, `nft <verb> <object> ...`, one per JSON command."""
    lines = []
    for cmd in batch:
        head, tail = _parts(cmd)
        words = ["nft", *head.split(" ")]
        if tail:
            words.append(_shell_word(tail) if _needs_quotes(tail) else tail)
        lines.append(" ".join(words))
    return lines


def script(batch: list[dict]) -> list[str]:
    """`nft -f` lines (no shell quoting): `nft -f file` applies them as one transaction."""
    return [" ".join(p for p in _parts(cmd) if p) for cmd in batch]


def _needs_quotes(s: str) -> bool:
    return any(word == "" or not set(word) <= _SHELL_SAFE for word in s.split(" "))


def _shell_word(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _str(s: str) -> str:
    """An nft quoted string; nft has no escape for `"`, so such a string cannot be rendered."""
    if not isinstance(s, str) or '"' in s or "\n" in s:
        raise ValueError(f"render: {s!r} cannot be written as an nft string")
    return f'"{s}"'


def _parts(cmd: dict) -> tuple[str, str]:
    """One JSON command -> (verb, object and name; the rest, or "")."""
    ((verb, body),) = cmd.items()
    ((kind, obj),) = body.items()
    if verb not in ("add", "flush", "delete"):
        raise ValueError(f"render: unsupported command {verb!r}")
    if kind == "table":
        return f"{verb} table {obj['family']} {obj['name']}", ""
    where = f"{obj['family']} {obj['table']}"
    if kind == "chain":
        head = f"{verb} chain {where} {obj['name']}"
        if verb == "add" and "hook" in obj:
            prio = PRIORITY_NAMES.get((obj["type"], obj["prio"]), obj["prio"])
            return head, f"{{ type {obj['type']} hook {obj['hook']} priority {prio}; policy {obj['policy']}; }}"
        return head, ""
    if kind == "map" and verb == "add":
        return f"add map {where} {obj['name']}", f"{{ type {obj['type']} : {obj['map']}; }}"
    if kind == "element" and verb in ("add", "delete"):
        if verb == "delete":  # nft's text syntax deletes by key alone (as the kernel does)
            elems = ", ".join(_str(key) for key, _value in obj["elem"])
        else:
            elems = ", ".join(f"{_str(key)} : {_verdict(value)}" for key, value in obj["elem"])
        return f"{verb} element {where} {obj['name']}", f"{{ {elems} }}"
    if kind == "rule" and verb == "add":
        words = [_expr(e) for e in obj["expr"]]
        if "comment" in obj:
            words.append(f"comment {_str(obj['comment'])}")
        return f"add rule {where} {obj['chain']}", " ".join(words)
    raise ValueError(f"render: unsupported command {verb} {kind}")


def _verdict(v: dict) -> str:
    ((k, arg),) = v.items()
    if k in ("jump", "goto"):
        return f"{k} {arg['target']}"
    if k in ("accept", "drop", "return", "continue"):
        return k
    raise ValueError(f"render: unsupported verdict {v!r}")


def _left(v: dict) -> str:
    ((k, arg),) = v.items()
    if k == "meta":
        return arg["key"]
    if k == "payload":
        return f"{arg['protocol']} {arg['field']}"
    if k == "ct":
        return f"ct {arg['key']}"
    raise ValueError(f"render: unsupported expression {v!r}")


def _right(v) -> str:
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, dict) and "prefix" in v:
        return f"{v['prefix']['addr']}/{v['prefix']['len']}"
    if isinstance(v, list) and all(isinstance(x, str) and x.isidentifier() for x in v):
        return ",".join(v)  # flag values such as ct state established,related
    raise ValueError(f"render: unsupported value {v!r}")


def _expr(e: dict) -> str:
    ((k, arg),) = e.items()
    if k == "match":
        left, right = _left(arg["left"]), _right(arg["right"])
        if arg["op"] in ("==", "in"):  # nft's implicit operator
            return f"{left} {right}"
        if arg["op"] == "!=":
            return f"{left} != {right}"
        raise ValueError(f"render: unsupported operator {arg['op']!r}")
    if k == "vmap":
        return f"{_left(arg['key'])} vmap {arg['data']}"
    if k in ("accept", "drop", "masquerade") and arg is None:
        return k
    raise ValueError(f"render: unsupported expression {e!r}")
