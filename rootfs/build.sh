#!/usr/bin/env bash
# Build the default rootfs from Debian's busybox-static into $1 (default build/rootfs).
# The recipe is committed, the output is not (like runc's tests/integration/get-images.sh).
# The .deb is unpacked, not taken from the host's /bin, so the rootfs does not depend on what
# else the host has installed; the result is swapped in atomically, so a half-built tree is
# never used.
set -euo pipefail
out=${1:-build/rootfs}
say() { echo "rootfs: $*"; }

tmp="$out.tmp.$$"
work=$(mktemp -d)
trap 'rm -rf "$tmp" "$work"' EXIT

say "fetching busybox-static from the Debian archive"
(cd "$work" && apt-get download -q busybox-static >/dev/null 2>&1) || {
  say "apt-get download failed; is the package list current (apt-get update)?" >&2; exit 1; }
deb=$(ls "$work"/busybox-static_*.deb)
say "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/pkg"

say "laying out $out"
mkdir -p "$tmp"
for d in bin sbin usr/bin usr/sbin etc root tmp proc sys dev run mnt opt srv var/www var/log var/tmp home; do mkdir -p "$tmp/$d"; done
chmod 1777 "$tmp/tmp"
chmod 700 "$tmp/root"
install -m 0755 "$work/pkg/bin/busybox" "$tmp/bin/busybox"

say "linking applets"
n=0
while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  [ -e "$tmp/$applet" ] || { ln -s /bin/busybox "$tmp/$applet"; n=$((n + 1)); }
done < <("$tmp/bin/busybox" --list-full)
say "$n applets"

# Docker's busybox image's users and groups (a subset), plus `app` (1000, in `staff` and
# `audio`) for the --user tests: supplementary groups come from the members listed here.
cat >"$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
wheel:x:10:root
audio:x:29:app
www-data:x:33:
operator:x:37:
staff:x:50:app
users:x:100:
app:x:1000:
nogroup:x:65534:
G
mkdir -p "$tmp/home/app"
chown 1000:1000 "$tmp/home/app"
echo "minirt busybox rootfs ($(basename "$deb" .deb))" >"$tmp/etc/issue"
echo '<html><body>minirt</body></html>' >"$tmp/var/www/index.html"

rm -rf "$out"
mv "$tmp" "$out"
say "done: $out"
