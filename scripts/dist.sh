#!/usr/bin/env bash
# Builds release archives of e2e and of each built-in backend plugin, one
# per platform, with a SHA256SUMS list beside them. `make dist` runs it:
#
#   scripts/dist.sh DISTDIR COMMIT "PLUGINS" PLATFORM...
#
# PLATFORM is GOOS/GOARCH (linux/amd64). DISTDIR is laid out as a plugin
# mirror, so `e2e plugin install --mirror DISTDIR NAME@VERSION` installs
# from it:
#
#   DISTDIR/NAME/VERSION/e2e-backend-NAME_VERSION_OS_ARCH.tar.gz
#   DISTDIR/NAME/VERSION/SHA256SUMS
#   DISTDIR/e2e_VERSION_OS_ARCH.tar.gz     (e2e itself)
#   DISTDIR/SHA256SUMS
#
# Each binary gets its own version (VERSION, plugins/NAME/VERSION) and the
# commit through -ldflags; each archive holds the one executable. Builds are
# static (CGO_ENABLED=0) and archives reproducible: the same commit gives
# the same bytes (-trimpath, sorted tar entries owned by 0, mtime of the
# commit, gzip -n).
set -euo pipefail

if [ $# -lt 4 ]; then
	echo "usage: $0 DISTDIR COMMIT \"PLUGINS\" GOOS/GOARCH..." >&2
	exit 2
fi
distdir=$1 commit=$2 plugins=$3
shift 3
go=${GO:-go}
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# archive BIN DEST: a .tar.gz at DEST holding the executable BIN alone.
archive() {
	local bin=$1 dest=$2
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
		-C "$(dirname "$bin")" -cf - "$(basename "$bin")" | gzip -n -9 >"$dest.tmp"
	mv "$dest.tmp" "$dest"
}

# sums DIR: DIR/SHA256SUMS lists every .tar.gz in DIR.
sums() {
	(cd "$1" && sha256sum -- *.tar.gz >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
}

mkdir -p "$distdir"
for platform in "$@"; do
	goos=${platform%/*} goarch=${platform#*/}
	if [ -z "$goos" ] || [ -z "$goarch" ] || [ "$goos" = "$platform" ]; then
		echo "dist: $platform is not GOOS/GOARCH (such as linux/amd64)" >&2
		exit 2
	fi
	version=$(cat VERSION)
	out="$work/$goos-$goarch"
	mkdir -p "$out"
	echo "dist: e2e $version $goos/$goarch"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$go" build -trimpath \
		-ldflags "-X main.version=$version -X main.commit=$commit" -o "$out/e2e" ./cmd/e2e
	archive "$out/e2e" "$distdir/e2e_${version}_${goos}_${goarch}.tar.gz"
	for p in $plugins; do
		version=$(cat "plugins/$p/VERSION")
		echo "dist: e2e-backend-$p $version $goos/$goarch"
		CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$go" build -trimpath \
			-ldflags "-X main.version=$version -X main.commit=$commit" -o "$out/e2e-backend-$p" "./plugins/$p"
		mkdir -p "$distdir/$p/$version"
		archive "$out/e2e-backend-$p" "$distdir/$p/$version/e2e-backend-${p}_${version}_${goos}_${goarch}.tar.gz"
	done
done
sums "$distdir"
for p in $plugins; do
	sums "$distdir/$p/$(cat "plugins/$p/VERSION")"
done
echo "dist: archives and SHA256SUMS in $distdir"
