# minirt: `make run` opens a container shell; `make test` runs the whole suite.
# Every target installs what it needs (apt packages, the venv, the rootfs) and is quiet when
# that is already done. Runs as root on Debian 12.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
VPY    := $(VENV)/bin/python
BUILD  := build
ROOTFS := $(BUILD)/rootfs
APT_PACKAGES := nftables libnftables1 python3-nftables iproute2 busybox-static iputils-ping \
                libcap-dev libseccomp-dev libc6-dev gcc util-linux procps hyperfine zstd
SOURCES := $(shell find minirt -name '*.py' -o -name '*.c') pyproject.toml setup.py

.PHONY: help deps apt venv rootfs image probes run test unit integration bench compare docker-io engines podman oci-check clean

help:
	@echo "make run    set everything up and open a shell in a container (minirt run --net bridge -- /bin/sh)"
	@echo "make test   set everything up and run the whole test suite (needs root)"
	@echo "make bench  start-up latency of minirt against unshare, runc, crun (see bench/; BENCH_RUNS=N, BENCH_ARGS=...)"
	@echo "make bench BENCH_SCALE=N  N detached containers on one network: start, ps/inspect/stats, rm -f, memory"
	@echo "make compare  the same scenarios on Docker 20.10 and minirt, side by side (see compare/README.md)"
	@echo "make oci-check  podman and containerd driving minirt-oci and minirt-cni: what they called, and the result"

deps: apt venv rootfs image

# apt: ask dpkg which packages are missing; install only those (one apt-get update first).
apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "apt: must run as root to install packages" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
	    || { echo "apt: apt-get update failed" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "apt: installing $$missing failed" >&2; exit 1; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.created:
	@py=$$(tools/find-python); echo "venv: creating $(VENV) with $$py"; \
	rm -rf $(VENV); $$py -m venv $(VENV); \
	$(VPY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel \
	  || { echo "venv: pip bootstrap failed" >&2; exit 1; }
	@touch $@

# Non-editable on purpose: users run an installed package, and PYTHONDONTWRITEBYTECODE in this
# environment would keep an editable install from ever caching bytecode (docs/performance.md,
# "Measured costs").
# Debian's nftables bindings match the system libnftables; a link makes just that package
# importable in the venv (the whole dist-packages would drag in Python 3.11 modules).
$(VENV)/.installed: $(VENV)/.created $(SOURCES) | apt
	@echo "venv: installing minirt"
	@$(VPY) -m pip install -q --disable-pip-version-check --no-build-isolation '.[test]' \
	  || { echo "venv: pip install failed" >&2; exit 1; }
	@site=$$($(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	ln -sfn /usr/lib/python3/dist-packages/nftables "$$site/nftables"; \
	$(VPY) -m compileall -q "$$site/minirt" >/dev/null; \
	tools/write-launcher "$(CURDIR)/$(VPY)" "$$site" > $(VENV)/bin/minirt; chmod 755 $(VENV)/bin/minirt; \
	commit=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	tools/write-launcher "$(CURDIR)/$(VPY)" "$$site" oci "$$commit" > $(VENV)/bin/minirt-oci; \
	chmod 755 $(VENV)/bin/minirt-oci; \
	tools/write-launcher "$(CURDIR)/$(VPY)" "$$site" minirt.cni.main > $(VENV)/bin/minirt-cni; \
	chmod 755 $(VENV)/bin/minirt-cni
	@touch $@

rootfs: $(ROOTFS)/bin/busybox $(VENV)/share/minirt/rootfs

$(ROOTFS)/bin/busybox: rootfs/build.sh | apt
	@rootfs/build.sh $(ROOTFS)

# The installed minirt finds its default rootfs at <venv>/share/minirt/rootfs.
$(VENV)/share/minirt/rootfs: | $(VENV)/.created
	@mkdir -p $(VENV)/share/minirt; ln -sfn "$(CURDIR)/$(ROOTFS)" $@

# image: the built-in busybox rootfs as the image minirt/busybox (one layer, CMD /bin/sh) in the
# default image store (MINIRT_STORE, else /var/lib/minirt; docs/images.md). Made here, never
# downloaded; imported again when the rootfs is newer than the stamp or the store lacks that
# image. The tests never use this store: each test has its own (tests/conftest.py).
IMAGE_STAMP := $(BUILD)/busybox-image.id

image: venv rootfs
	@if [ ! -s $(IMAGE_STAMP) ] || [ $(ROOTFS)/bin/busybox -nt $(IMAGE_STAMP) ] \
	    || ! $(VENV)/bin/minirt images -q --no-trunc minirt/busybox | grep -qx "$$(cat $(IMAGE_STAMP))"; then \
	  echo "image: importing $(ROOTFS) as minirt/busybox"; \
	  epoch=$$(stat -c %Y /bin/busybox); \
	  tar -C $(ROOTFS) --numeric-owner --sort=name --mtime=@$$epoch -cf $(BUILD)/rootfs.tar .; \
	  SOURCE_DATE_EPOCH=$$epoch \
	  $(VENV)/bin/minirt import -c 'CMD ["/bin/sh"]' -m "minirt's built-in busybox rootfs" \
	    $(BUILD)/rootfs.tar minirt/busybox > $(IMAGE_STAMP).tmp \
	    || { rm -f $(BUILD)/rootfs.tar $(IMAGE_STAMP).tmp; echo "image: minirt import failed" >&2; exit 1; }; \
	  rm -f $(BUILD)/rootfs.tar; mv $(IMAGE_STAMP).tmp $(IMAGE_STAMP); \
	fi

# Static syscall probes for the seccomp tests (tests/probes/): bind-mounted into busybox
# containers, so they need no libc there (glibc's libc.a comes with libc6-dev).
PROBES := $(BUILD)/probes/probe

probes: $(PROBES)

$(BUILD)/probes/%: tests/probes/%.c | apt
	@mkdir -p $(@D)
	@gcc -static -O2 -Wall -Werror -o $@ $<

run: deps
	@$(VENV)/bin/minirt run --net bridge -- /bin/sh

test: deps probes engines
	@$(VPY) -m pytest -q -p no:cacheprovider tests

unit: venv
	@$(VPY) -m pytest -q -p no:cacheprovider tests/unit

integration: deps probes engines
	@$(VPY) -m pytest -q -p no:cacheprovider tests/integration

# Bench-only extras: the OCI peers (Debian's runc and crun), installed only when missing.
BENCH_APT := runc crun

bench: deps
	@missing=$$(for p in $(BENCH_APT); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "bench: installing $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
	    || { echo "bench: apt-get update failed" >&2; exit 1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "bench: installing $$missing failed" >&2; exit 1; }; \
	fi
	@$(VPY) -c 'import matplotlib' 2>/dev/null || { echo "bench: installing matplotlib into $(VENV) (chart only)"; \
	  $(VPY) -m pip install -q --disable-pip-version-check matplotlib >/dev/null 2>&1 \
	    || echo "bench: pip install matplotlib failed: the chart will be skipped" >&2; }
	@case ",$(BENCH_PEERS)," in *,docker,*) $(MAKE) -s docker-io ;; esac
	@case ",$(BENCH_PEERS)," in *,podman,*) $(MAKE) -s podman ;; esac
	@if [ -n "$(BENCH_SCALE)" ]; then $(VPY) bench/scale.py --count $(BENCH_SCALE) $(BENCH_ARGS); \
	else $(VPY) bench/bench.py $(BENCH_ARGS); fi

# docker-io: Debian's docker.io, installed without starting its services (policy-rc.d says 101);
# compare.py (and bench.py with BENCH_PEERS=docker) run dockerd in a throwaway network + mount
# namespace of their own.
docker-io:
	@if ! dpkg-query -W -f='$${Status}\n' docker.io 2>/dev/null | grep -q '^install ok installed'; then \
	  echo "docker-io: installing docker.io"; \
	  own=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own=1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
	    || { [ $$own = 0 ] || rm -f /usr/sbin/policy-rc.d; echo "docker-io: installing docker.io failed" >&2; exit 1; }; \
	  [ $$own = 0 ] || rm -f /usr/sbin/policy-rc.d; \
	fi

compare: deps docker-io
	@$(VPY) compare/compare.py

# engines: Debian's podman and containerd, which the tests drive minirt-oci and minirt-cni with
# (tests/integration/test_engines.py, make oci-check), and docker-registry (distribution 2.8),
# which the pull tests start on loopback in a throwaway namespace (tests/helpers/registry.py);
# installed with their services kept from starting (policy-rc.d says 101): the tests start
# their own, in throwaway namespaces.
ENGINE_APT := podman containerd docker-registry

engines podman:
	@missing=$$(for p in $(ENGINE_APT); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "engines: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "engines: must run as root to install packages" >&2; exit 1; fi; \
	  own=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own=1; }; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { [ $$own = 0 ] || rm -f /usr/sbin/policy-rc.d; echo "engines: installing $$missing failed" >&2; exit 1; }; \
	  [ $$own = 0 ] || rm -f /usr/sbin/policy-rc.d; \
	fi

# oci-check: podman and containerd drive minirt-oci (and podman minirt-cni) through the steps
# of the engine tests; prints what each engine called and the result.
oci-check: deps engines
	@$(VPY) tools/oci-check

clean:
	rm -rf $(VENV) $(BUILD)
