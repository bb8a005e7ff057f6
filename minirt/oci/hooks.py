"""OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): run each with the state JSON on
stdin, its args and env, and its timeout.

Where each kind runs (runc's placement):
- prestart, createRuntime: by `create`, in the runtime's namespaces, after the container's
  namespaces exist and its mounts are made, before pivot_root;
- createContainer: by the container's init, in the container's namespaces (mount included),
  before pivot_root, so the path resolves in the runtime's filesystem;
- startContainer: by the init after `start` released it, inside the container after pivot_root,
  before the user's program (the path resolves in the container);
- poststart: by `start`, after the program started; poststop: by `delete`.

Failures follow the spec: one of the first four fails create or start (the container is torn
down); poststart and poststop failures are logged as warnings and the lifecycle goes on.
"""

import json
import subprocess


class HookError(Exception):
    pass


def state_text(state: dict) -> bytes:
    return json.dumps(state).encode()


def run_one(hook: dict, state: bytes, cwd: str | None = None) -> None:
    """Run `hook` ({path, args, env, timeout}); HookError with runc's wording on failure."""
    env = {}
    for item in hook.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    args = hook.get("args") or [hook["path"]]
    try:
        p = subprocess.run(args, executable=hook["path"], env=env, input=state, capture_output=True,
                           timeout=hook.get("timeout"), cwd=cwd, close_fds=True)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HookError(f"error running hook {hook['path']}: timeout after {hook['timeout']}s") from None
    except OSError as e:
        raise HookError(f"error running hook {hook['path']}: {e.strerror or e}") from None
    if p.returncode != 0:
        how = f"exit status {p.returncode}" if p.returncode > 0 else f"signal: {-p.returncode}"
        raise HookError(f"error running hook {hook['path']}: {how}, stdout: {p.stdout.decode(errors='replace')}, "
                        f"stderr: {p.stderr.decode(errors='replace')}")  # fmt: skip


def run(hooks: list, state: dict, cwd: str | None = None) -> None:
    """Run hooks in order; the first failure stops the list (runc's Hooks.Run)."""
    if not hooks:
        return
    data = state_text(state)
    for h in hooks:
        run_one(h if isinstance(h, dict) else h.to_dict(), data, cwd)


def run_all_logged(hooks: list, state: dict, what: str, cwd: str | None = None) -> None:
    """poststart / poststop: each failure is a warning, and the next hook still runs."""
    from minirt.oci import log

    data = state_text(state)
    for h in hooks or []:
        try:
            run_one(h, data, cwd)
        except HookError as e:
            log.warning(f"{what} hook: {e}")
