#!/usr/bin/env bash
# Builds the packages IT rolls out into dist/, from a release build:
#   blende_<version>_<arch>.deb, blende-server_<version>_<arch>.deb   (Debian 12, Ubuntu 22.04+)
#   blende-<version>-1.<arch>.rpm, blende-server-<version>-1.<arch>.rpm (SUSE, Red Hat)
# Sources: installer/ (desktop entry, metainfo, unit, conffiles, maintainer scripts, specs),
# assets/blende.svg (icons are rendered from it here), man pages and completions from the
# binaries' own clap definitions. Dependencies are computed from the binaries (dpkg-shlibdeps,
# rpm's ELF generator). Nothing here downloads anything.
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
repo=$PWD
scripts/deps.sh build package
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/blende-target}
cargo build --release --locked -p blende-app -p blende-server

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
bin=$CARGO_TARGET_DIR/release
work=$CARGO_TARGET_DIR/package
rm -rf "$work"
mkdir -p "$work" dist

# The copyright file both packages carry (Debian's machine-readable format).
copyright() {
  cat <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Blende
Source: the Blende source repository

Files: *
Copyright: Blende developers
License: EUPL-1.2
 The European Union Public Licence, version 1.2:
 https://interoperable-europe.ec.europa.eu/collection/eupl/eupl-text-eupl-12
COPY
}

# Binary, man pages, completions and docs of one package into its staging root.
stage_common() {
  local pkg=$1 dst=$work/$1 gen=$work/generated/$1
  "$bin/$pkg" package-files --out "$gen"
  install -D -m 0755 "$bin/$pkg" "$dst/usr/bin/$pkg"
  strip --strip-debug "$dst/usr/bin/$pkg"
  install -d "$dst/usr/share/man/man1"
  for page in "$gen"/man/*.1; do
    gzip -9n -c "$page" >"$dst/usr/share/man/man1/$(basename "$page").gz"
  done
  install -D -m 0644 "$gen/completions/$pkg.bash" "$dst/usr/share/bash-completion/completions/$pkg"
  install -D -m 0644 "$gen/completions/_$pkg" "$dst/usr/share/zsh/vendor-completions/_$pkg"
  install -D -m 0644 "$gen/completions/$pkg.fish" "$dst/usr/share/fish/vendor_completions.d/$pkg.fish"
  install -d "$dst/usr/share/doc/$pkg"
  copyright >"$dst/usr/share/doc/$pkg/copyright"
  chmod 0644 "$dst/usr/share/doc/$pkg/copyright"
}

# The client.
stage_common blende
c=$work/blende
install -D -m 0644 installer/org.blende.Blende.desktop "$c/usr/share/applications/org.blende.Blende.desktop"
install -D -m 0644 installer/org.blende.Blende.metainfo.xml "$c/usr/share/metainfo/org.blende.Blende.metainfo.xml"
install -D -m 0644 assets/blende.svg "$c/usr/share/icons/hicolor/scalable/apps/org.blende.Blende.svg"
for size in 16 24 32 48 64 128 256; do
  install -d "$c/usr/share/icons/hicolor/${size}x${size}/apps"
  rsvg-convert -w "$size" -h "$size" -o "$c/usr/share/icons/hicolor/${size}x${size}/apps/org.blende.Blende.png" assets/blende.svg
done
# The conffile is the documented example with every setting commented out: it changes
# nothing until IT writes its own lines, and an upgrade never replaces what IT wrote.
install -d "$c/etc/blende"
{
  echo "# Blende system policy: every setting below is commented out, so the built-in policy"
  echo "# applies until you change it. Check a change with: blende policy show"
  echo "#"
  sed -E 's/^([^#[:space:]])/# \1/' installer/policy.toml.example
} >"$c/etc/blende/policy.toml"
chmod 0644 "$c/etc/blende/policy.toml"
install -m 0644 installer/policy.toml.example "$c/usr/share/doc/blende/policy.toml.example"
install -m 0644 installer/privacy/blende.de.md "$c/usr/share/doc/blende/privacy-notice.de.md"

# The server.
stage_common blende-server
s=$work/blende-server
install -D -m 0644 installer/blende-server.service "$s/lib/systemd/system/blende-server.service"
install -D -m 0644 installer/server.toml "$s/etc/blende-server/server.toml"
install -m 0644 installer/privacy/blende-server.de.md "$s/usr/share/doc/blende-server/privacy-notice.de.md"

# .deb: control from the template, dependencies from the binary.
build_deb() {
  local pkg=$1 dst=$work/$1 shl=$work/shlibs-$1
  mkdir -p "$shl/debian" "$dst/DEBIAN"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$shl/debian/control"
  local depends
  depends=$(cd "$shl" && dpkg-shlibdeps -O -e"$dst/usr/bin/$pkg" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  [ -n "$depends" ] || { echo "package: no dependencies found for $pkg" >&2; exit 1; }
  # Libraries the binary opens at run time (dlopen: X11, Wayland, GL, xkbcommon) name their
  # sonames in it; dpkg-shlibdeps sees only the linked ones, so these come from the same scan.
  local extra
  extra=$(grep -aoE 'lib[A-Za-z0-9_+-]+\.so\.[0-9]+' "$dst/usr/bin/$pkg" | sed -E 's/.*lib/lib/' | sort -u | while read -r so; do
    owner=$(dpkg -S "*/$so" 2>/dev/null | head -n1 | cut -d: -f1)
    [ -n "$owner" ] || { echo "package: $pkg loads $so, which no installed package provides" >&2; exit 1; }
    grep -qE "(^|, )$owner( |,|$)" <<<"$depends" || echo "$owner"
  done | paste -sd, - | sed 's/,/, /g')
  [ -z "$extra" ] || depends="$depends, $extra"
  local size
  size=$(du -sk --apparent-size "$dst" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    "installer/debian/$pkg/control.in" >"$dst/DEBIAN/control"
  install -m 0644 "installer/debian/$pkg/conffiles" "$dst/DEBIAN/conffiles"
  for script in preinst postinst prerm postrm; do
    [ -f "installer/debian/$pkg/$script" ] && install -m 0755 "installer/debian/$pkg/$script" "$dst/DEBIAN/$script"
  done
  (cd "$dst" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$dst/DEBIAN/md5sums"
  chmod 0644 "$dst/DEBIAN/md5sums"
  dpkg-deb --root-owner-group -Zxz --build "$dst" "dist/${pkg}_${version}_${arch}.deb" >/dev/null
}

# .rpm: the same staging root; the spec lists the files and carries the scriptlets.
build_rpm() {
  local pkg=$1
  rpmbuild -bb --quiet \
    --define "_topdir $work/rpm" --define "stage $work/$pkg" --define "blende_version $version" \
    --define "_build_id_links none" --define "__os_install_post %{nil}" --define "_binary_payload w9.xzdio" \
    "installer/rpm/$pkg.spec" >/dev/null
  cp "$work"/rpm/RPMS/*/"$pkg-$version"-1.*.rpm dist/
}

rm -f dist/blende*_"$version"_"$arch".deb dist/blende*-"$version"-1.*.rpm
for pkg in blende blende-server; do
  build_deb "$pkg"
  build_rpm "$pkg"
done
ls -l dist/ >&2
