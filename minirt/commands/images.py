"""minirt images [-a] [-q] [--no-trunc] [--format json] [REPOSITORY[:TAG]]: Docker's columns
REPOSITORY TAG IMAGE ID CREATED SIZE."""

from minirt.cliparse import FLAG, VALUE, Option, parse
from minirt.errors import ConfigError

OPTIONS = [
    Option(("-q", "--quiet"), FLAG, "only image IDs"),
    Option(("-a", "--all"), FLAG, "accepted for Docker compatibility (there are no intermediate images)"),
    Option(("--no-trunc",), FLAG, "full image IDs"),
    Option(("--format",), VALUE, "json: one JSON object per line (Docker's --format json)", "FORMAT"),
]


def human_size(n: int) -> str:
    """Docker's units.HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    value = float(n)
    i = 0
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    return f"{value:.3g}{units[i]}"


def human_ago(iso: str, now: float | None = None) -> str:
    """Docker's "2 weeks ago" (go-units HumanDuration)."""
    import calendar
    import time

    try:
        then = calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "N/A"
    s = int((time.time() if now is None else now) - then)
    if s < 1:
        return "Less than a second ago"
    if s == 1:
        return "1 second ago"
    if s < 60:
        return f"{s} seconds ago"
    m = s // 60
    if m == 1:
        return "About a minute ago"
    if m < 60:
        return f"{m} minutes ago"
    h = round(s / 3600)
    if h == 1:
        return "About an hour ago"
    if h < 48:
        return f"{h} hours ago"
    if h < 24 * 7 * 2:
        return f"{h // 24} days ago"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks ago"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months ago"
    return f"{h // 24 // 365} years ago"


def rows(store, filter_ref: str | None = None) -> list[dict]:
    from minirt.image import reference

    want = reference.parse(filter_ref) if filter_ref else None
    out = []
    for rec, keys in store.listing():
        names = [reference.parse(k) for k in keys] or [None]
        for ref in names:
            if want is not None and (ref is None or ref.name != want.name
                                     or (":" in filter_ref.rsplit("/", 1)[-1] and ref.tag != want.tag)):
                continue
            out.append({
                "Repository": ref.familiar_name() if ref else "<none>",
                "Tag": (ref.tag or "<none>") if ref else "<none>",
                "ID": rec["id"],
                "CreatedAt": rec.get("created") or "",
                "Size": rec.get("size") or 0,
            })  # fmt: skip
    out.sort(key=lambda r: r["CreatedAt"], reverse=True)
    return out


def main(args: list[str]) -> int:
    import json

    from minirt.image.store import ImageStore

    opts, rest = parse(OPTIONS, args, stop_at_operand=False, prog="minirt images [OPTIONS] [REPOSITORY[:TAG]]")
    if len(rest) > 1:
        raise ConfigError('"images" requires at most 1 argument')
    table = rows(ImageStore(), rest[0] if rest else None)
    if opts["quiet"]:
        seen = []
        for r in table:
            shown = r["ID"] if opts["no_trunc"] else r["ID"][7:19]
            if shown not in seen:
                seen.append(shown)
        for s in seen:
            print(s)
        return 0
    if opts["format"]:
        if opts["format"] != "json":
            raise ConfigError(f"--format {opts['format']!r}: only json is supported")
        for r in table:
            print(json.dumps({**r, "ID": r["ID"] if opts["no_trunc"] else r["ID"][7:19],
                              "CreatedSince": human_ago(r["CreatedAt"]), "Size": human_size(r["Size"])}))
        return 0
    lines = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for r in table:
        lines.append((r["Repository"], r["Tag"], r["ID"] if opts["no_trunc"] else r["ID"][7:19],
                      human_ago(r["CreatedAt"]), human_size(r["Size"])))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for line in lines:
        print("   ".join(f"{c:<{w}}" for c, w in zip(line[:4], widths)) + "   " + line[4])
    return 0
