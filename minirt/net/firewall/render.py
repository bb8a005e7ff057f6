"""libnftables JSON commands -> the `nft ...` lines a person would type (for --explain and errors).

Covers exactly the vocabulary ruleset.py emits; anything else raises, so a new builder cannot
silently render wrong. Golden-tested together with ruleset.py (one model, two renderings:
CNI's knftables Fake/Dump idea).
"""

import json

HOOK_PRIO = {("filter", 0): "filter", ("nat", 100): "srcnat", ("nat", -100): "dstnat", ("filter", -300): "raw"}


def render(batch: list[dict]) -> list[str]:
    return [f"nft {_command(cmd)}" for cmd in batch]


def _q(s: str) -> str:
    return json.dumps(s)


def _command(cmd: dict) -> str:
    (verb, body), = cmd.items()
    (kind, obj), = body.items()
    if kind == "table":
        return f"{verb} table {obj['family']} {obj['name']}"
    where = f"{obj['family']} {obj['table']}"
    if kind == "chain":
        line = f"{verb} chain {where} {obj['name']}"
        if verb == "add" and "hook" in obj:
            prio = HOOK_PRIO.get((obj["type"], obj["prio"]), obj["prio"])
            line += f" '{{ type {obj['type']} hook {obj['hook']} priority {prio}; policy {obj['policy']}; }}'"
        return line
    if kind == "map":
        return f"{verb} map {where} {obj['name']} '{{ type {obj['type']} : {obj['map']}; }}'"
    if kind == "element":
        if verb == "delete":  # nft's delete takes the key alone
            elems = ", ".join(_q(k) for k, _v in obj["elem"])
        else:
            elems = ", ".join(f"{_q(k)} : {_verdict(v)}" for k, v in obj["elem"])
        return f"{verb} element {where} {obj['name']} '{{ {elems} }}'"
    if kind == "rule":
        words = [_expr(e) for e in obj["expr"]]
        if obj.get("comment"):
            words.append(f"comment {_q(obj['comment'])}")
        return f"{verb} rule {where} {obj['chain']} " + " ".join(words)
    raise ValueError(f"render: unsupported object {kind!r}")


def _verdict(v: dict) -> str:
    (k, arg), = v.items()
    if k in ("jump", "goto"):
        return f"{k} {arg['target']}"
    return k


def _value(v) -> str:
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "meta" in v:
            return v["meta"]["key"]
        if "payload" in v:
            return f"{v['payload']['protocol']} {v['payload']['field']}"
        if "ct" in v:
            return f"ct {v['ct']['key']}"
        raise ValueError(f"render: unsupported value {v!r}")
    if isinstance(v, list):
        return ",".join(_value(x) for x in v)
    if isinstance(v, str):
        return _q(v) if not v.isidentifier() or v in ("lo",) else v
    return str(v)


def _expr(e: dict) -> str:
    (k, arg), = e.items()
    if k == "match":
        left = _value(arg["left"])
        right = _value(arg["right"]) if not isinstance(arg["right"], str) else _q(arg["right"])
        if isinstance(arg["right"], list) or arg["op"] in ("==", "in"):
            return f"{left} {right}"
        return f"{left} {arg['op']} {right}"
    if k == "vmap":
        return f"{_value(arg['key'])} vmap {arg['data']}"
    if k in ("accept", "drop", "masquerade", "return"):
        return k
    if k == "counter":
        return "counter"
    raise ValueError(f"render: unsupported expression {k!r}")
