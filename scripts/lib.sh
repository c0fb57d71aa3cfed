# shellcheck shell=bash
# What scripts/demo, scripts/test, scripts/test-cross and scripts/bench share:
# installing missing Debian packages, free loopback ports, and a private
# Mosquitto. Sourced, never run; callers set their own `set -euo pipefail`.

# Installed for this machine's architecture (other architectures may be
# installed too, for cross builds: dpkg-query then prints one status each).
is_installed() {
    dpkg-query -W -f='${Architecture} ${Status}\n' "$1" 2>/dev/null |
        grep -Ex "($(dpkg --print-architecture)|all) install ok installed" >/dev/null
}

# install_missing PKG...: apt-get installs those not installed yet (as root,
# or through sudo). Returns non-zero when that fails.
install_missing() {
    local missing=() p
    for p in "$@"; do
        is_installed "$p" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "missing packages: ${missing[*]} (not root and no sudo: install them first)" >&2
            return 1
        fi
    fi
    printf '==> installing %s\n' "${missing[*]}" >&2
    # A foreign-architecture index that fails to download must not stop us;
    # the install below says whether what we need was found.
    "${sudo[@]}" apt-get update || echo "warning: apt-get update reported errors" >&2
    # A package's postinst may start its service (rabbitmq-server does).
    # Where no service manager runs (a container, a chroot) that start fails,
    # and the install with it; callers start their own servers anyway. So
    # there, service starts are denied the Debian way while apt runs: a
    # policy-rc.d answering 101 (an existing one is left as it is).
    local policy=/usr/sbin/policy-rc.d added_policy=0 rc=0
    if [[ ! -d /run/systemd/system && ! -e $policy ]]; then
        printf '#!/bin/sh\n# tidegate scripts: no service starts during this apt-get run\nexit 101\n' |
            "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 755 "$policy" && added_policy=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" || rc=$?
    if [[ $added_policy == 1 ]]; then
        "${sudo[@]}" rm -f "$policy"
    fi
    return "$rc"
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_open PORT [HOST]
port_open() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

# start_mosquitto DIR PORT [HOST [CONFIG_LINE...]]: a private Mosquitto with
# its config, pid and log in DIR (created), listening on HOST:PORT (default
# 127.0.0.1), anonymous, no persistence. Daemonised (-d): its own session, so
# a Ctrl-C meant for a script's other children does not reach it. Waits until
# it listens; on failure prints its log and returns 1. Stop it with
# stop_mosquitto DIR.
start_mosquitto() {
    local dir=$1 port=$2 host=${3:-127.0.0.1}
    shift $(($# < 3 ? $# : 3))
    mkdir -p "$dir"
    chmod 755 "$dir"
    {
        echo "listener $port $host"
        echo "allow_anonymous true"
        echo "persistence false"
        echo "pid_file $dir/mosquitto.pid"
        echo "log_dest file $dir/mosquitto.log"
        local line
        for line in "$@"; do echo "$line"; done
    } >"$dir/mosquitto.conf"
    # Run as root, Mosquitto drops to user mosquitto, which writes the pid and log.
    if [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
        chown -R mosquitto: "$dir"
    fi
    mosquitto -c "$dir/mosquitto.conf" -d || true
    local _
    for _ in $(seq 100); do
        if [[ -s $dir/mosquitto.pid ]] && port_open "$port" "$host"; then
            return 0
        fi
        sleep 0.1
    done
    echo "mosquitto did not start on $host:$port:" >&2
    cat "$dir/mosquitto.log" >&2 2>/dev/null || true
    return 1
}

# The pid of the Mosquitto start_mosquitto DIR started, if any.
mosquitto_pid() { [[ -s $1/mosquitto.pid ]] && cat "$1/mosquitto.pid"; }

# stop_mosquitto DIR: SIGTERM, and waits up to 5 s for it to exit.
stop_mosquitto() {
    local pid _
    pid="$(mosquitto_pid "$1")" || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}
