#!/usr/bin/env bash
# Builds the repository's Dockerfile from a clean clone of HEAD and runs the image, without a
# container daemon or a registry (neither is reachable on the CI machine):
#   - buildah and debootstrap from Debian's packages (as root);
#   - a builder base: Debian bookworm with gcc and this machine's Rust toolchain copied in
#     (the version the Dockerfile pins), standing in for rust:*-slim-bookworm;
#   - a runtime base: minimal bookworm with CA certificates and a `nonroot` user, standing in
#     for distroless/cc-debian12:nonroot;
#   - `buildah bud` with the bases passed as the Dockerfile's build arguments;
#   - checks of the label, the user and the entrypoint; then the entrypoint run with an empty
#     environment lists the tools over stdio, and in HTTP mode answers on a loopback port.
# The bases are cached in IMAGE_CACHE (default /var/cache/procore-token-mcp-image) between
# runs; delete the folder to rebuild them.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/tests/image

cache=${IMAGE_CACHE:-/var/cache/procore-token-mcp-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
storage=(--root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
bah() { buildah "${storage[@]}" "$@"; }

if [ "$(id -u)" != 0 ]; then
    echo "tests/image/run.sh builds with buildah as root; run it as root" >&2
    exit 1
fi
if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "== installing buildah and debootstrap from Debian"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah debootstrap
fi
mkdir -p "$cache"

# The toolchain the Dockerfile's builder pins (rust:1.95.0-slim-bookworm -> 1.95.0).
rust_version=$(sed -n 's/^ARG BUILDER_IMAGE=rust:\([0-9.]*\)-.*/\1/p' Dockerfile)
toolchain=${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$rust_version-x86_64-unknown-linux-gnu
if [ -z "$rust_version" ] || [ ! -x "$toolchain/bin/cargo" ]; then
    echo "the Dockerfile pins Rust '$rust_version'; no such toolchain at $toolchain" >&2
    exit 1
fi
builder=localhost/procore-token-mcp-ci/builder:$rust_version-bookworm
runtime=localhost/procore-token-mcp-ci/runtime:bookworm

have_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# A base from a debootstrapped root file system; $3 prepares the tree before the commit.
make_base() {
    local name=$1 include=$2 prepare=$3 path=$4 tree ctr
    tree=$(mktemp -d "$cache/tree.XXXXXX")
    debootstrap --variant=minbase --include="$include" bookworm "$tree" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # No package lists or caches in the image.
    rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb
    "$prepare" "$tree"
    ctr=$(bah from scratch)
    bah copy "$ctr" "$tree" / >/dev/null
    bah config --env "PATH=$path" "$ctr"
    bah commit --quiet --rm "$ctr" "$name" >/dev/null
    rm -rf "$tree"
}

prepare_builder() {
    local tree=$1
    # rust:*-slim's layout: the toolchain under /usr/local/rustup, cargo and rustc on the
    # PATH from /usr/local/cargo/bin. The documentation (half the size) stays behind.
    mkdir -p "$tree/usr/local/rustup/toolchains/$rust_version" "$tree/usr/local/cargo/bin"
    cp -a "$toolchain/bin" "$toolchain/lib" "$toolchain/libexec" "$toolchain/etc" \
        "$tree/usr/local/rustup/toolchains/$rust_version/"
    for tool in cargo rustc rustdoc; do
        ln -s "../../rustup/toolchains/$rust_version/bin/$tool" "$tree/usr/local/cargo/bin/$tool"
    done
}

prepare_runtime() {
    local tree=$1
    # distroless's nonroot user and group: 65532, home /home/nonroot.
    chroot "$tree" groupadd --gid 65532 nonroot
    chroot "$tree" useradd --uid 65532 --gid 65532 --create-home --home-dir /home/nonroot \
        --shell /usr/sbin/nologin nonroot
}

start=$SECONDS
if ! have_image "$builder"; then
    echo "== making the builder base $builder (bookworm, gcc, Rust $rust_version)"
    make_base "$builder" gcc,libc6-dev,ca-certificates prepare_builder \
        /usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fi
if ! have_image "$runtime"; then
    echo "== making the runtime base $runtime (bookworm, CA certificates, user nonroot)"
    make_base "$runtime" ca-certificates prepare_runtime /usr/local/bin:/usr/bin:/bin
fi
echo "   bases ready ($((SECONDS - start)) s)"

work=$(mktemp -d)
image=localhost/procore-token-mcp-ci/procore-token-mcp:test
containers=()
cleanup() {
    local ctr
    for ctr in "${containers[@]}"; do bah rm "$ctr" >/dev/null 2>&1 || true; done
    bah rmi "$image" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building the Dockerfile from a clean clone of HEAD"
git clone --quiet --no-hardlinks "$repo" "$work/src"
git -C "$work/src" log --oneline -1
context=$work/src
# cargo in the build fetches crates from crates.io when the build container can reach it;
# otherwise the script vendors them here, into the clone (never committed), and points cargo
# at them.
ctr=$(bah from --quiet "$builder")
containers+=("$ctr")
# The check is cargo's own HTTPS request, so a proxy the container does not trust counts as
# unreachable too.
if ! bah run --isolation chroot "$ctr" -- cargo search --limit 1 anyhow >/dev/null 2>&1; then
    echo "   crates.io is unreachable from the build container: vendoring the dependencies"
    (cd "$context" && cargo vendor --locked vendor 2>/dev/null >"$work/vendor.toml")
    grep -q vendored-sources "$work/vendor.toml" || { echo "cargo vendor printed no source" >&2; exit 1; }
    mkdir -p "$context/.cargo"
    mv "$work/vendor.toml" "$context/.cargo/config.toml"
    # Admit the vendored crates and their configuration into this clone's build context.
    printf '!vendor/\n!.cargo/\n' >>"$context/.dockerignore"
else
    echo "   the build container reaches crates.io"
fi
build_start=$SECONDS
bah bud --quiet --isolation chroot --layers=false \
    --build-arg "BUILDER_IMAGE=$builder" --build-arg "RUNTIME_IMAGE=$runtime" \
    --tag "$image" "$context" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
echo "   built in $((SECONDS - build_start)) s"

echo "== checking the image's configuration"
python3 "$here/check.py" config "$(bah inspect --type image "$image")"

echo "== running the image: stdio, empty environment, tools/list"
ctr=$(bah from --quiet "$image")
containers+=("$ctr")
entrypoint=/usr/local/bin/procore-token-mcp
# `buildah run` takes the image's user; `env -i` leaves the server an empty environment.
python3 "$here/check.py" stdio env -i "$(command -v buildah)" "${storage[@]}" run --isolation chroot "$ctr" -- \
    "$entrypoint"

echo "== running the image: HTTP on a loopback port"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$here/check.py" http "$port" env -i "$(command -v buildah)" "${storage[@]}" run --isolation chroot "$ctr" -- \
    "$entrypoint" --transport http --listen "127.0.0.1:$port"

echo "== image test passed ($((SECONDS - start)) s)"
