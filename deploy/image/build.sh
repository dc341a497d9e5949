#!/usr/bin/env bash
# Builds wray's OCI image, tagged with the binary's version: the `wray`
# binary and what it needs at run time, on an empty base (deploy/image/Containerfile).
#
#   deploy/image/build.sh                      release build, then image wray:VERSION
#   deploy/image/build.sh --binary PATH        package an already built binary
#   deploy/image/build.sh --tag registry.example.com/wray:0.1.0
#   deploy/image/build.sh --archive wray.tar   also write it as an OCI archive
#
# Builder: buildah (Debian's package; `apt-get install buildah`), with the
# vfs storage driver and chroot isolation unless STORAGE_DRIVER or
# BUILDAH_ISOLATION say otherwise — that works without a daemon, in a
# container or a CI job. WRAY_IMAGE_BUILDER=docker uses `docker build` on
# the same Containerfile and context instead. WRAY_BUILDAH_ROOT=DIR keeps
# buildah's images and containers under DIR instead of its system store
# (the tests use this).
#
# The image is not static: the binary is linked against glibc, and the
# libraries `ldd` lists are copied in at the paths the dynamic loader looks
# for them, from this machine — so build it on the distribution you trust
# (this repository's machines: Debian 12). libvulkan.so.1 is added when
# this machine has it (Debian: libvulkan1), so that GPU nodes find their
# driver through NVIDIA's container toolkit.
#
# Prints the image's name as its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=""
tag=""
archive=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --tag) tag="${2:?--tag needs NAME:TAG}"; shift 2 ;;
        --archive) archive="${2:?--archive needs a file}"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$binary" ]; then
    echo "building wray (release; about nine minutes from clean)" >&2
    cargo build --release --quiet -p wray-cli
    binary="${CARGO_TARGET_DIR:-target}/release/wray"
fi
if [ ! -x "$binary" ]; then
    echo "build.sh: $binary is not an executable" >&2
    exit 2
fi
# The version the binary reports is the image's: `wray 0.1.0` -> 0.1.0.
version="$("$binary" --version | awk '{print $2}')"
if [ -z "$version" ]; then
    echo "build.sh: $binary --version printed no version" >&2
    exit 2
fi
tag="${tag:-wray:$version}"

builder="${WRAY_IMAGE_BUILDER:-buildah}"
if ! command -v "$builder" >/dev/null; then
    echo "build.sh: $builder is not installed (Debian: apt-get install buildah; or WRAY_IMAGE_BUILDER=docker)" >&2
    exit 2
fi

# The build context: rootfs/ is copied to / and home/ to /var/lib/wray.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$context/home"
chmod 1777 "$rootfs/tmp"
strip -o "$rootfs/usr/bin/wray" "$binary"

# Each library `ldd` lists ("name => /path (addr)"), at that path.
copy_libraries() {
    ldd "$1" | awk '/=> \// {print $3}' | while read -r lib; do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}
copy_libraries "$binary"
# And the dynamic loader the binary names: without it, exec fails with a
# bare "no such file or directory".
interpreter="$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
if [ -n "$interpreter" ]; then
    mkdir -p "$rootfs$(dirname "$interpreter")"
    cp -L "$interpreter" "$rootfs$interpreter"
fi
# (awk reads all of ldconfig's output: stopping early would kill ldconfig
# with SIGPIPE, which pipefail turns into a failed build.)
vulkan="$(ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 .*x86-64/ && !found {print $NF; found = 1}')"
if [ -n "$vulkan" ]; then
    mkdir -p "$rootfs$(dirname "$vulkan")"
    cp -L "$vulkan" "$rootfs$vulkan"
    copy_libraries "$vulkan"
else
    echo "build.sh: no libvulkan.so.1 here (Debian: libvulkan1): the image's nodes will use the CPU path only" >&2
fi

cat > "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
wray:x:1000:1000:wray:/var/lib/wray:/sbin/nologin
EOF
cat > "$rootfs/etc/group" <<'EOF'
root:x:0:
wray:x:1000:
EOF
# glibc's DNS resolver is in libc itself (2.34 and later); this says to use
# it after /etc/hosts, as Kubernetes expects.
echo "hosts: files dns" > "$rootfs/etc/nsswitch.conf"

case "$builder" in
    buildah)
        export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
        root_flags=()
        if [ -n "${WRAY_BUILDAH_ROOT:-}" ]; then
            root_flags=(--root "$WRAY_BUILDAH_ROOT/storage" --runroot "$WRAY_BUILDAH_ROOT/run")
        fi
        buildah "${root_flags[@]}" bud --quiet --layers=false --format oci \
            --build-arg "VERSION=$version" -f "$PWD/deploy/image/Containerfile" -t "$tag" "$context" >&2
        if [ -n "$archive" ]; then
            rm -f "$archive"
            buildah "${root_flags[@]}" push --quiet "$tag" "oci-archive:$archive:$tag" >&2
        fi
        ;;
    docker)
        docker build --build-arg "VERSION=$version" -f deploy/image/Containerfile -t "$tag" "$context" >&2
        if [ -n "$archive" ]; then
            docker save -o "$archive" "$tag"
        fi
        ;;
    *)
        echo "build.sh: WRAY_IMAGE_BUILDER must be buildah or docker, not $builder" >&2
        exit 2
        ;;
esac
echo "image $tag: $(du -sh "$rootfs" | cut -f1) ($(du -h "$rootfs/usr/bin/wray" | cut -f1) of it the binary)" >&2
echo "$tag"
