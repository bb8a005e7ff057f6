"""--user and --group-add: resolve a user spec against the container's /etc/passwd and /etc/group.

Runs in: the container init after pivot_root (the image's own files, as Docker reads them from
the container's root) and the `exec` child after it joined the mount namespace. No module can
be imported there, so this one is imported up front and uses nothing but str operations.

Semantics are moby/sys user's GetExecUser and GetAdditionalGroups (what runc and dockerd use):
- `USER[:GROUP]`, each a name or a number; a number is always an id, and an id with no
  passwd/group entry is allowed (HOME then stays the default, "/");
- a matched user brings its gid and home; supplementary groups are every group in /etc/group
  listing the user's name, but only when no GROUP was given (the implicit form);
- `--group-add` takes names or numbers, looked up in /etc/group;
- errors are moby's text: `unable to find user x: no matching entries in passwd file`.
"""

MAX_ID = 2147483647  # moby/sys user: maxID = 1<<31 - 1
NO_PASSWD = "no matching entries in passwd file"
NO_GROUP = "no matching entries in group file"
RANGE = "uids and gids must be in range 0-2147483647"


class UserError(Exception):
    """A spec that cannot be resolved; str() is Docker's message."""


class ExecUser:
    __slots__ = ("uid", "gid", "sgids", "home")

    def __init__(self, uid: int = 0, gid: int = 0, sgids: list[int] | None = None, home: str = "/"):
        self.uid, self.gid, self.sgids, self.home = uid, gid, sgids or [], home

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExecUser) and (self.uid, self.gid, self.sgids, self.home) == (
            other.uid, other.gid, other.sgids, other.home)  # fmt: skip

    def __repr__(self) -> str:
        return f"ExecUser(uid={self.uid}, gid={self.gid}, sgids={self.sgids}, home={self.home!r})"


def atoi(s: str) -> int | None:
    """Go's strconv.Atoi: an optional sign, then ASCII digits only (Python's int() would also take
    spaces, underscores and other scripts' digits). None when it is not a number."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or any(c not in "0123456789" for c in body):
        return None
    return int(s)


def _fields(line: str, n: int) -> list[str]:
    """moby's parseLine: split on ':', missing trailing fields are empty."""
    parts = line.split(":")
    return parts[:n] + [""] * (n - len(parts))


def _lines(text: str | None):
    # moby's ParsePasswdFilter/ParseGroupFilter: each line trimmed, empty lines skipped
    for raw in (text or "").split("\n"):
        line = raw.strip()
        if line:
            yield line


def parse_passwd(text: str | None) -> list[tuple[str, int, int, str]]:
    """[(name, uid, gid, home)]; a field that is not a number reads as 0, as in moby."""
    out = []
    for line in _lines(text):
        name, _pw, uid, gid, _gecos, home, _shell = _fields(line, 7)
        out.append((name, atoi(uid) or 0, atoi(gid) or 0, home))
    return out


def parse_group(text: str | None) -> list[tuple[str, int, list[str]]]:
    """[(name, gid, members)]."""
    out = []
    for line in _lines(text):
        name, _pw, gid, members = _fields(line, 4)
        out.append((name, atoi(gid) or 0, members.split(",") if members else []))
    return out


def _in_range(n: int) -> int:
    if n < 0 or n > MAX_ID:
        raise UserError(RANGE)
    return n


def resolve(spec: str | None, passwd: str | None, group: str | None, group_add: list[str] | tuple = ()) -> ExecUser:
    """The identity `spec` names in these files (None for a missing file). An empty spec is the
    default user: uid 0 (its passwd entry, if any, gives gid and home)."""
    user = ExecUser()
    user_arg, _, group_arg = (spec or "").partition(":")
    uid_arg, gid_arg = atoi(user_arg), atoi(group_arg)
    users = parse_passwd(passwd)
    if not user_arg:
        match = [u for u in users if u[1] == user.uid]
    elif uid_arg is not None:  # numeric: always a uid, never a name
        match = [u for u in users if u[1] == uid_arg]
    else:
        match = [u for u in users if u[0] == user_arg]
    matched_name = ""
    if match:  # the first entry wins
        matched_name, user.uid, user.gid, user.home = match[0]
    elif user_arg:
        if uid_arg is None:
            raise UserError(f"unable to find user {user_arg}: {NO_PASSWD}")
        user.uid = _in_range(uid_arg)
    if group_arg or matched_name:
        groups = parse_group(group)
        if group_arg:
            if gid_arg is not None:
                found = [g for g in groups if g[1] == gid_arg]
            else:
                found = [g for g in groups if g[0] == group_arg]
            if found:
                user.gid = found[0][1]
            elif gid_arg is None:
                raise UserError(f"unable to find group {group_arg}: {NO_GROUP}")
            else:
                user.gid = _in_range(gid_arg)
        else:  # supplementary groups only in the implicit form (moby: "only make sense if in the implicit form")
            user.sgids = [g[1] for g in groups if matched_name in g[2]]
    if group_add:
        for gid in additional_groups(group_add, group):
            if gid not in user.sgids:
                user.sgids.append(gid)
    return user


def additional_groups(names: list[str] | tuple, group: str | None) -> list[int]:
    """--group-add: each a group name or gid from /etc/group, or a bare number (moby
    GetAdditionalGroups; its message is capitalised: `Unable to find group x`)."""
    groups = parse_group(group)
    out: list[int] = []
    for name in names:
        found = [g[1] for g in groups if g[0] == name or str(g[1]) == name]
        if found:
            gid = found[0]
        else:
            n = atoi(name)
            if n is None:
                raise UserError(f"Unable to find group {name}")
            gid = _in_range(n)
        if gid not in out:
            out.append(gid)
    return out


def read_file(path: str) -> str | None:
    """The file's text, or None when it does not exist (moby: a missing passwd is no error)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None
