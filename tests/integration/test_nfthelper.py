"""The nft helper of `run -p` (net/firewall/nfthelper.py), against a real kernel in a throwaway
netns: it runs scripts as one transaction each, reports libnftables' errors, and when it is gone
(or used from another process) the caller falls back to its own context."""

import json
import sys

from tests.conftest import REPO

CODE = r"""
import json, os, signal, sys
sys.path.insert(0, sys.argv[1])
from minirt.net.firewall import nfthelper, ports

out = {}
h = nfthelper.start()
ports.helper = h
ports.apply("add table inet helpertest\nadd chain inet helpertest c", "declare")
out["ok"] = h.cmd("add rule inet helpertest c counter")[0]
rc, _, err = h.cmd("add rule inet helpertest nosuchchain counter")
out["refused"] = [rc, "No such file or directory" in err]
try:
    ports.apply("add rule inet helpertest nosuchchain counter", "bad")
except Exception as e:
    out["apply_error"] = str(e)
pid = os.fork()
if pid == 0:  # a forked process must not write into the parent's helper pipes
    os._exit(0 if h.cmd("add rule inet helpertest c counter") is None else 1)
out["child_refused"] = os.waitpid(pid, 0)[1] == 0
h.close()
out["closed"] = h.cmd("add rule inet helpertest c counter") is None
ports.apply("add rule inet helpertest c counter", "fallback")  # own context after close
print(json.dumps(out))
"""


def test_helper_runs_scripts_reports_errors_and_falls_back(host_ns):
    r = host_ns.run(sys.executable, "-c", CODE, REPO)
    out = json.loads(r.stdout)
    assert out["ok"] == 0 and out["refused"][0] != 0 and out["refused"][1]
    assert out["apply_error"].startswith("nft bad: ")
    assert out["child_refused"] and out["closed"]
    rules = [o for o in host_ns.json("nft", "-j", "list", "chain", "inet", "helpertest", "c")["nftables"] if "rule" in o]
    assert len(rules) == 2  # the helper's rule and the fallback's; the refused ones added nothing
    host_ns.run("nft", "delete", "table", "inet", "helpertest")


LAZY = r"""
import json as _real  # noqa: F401 - only to check against below; removed again first
import os, sys
del sys.modules["json"]
for m in [m for m in sys.modules if m == "re" or m.startswith(("json.", "re.", "enum"))]:
    del sys.modules[m]
sys.path.insert(0, sys.argv[1])
from minirt.net.firewall import libnft, nfthelper

out = {}
ctx = libnft.context()
out["text_only"] = [m for m in ("json", "re", "enum") if m in sys.modules]
out["text_rc"] = ctx.cmd("add table inet lazytest")[0]
rc, listed = ctx.json_cmd({"nftables": [{"list": {"table": {"family": "inet", "name": "lazytest"}}}]})[:2]
out["json_rc"] = rc
out["json_listed"] = [o["table"]["name"] for o in listed["nftables"] if "table" in o]
out["real_json"] = type(sys.modules["json"]).__name__ == "module" and hasattr(sys.modules["json"], "JSONDecoder")
h = nfthelper.start()
h.close()
try:  # the double fork's intermediate child was reaped (at close), the helper is not ours
    os.waitpid(-1, os.WNOHANG)
    out["children_left"] = True
except ChildProcessError:
    out["children_left"] = False
ctx.cmd("delete table inet lazytest")
print(__import__("json").dumps(out))
"""


def test_bindings_import_without_json_until_json_is_used(host_ns):
    """libnft imports the bindings with a stand-in for json (it costs ~17 ms and `run -p` only
    sends text scripts); the first JSON call imports the real module and works."""
    r = host_ns.run(sys.executable, "-c", LAZY, REPO)
    out = json.loads(r.stdout)
    assert out["text_only"] == []
    assert out["text_rc"] == 0 and out["json_rc"] == 0 and out["json_listed"] == ["lazytest"]
    assert out["real_json"]
    assert out["children_left"] is False
