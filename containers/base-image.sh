#!/usr/bin/env bash
# Ensure the lab's base image pamconform/base:<DISTRO> exists in the engine.
#
#   containers/base-image.sh [DISTRO]      DISTRO: bookworm (default) or trixie
#
#   1. already there                          -> no-op
#   2. engine has debian:<DISTRO>-slim        -> tag it
#   3. `docker pull debian:<DISTRO>-slim`     -> tag it (bounded by PULL_TIMEOUT seconds)
#   4. debootstrap --variant=minbase DISTRO   -> docker import (needs root; installs
#                                                debootstrap with apt-get if missing)
#
# Needs a reachable engine (run containers/ensure-engine.sh first). Progress on stderr.
# Environment: PAMCONFORM_BASE_TAG, PAMCONFORM_SUITE (the DISTRO when no argument is
#              given), PAMCONFORM_MIRROR, PAMCONFORM_PULL_TIMEOUT (20),
#              PAMCONFORM_FORCE_DEBOOTSTRAP=1 (skip 2 and 3).
set -euo pipefail

SUITE="${1:-${PAMCONFORM_SUITE:-bookworm}}"
case "$SUITE" in
    bookworm|trixie) ;;
    *) printf 'base-image: unsupported distro %s (bookworm or trixie)\n' "$SUITE" >&2; exit 2 ;;
esac
TAG="${PAMCONFORM_BASE_TAG:-pamconform/base:${SUITE}}"
UPSTREAM="debian:${SUITE}-slim"
MIRROR="${PAMCONFORM_MIRROR:-http://deb.debian.org/debian}"
PULL_TIMEOUT="${PAMCONFORM_PULL_TIMEOUT:-20}"

say() { printf 'base-image: %s\n' "$*" >&2; }
have_image() { timeout 30 docker image inspect "$1" >/dev/null 2>&1; }

if ! timeout 10 docker info >/dev/null 2>&1; then
    say "no Docker engine answers; run containers/ensure-engine.sh first"
    exit 1
fi

if have_image "$TAG"; then
    say "$TAG already present"
    exit 0
fi

if [[ "${PAMCONFORM_FORCE_DEBOOTSTRAP:-0}" != 1 ]]; then
    if have_image "$UPSTREAM"; then
        say "tagging local $UPSTREAM as $TAG"
        timeout 60 docker tag "$UPSTREAM" "$TAG"
        exit 0
    fi
    say "trying docker pull $UPSTREAM (timeout ${PULL_TIMEOUT} s)"
    if timeout -k 5 "$PULL_TIMEOUT" docker pull -q "$UPSTREAM" >&2 2>/dev/null \
        && have_image "$UPSTREAM"; then
        say "pulled; tagging $UPSTREAM as $TAG"
        timeout 60 docker tag "$UPSTREAM" "$TAG"
        exit 0
    fi
    say "pull failed or timed out; building $TAG with debootstrap"
fi

if [[ "$(id -u)" -ne 0 ]]; then
    say "debootstrap needs root; re-run as root, or load $UPSTREAM into the engine and re-run"
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >&2
    timeout 300 apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

# the root filesystem and debootstrap's log in one private directory, removed on any exit
WORK="$(mktemp -d /var/tmp/pamconform-rootfs.XXXXXX)"
DIR="$WORK/rootfs"
LOG="$WORK/debootstrap.log"
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT
# A long step runs in the background, bounded by timeout, which puts itself and what it
# starts in a process group of its own: a stop (INT, TERM) is passed to that group, so
# debootstrap never outlives this script, and the wait returns at once to clean up.
child=""
stop() { [[ -n "$child" ]] && kill -TERM -- "-$child" 2>/dev/null; exit 130; }
trap stop INT TERM
bounded() { timeout -k 10 "$@" & child=$!; wait "$child"; local rc=$?; child=""; return "$rc"; }

start=$SECONDS
say "debootstrap --variant=minbase $SUITE into $DIR (about a minute)"
bounded 900 debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR" >"$LOG" 2>&1 || {
    say "debootstrap failed; last lines of its log:"
    tail -n 20 "$LOG" >&2
    exit 1
}

# Same apt sources as the official slim image (main, updates, security), and its size habits.
rm -f "$DIR/etc/apt/sources.list"
cat >"$DIR/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/* \
    "$DIR"/var/log/*.log "$DIR"/var/log/apt/* "$DIR"/tmp/* "$DIR"/proc/* "$DIR"/sys/* \
    "$DIR"/dev/* 2>/dev/null || true
: >"$DIR/etc/hostname"
: >"$DIR/etc/resolv.conf"
say "debootstrap done in $((SECONDS - start)) s; importing"

start=$SECONDS
tar --numeric-owner -C "$DIR" -c . | timeout 600 docker import \
    --change "LABEL pamconform.base=${SUITE}" \
    --change "LABEL org.opencontainers.image.description=\"pamconform base (debootstrap minbase ${SUITE})\"" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "$TAG" >/dev/null
say "imported $TAG in $((SECONDS - start)) s"
