"""JSON for our state records, without importing json.

`import json` pulls in json.decoder, re and enum: ~10 ms, a third of our start-up budget, spent
on the one write that must happen before the container may start. Records hold only dicts,
lists, str, int, float, bool and None; strings are escaped by the same C routine json itself
uses; loads() drives json's own C scanner. Unit tests pin equivalence with json.
"""

from _json import encode_basestring_ascii as _str


def dumps(obj: object, indent: str = "\n", sort_keys: bool = True, step: str = "  ") -> str:
    """Like json.dumps(obj, indent=len(step), sort_keys=sort_keys): by default indent=2, sorted
    (the records); `inspect` prints Docker's order with indent=4."""
    if isinstance(obj, str):
        return _str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, (int, float)):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError(f"cannot encode {obj!r} as JSON")
        return repr(obj) if isinstance(obj, float) else str(int(obj))
    inner = indent + step
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        pairs = sorted(obj.items()) if sort_keys else obj.items()
        items = [f"{_str(str(k))}: {dumps(v, inner, sort_keys, step)}" for k, v in pairs]
        return "{" + inner + ("," + inner).join(items) + indent + "}"
    if isinstance(obj, (list, tuple, set, frozenset)):
        if not obj:
            return "[]"
        seq = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return "[" + inner + ("," + inner).join(dumps(v, inner, sort_keys, step) for v in seq) + indent + "]"
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


class _ScanContext:
    """What _json's C scanner reads from a JSONDecoder (json/scanner.py), minus the import of re."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod({"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__)
    memo: dict = {}


_scan = None


def loads(text: str) -> object:
    """json.loads for our own records, through the same C scanner json uses, without json's
    import cost. Raises ValueError on malformed input."""
    global _scan
    if _scan is None:
        from _json import make_scanner

        _scan = make_scanner(_ScanContext())
    start = len(text) - len(text.lstrip())
    try:
        obj, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip():
        raise ValueError(f"extra data after JSON document at offset {end}")
    return obj
