"""compare/report.py: normalising each runtime's output, verdicts and the exit status (no root)."""

from compare import report


def test_addresses_keep_host_part_and_prefix_only():
    text = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "370: eth0@if371    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0\n")
    assert report.norm_addrs(text) == "lo 127.0.0.1/8; eth0 net+2/16"
    # another subnet, same shape
    assert report.norm_addrs(text.replace("172.17.", "172.18.")) == report.norm_addrs(text)
    assert report.norm_addrs("") == "(none)"


def test_routes_normalised():
    text = "default via 172.17.0.1 dev eth0 \n172.17.0.0/16 dev eth0 scope link  src 172.17.0.2 \n"
    assert report.norm_routes(text) == "default via .1 dev eth0; /16 dev eth0 src .2"
    assert report.norm_routes("") == "(none)"


def test_resolv_keeps_directives_only():
    assert report.norm_resolv("# Generated\nnameserver 127.0.0.11\noptions  ndots:0\n\n") == \
        "nameserver 127.0.0.11; options ndots:0"


def test_resolv_gateway_token():
    assert report.norm_resolv("nameserver 172.18.0.1\noptions ndots:0\n", "172.18.0.1") == \
        "nameserver <gateway>; options ndots:0"


def test_hosts_replace_own_ip_and_hostname():
    text = "127.0.0.1\tlocalhost\n172.17.0.2\ta11dd36e8675\n"
    assert report.norm_hosts(text, "a11dd36e8675", "172.17.0.2") == "127.0.0.1 localhost; <ip> <hostname>"


def test_hostname_short_id():
    assert report.norm_hostname("a11dd36e8675\n") == "<12 hex id>"
    assert report.norm_hostname("web\n") == "web"


def test_status_fields():
    text = "Name:\tsh\nNoNewPrivs:\t1\nSeccomp:\t2\n"
    assert report.status_fields(text, ("Seccomp", "NoNewPrivs", "CapAmb")) == "Seccomp=2 NoNewPrivs=1 CapAmb=?"


def test_verdicts():
    assert report.verdict("exit 3", "3", "3") == ("same", "")
    v, note = report.verdict("mtu", "1500", "1400")
    assert v == "intended" and "uplink" in note
    # an intended difference with a meant value is explained only when minirt shows that value
    assert report.verdict("resolv.conf user net", "nameserver 127.0.0.11; options ndots:0",
                          "nameserver <gateway>; options ndots:0")[0] == "intended"
    assert report.verdict("resolv.conf user net", "nameserver 127.0.0.11; options ndots:0",
                          "nameserver 10.255.255.53")[0] == "DIFFERENT"
    assert report.verdict("exit 3", "3", "1")[0] == "DIFFERENT"
    # a row where minirt does what Docker 28+ does, which 20.10 does not
    name = next(iter(report.NEWER_DOCKER))
    newer_value = report.NEWER_DOCKER[name][1]
    assert newer_value is not None
    v, note = report.verdict(name, "something 20.10 does", newer_value)
    assert v == "as Docker 28+" and note.startswith("Docker 28")
    # minirt doing what 20.10 does, where Docker 28+ changed it, is a difference
    v, note = report.verdict(name, "ok", "ok")
    assert v == "DIFFERENT" and "20.10" in note
    # rows where 28+ shows the same as 20.10 only carry the note
    assert report.verdict("-p 127.0.0.1 from host", "ok", "ok")[0] == "same"


def test_table_and_exit_status():
    md, status = report.table([("exit 3", "3", "3"), ("mtu", "1500", "1400")])
    assert status == 0
    lines = md.splitlines()
    assert lines[0].startswith("| scenario | Docker 20.10 | minirt |")
    assert "| mtu | `1500` | `1400` | intended |" in md
    assert "2 scenarios: 1 same, 1 intended, 0 as Docker 28+, 0 unexplained" in md
    md, status = report.table([("exit 3", "3", "1")])
    assert status == 1 and "| DIFFERENT |" in md


def test_crash_fails_even_when_both_crash():
    md, status = report.table([("x", "ERROR boom", "ERROR boom")])
    assert status == 1 and "| ERROR |" in md


def test_pipes_escaped():
    md, _ = report.table([("a|b", "x|y", "x|y")])
    assert "a\\|b" in md and "x\\|y" in md


def test_error_text_without_the_runtime_prefix():
    docker = "docker: Error response from daemon: Minimum memory limit allowed is 6MB.\nSee 'docker run --help'.\n"
    assert report.norm_error(docker) == "Minimum memory limit allowed is 6MB"
    assert report.norm_error("minirt: Minimum memory limit allowed is 6MB\n") == "Minimum memory limit allowed is 6MB"
    flag = "invalid argument \"3x\" for \"-m, --memory\" flag: invalid size: '3x'\nSee 'docker run --help'.\n"
    assert report.norm_error(flag) == report.norm_error("minirt: " + flag.splitlines()[0]) == flag.splitlines()[0]
    assert report.norm_error("") == "(no message)"


def test_escape_rows_name_corpus_rows():
    """Every explained `escape:` row names a row of the corpus table, so renaming a probe cannot
    leave an explanation behind that no longer matches anything."""
    from tests.probes.corpus import CORPUS, SECCOMP_RULES

    labels = {f"escape: {r.name} ({' '.join(r.opts) if passing else 'default'})"
              for r in CORPUS + SECCOMP_RULES for passing in (False, True)}
    explained = [k for k in (*report.INTENDED, *report.NEWER_DOCKER) if k.startswith("escape:")]
    assert explained and set(explained) <= labels, set(explained) - labels
