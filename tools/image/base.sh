#!/usr/bin/env bash
# Makes the image the Dockerfile starts from, debian:bookworm-slim, where no registry can be reached: a
# minimal Debian built with debootstrap from the mirror apt uses here, slimmed the way Debian's official
# -slim images are (no manuals, documentation or translations, none installed later either), and imported
# under the official name, so that `podman build --pull=never` finds it. Does nothing if the image exists.
# Needs root, podman and debootstrap (apt-get install podman debootstrap); takes 1-3 minutes.
set -euo pipefail
image=${1:-docker.io/library/debian:bookworm-slim}
suite=bookworm

if podman image exists "$image"; then
    echo "base image $image: already there"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "no base image $image: 'podman pull $image', or install debootstrap to build it here" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "no base image $image: building it with debootstrap needs root ('podman pull $image' does not)" >&2
    exit 1
fi

# The mirror apt already uses (deb822 sources, then the one-line format), else Debian's CDN.
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /^https?:/ { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rootfs=$tmp/rootfs
echo "building base image $image with debootstrap ($suite, minbase) from $mirror"
if ! timeout 1200 debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp/debootstrap.log" >&2
    echo "debootstrap failed (its log's end is above)" >&2
    exit 1
fi

# As in Debian's official -slim images: later installs leave out manuals, documentation and translations,
# and apt keeps no downloaded packages.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CONF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +

tar --numeric-owner -C "$rootfs" -c . | podman import --quiet --change 'CMD ["bash"]' - "$image" >/dev/null
echo "base image $image: built ($(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
