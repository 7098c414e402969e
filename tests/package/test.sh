#!/usr/bin/env bash
# The packages as IT meets them. Builds them (scripts/package.sh), makes a clean Debian 12
# root with debootstrap (cached under the target folder, as are the .debs apt fetches), installs
# both .deb files there with apt-get, and checks inside it: version, policy layer and a policy
# that blocks, man pages, desktop entry and metainfo, the systemd unit (verify, security
# score), the server started from the unit's own command line as its user, an upgrade that
# keeps IT's policy, and a purge that leaves nothing behind. Then the RPMs' files and scripts.
# The packages are built as the calling user; the rest needs root (chroot, mounts, a network
# namespace) and asks sudo for it. CI runs it from scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/blende-target}

fail() { echo "package test: FAIL: $*" >&2; exit 1; }
step() { echo "package test: $*" >&2; }

if [ -z "${BLENDE_PACKAGES_BUILT:-}" ]; then
  scripts/package.sh
fi
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "needs root (chroot, mount, unshare) and there is no sudo"
  exec sudo BLENDE_PACKAGES_BUILT=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR" "$PWD/tests/package/test.sh" "$@"
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
client_deb=dist/blende_${version}_${arch}.deb
server_deb=dist/blende-server_${version}_${arch}.deb

cache=$CARGO_TARGET_DIR/debootstrap
base=$cache/bookworm-minbase.tar
root=$CARGO_TARGET_DIR/package-root
mirror=${BLENDE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ ! -f "$base" ]; then
  step "making a Debian 12 root with debootstrap (once; cached in $base)"
  rm -rf "$cache/build"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include=man-db,desktop-file-utils,appstream,systemd,adduser \
    bookworm "$cache/build" "$mirror" >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; fail "debootstrap"; }
  tar -C "$cache/build" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/build"
fi

mounts=(proc var/cache/apt/archives var/lib/apt/lists)
cleanup() {
  for m in "${mounts[@]}"; do umount "$root/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$root"
mkdir -p "$root" "$cache/archives/partial" "$cache/lists/partial"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
mount --bind "$cache/lists" "$root/var/lib/apt/lists"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root TERM=dumb "$@"; }

# Every file of the clean root, to compare with after the purge; not what apt and dpkg keep
# about themselves (their caches, lists and appstream's catalogue from apt-get update), logs,
# and /run (a tmpfs on a real system).
files() {
  in_root find / -xdev \( -path /proc -o -path /run -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg \
    -o -path /var/lib/swcatalog -o -path /var/log -o -path /tmp -o -path /root \) -prune -o -print | sort
}
files >"$root/../package-root.before"

step "installing both packages with apt-get"
cp "$client_deb" "$server_deb" "$root/tmp/"
in_root apt-get update -qq >&2 || fail "apt-get update"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$client_deb")" "/tmp/$(basename "$server_deb")" >&2 || fail "apt-get install"

step "blende --version, policy show"
[ "$(in_root blende --version)" = "blende $version" ] || fail "blende --version: $(in_root blende --version)"
[ "$(in_root blende-server --version)" = "blende-server $version" ] || fail "blende-server --version"
show=$(in_root blende policy show) || fail "policy show failed on the packaged policy: $show"
grep -qx "# layer: administrator: /etc/blende/policy.toml" <<<"$show" || fail "policy show names no admin layer: $show"

step "a policy written by IT blocks a window title"
line=$'XTerm\tVertraulich: Akte 4711'
[ "$(in_root blende policy classify <<<"$line")" = allow ] || fail "blocked before the policy said so"
cat >>"$root/etc/blende/policy.toml" <<'POLICY'

version = 1
[[share.block]]
title_contains = "Vertraulich"
reason = "Verschlusssache"
POLICY
verdict=$(in_root blende policy classify <<<"$line")
[ "$verdict" = $'block\tadmin-rule\tVerschlusssache' ] || fail "IT's rule did not block: $verdict"

step "man pages"
for page in blende blende-join blende-server blende-server-serve; do
  text=$(in_root env MANWIDTH=80 man -P cat "$page" 2>&1) || fail "man $page: $text"
  grep -q "SYNOPSIS" <<<"$text" || fail "man $page has no SYNOPSIS"
done

step "desktop entry and metainfo"
out=$(in_root desktop-file-validate /usr/share/applications/org.blende.Blende.desktop 2>&1) || fail "desktop-file-validate: $out"
[ -z "$out" ] || fail "desktop-file-validate: $out"
out=$(in_root appstreamcli validate --no-net --explain /usr/share/metainfo/org.blende.Blende.metainfo.xml 2>&1) || fail "appstreamcli: $out"
for size in 16 32 48 256; do
  [ -s "$root/usr/share/icons/hicolor/${size}x${size}/apps/org.blende.Blende.png" ] || fail "no ${size}px icon"
done

step "the systemd unit"
unit=/lib/systemd/system/blende-server.service
out=$(in_root systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
security=$(in_root systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
overall=$(grep "Overall exposure level" <<<"$security") || fail "no security score: $security"
score=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<<"$overall")
level=$(sed -E 's/.*: [0-9.]+ ([A-Z]+).*/\1/' <<<"$overall")
case "$level" in SAFE | OK) ;; *) fail "systemd-analyze security: $overall" ;; esac
step "systemd-analyze security: exposure $score $level"

step "the server from the unit's command line, as its user"
exec_start=$(sed -n 's/^ExecStart=//p' "$root$unit")
user=$(sed -n 's/^User=//p' "$root$unit")
workdir=$(sed -n 's/^WorkingDirectory=//p' "$root$unit")
[ "$(in_root stat -c %U "$workdir")" = "$user" ] || fail "$workdir is not owned by $user"
answer=$(unshare --net bash -c '
  set -e
  ip link set lo up
  root=$1 user=$2 workdir=$3 cmd=$4
  chroot --userspec="$user:$user" "$root" /usr/bin/env -i PATH=/usr/bin:/bin sh -c "cd $workdir && exec $cmd" >"$root/tmp/server.out" 2>"$root/tmp/server.err" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$root/tmp/server.out" 2>/dev/null && break; sleep 0.1; done
  cat "$root/tmp/server.out"
  exec 3<>/dev/tcp/127.0.0.1/8443
  printf "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" >&3
  read -r -t 5 status <&3
  echo "$status"
  kill $pid
  wait $pid || true
' _ "$root" "$user" "$workdir" "$exec_start") || fail "server: $answer $(cat "$root/tmp/server.err")"
grep '"event":"listening"' <<<"$answer" | grep '"addr":"127.0.0.1:8443"' | grep -q '"tls":false' || fail "server did not listen: $answer $(cat "$root/tmp/server.err")"
grep -q "^HTTP/1.1 101" <<<"$answer" || fail "no WebSocket handshake: $answer"
[ "$(in_root stat -c %U /var/lib/blende-server/blende-server.db)" = "$user" ] || fail "the database is not the service user's"
notice=$(in_root runuser -u "$user" -- blende-server privacy-notice --config /etc/blende-server/server.toml --lang de) ||
  fail "privacy-notice: $notice"
grep -q "Von der Behörde auszufüllen" <<<"$notice" || fail "the server's notice has no placeholders"

step "an upgrade keeps IT's policy"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "/tmp/$(basename "$client_deb")" >&2 ||
  fail "reinstall"
grep -q "Verschlusssache" "$root/etc/blende/policy.toml" || fail "the upgrade replaced IT's policy"
verdict=$(in_root blende policy classify <<<"$line")
[ "$verdict" = $'block\tadmin-rule\tVerschlusssache' ] || fail "after the upgrade: $verdict"

step "purge"
in_root dpkg --purge blende blende-server >&2 || fail "dpkg --purge"
files >"$root/../package-root.after"
left=$(comm -13 "$root/../package-root.before" "$root/../package-root.after")
# What stays: the dependencies apt installed (their files belong to packages still
# installed), and adduser's backups of the account files (Debian keeps system users).
stray=""
while IFS= read -r f; do
  [ -n "$f" ] || continue
  case "$f" in
    /etc/passwd- | /etc/group- | /etc/shadow- | /etc/gshadow-) continue ;;
  esac
  [ -d "$root$f" ] && continue
  # Merged /usr: a package may list the file under /lib rather than /usr/lib.
  owner=$(in_root dpkg-query -S "$f" 2>/dev/null | cut -d: -f1) || owner=$(in_root dpkg-query -S "${f#/usr}" 2>/dev/null | cut -d: -f1) || owner=""
  case "$owner" in
    "" | blende | blende-server) stray="$stray $f" ;;
  esac
done <<<"$left"
[ -z "$stray" ] || fail "left behind after purge:$stray"
for gone in /etc/blende /etc/blende-server /var/lib/blende-server /usr/bin/blende "$unit"; do
  [ ! -e "$root$gone" ] || fail "$gone survived the purge"
done
in_root getent passwd blende-server >/dev/null || fail "the system user was removed (Debian keeps them)"

step "RPMs"
for pkg in blende blende-server; do
  rpm_file=$(ls dist/"$pkg-$version"-1.*.rpm)
  check=$(rpm -K --nosignature "$rpm_file") || fail "rpm -K $rpm_file: $check"
  grep -q "digests OK" <<<"$check" || fail "rpm -K $rpm_file: $check"
  list=$(rpm -qlp "$rpm_file")
  grep -qx "/usr/bin/$pkg" <<<"$list" || fail "$rpm_file lacks /usr/bin/$pkg"
  requires=$(rpm -qp --requires "$rpm_file")
  grep -q "libc.so.6" <<<"$requires" || fail "$rpm_file: no requirements from the binary: $requires"
done
client_rpm=$(ls dist/blende-"$version"-1.*.rpm)
server_rpm=$(ls dist/blende-server-"$version"-1.*.rpm)
[ "$(rpm -qcp "$client_rpm")" = /etc/blende/policy.toml ] || fail "client RPM conffiles: $(rpm -qcp "$client_rpm")"
[ "$(rpm -qcp "$server_rpm")" = /etc/blende-server/server.toml ] || fail "server RPM conffiles"
# The list first: `grep -q` in a pipe under pipefail fails when the writer gets SIGPIPE.
server_list=$(rpm -qlp "$server_rpm")
grep -qx /usr/lib/systemd/system/blende-server.service <<<"$server_list" || fail "server RPM has no unit"
scripts=$(rpm -qp --scripts "$server_rpm")
grep -q "useradd -r" <<<"$scripts" && grep -q "rm -rf /var/lib/blende-server" <<<"$scripts" || fail "server RPM scripts: $scripts"

du -b dist/*"$version"* | sed 's/^/package test: size /' >&2
step "all checks passed"
