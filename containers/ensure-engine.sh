#!/usr/bin/env bash
# Make sure a Docker engine is reachable for the pamconform lab.
#
#   - engine answers `docker info`            -> exit 0 (nothing done)
#   - root on Debian/Ubuntu, no engine        -> install docker.io if dockerd is missing,
#                                                start dockerd in the background, wait for it
#   - anything else                           -> print what to do, exit 1
#
# Idempotent; every wait is bounded. Progress goes to stderr.
# Environment: PAMCONFORM_ENGINE_WAIT (seconds to wait for dockerd, default 60),
#              PAMCONFORM_DOCKERD_LOG (default /var/log/pamconform-dockerd.log).
set -euo pipefail

WAIT_S="${PAMCONFORM_ENGINE_WAIT:-60}"
LOG="${PAMCONFORM_DOCKERD_LOG:-/var/log/pamconform-dockerd.log}"
PIDFILE=/var/run/docker.pid

say() { printf 'ensure-engine: %s\n' "$*" >&2; }

engine_up() {
    command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

advise() {
    cat >&2 <<'EOF'
ensure-engine: no Docker engine is reachable and this script cannot start one here
(it needs root on Debian/Ubuntu). Install and start Docker yourself (e.g. `sudo apt-get
install docker.io && sudo systemctl start docker`, or Docker Desktop), make sure your user
can talk to it (`docker info` must work, e.g. add yourself to the `docker` group or set
DOCKER_HOST), then run the pamconform lab again.
EOF
    exit 1
}

if engine_up; then
    say "engine reachable"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    advise
fi
os_ids=""
if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    os_ids="$(. /etc/os-release && echo "${ID:-} ${ID_LIKE:-}")"
fi
case " $os_ids " in
    *" debian "* | *" ubuntu "*) ;;
    *) advise ;;
esac
if [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != unix:///var/run/docker.sock ]]; then
    say "DOCKER_HOST=${DOCKER_HOST} does not answer; not starting a local engine for it"
    advise
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd missing: installing docker.io with apt-get (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >&2
    timeout 600 apt-get install -y -qq --no-install-recommends docker.io >&2
    command -v dockerd >/dev/null 2>&1 || { say "docker.io installed but no dockerd"; exit 1; }
fi
if ! command -v docker >/dev/null 2>&1; then
    say "no docker client on PATH"
    advise
fi

running_pid=""
if [[ -s "$PIDFILE" ]]; then
    pid="$(cat "$PIDFILE")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
        running_pid="$pid"
    fi
fi

if [[ -n "$running_pid" ]]; then
    say "dockerd already running (pid $running_pid); waiting for it to answer"
else
    say "starting dockerd in the background (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    # containerd is started by dockerd itself when not running as a service.
    nohup setsid dockerd >>"$LOG" 2>&1 </dev/null &
    disown || true
fi

start=$SECONDS
while ((SECONDS - start < WAIT_S)); do
    if engine_up; then
        say "engine up after $((SECONDS - start)) s"
        exit 0
    fi
    sleep 1
done
say "dockerd did not answer within ${WAIT_S} s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 2>/dev/null || true
exit 1
