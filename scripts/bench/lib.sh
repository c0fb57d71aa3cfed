# Shared by scripts/bench/run and scripts/bench/drain (sourced, not run):
# packages, the release build, a temp folder with cleanup, private Mosquitto
# brokers on free loopback ports, and the mosquitto_pub baseline.
# shellcheck shell=bash
# Variables set here (BIN, GW_PREFIX, BASE_RATE, …) are for the scripts that
# source this file; PORT is theirs to set.
# shellcheck disable=SC2034,SC2153

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
cd "$REPO" || exit 1
PY=/usr/bin/python3
BIN="${TIDEGATE_BIN:-$REPO/build-host/firmware-gateway/tidegate}"
# BENCH_CPUS=LIST runs the gateways under `taskset -c LIST` (e.g. 1): see
# scripts/bench/drain for why one CPU can be faster than two.
GW_PREFIX=()
[[ -n "${BENCH_CPUS:-}" ]] && GW_PREFIX=(taskset -c "$BENCH_CPUS")

log() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# need_whole_seconds NAME...: each variable must be a whole number >= 1.
need_whole_seconds() {
    local v
    for v in "$@"; do
        if [[ ! "${!v}" =~ ^[0-9]+$ ]] || [[ "${!v}" -lt 1 ]]; then
            echo "$(basename "$0"): $v must be a whole number of seconds >= 1" >&2
            exit 2
        fi
    done
}

# --- packages, free ports (scripts/lib.sh) ----------------------------------
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
install_missing g++ cmake make pkg-config libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev \
    nlohmann-json3-dev libyaml-cpp-dev catch2 mosquitto mosquitto-clients python3 procps \
    binutils strace util-linux

# --- release build if needed (incremental: a no-op when up to date) ----------
# The host preset's daemon (build-host/), the one scripts/test and scripts/demo
# build; the bench preset is for the Google Benchmark programs.
build_tidegate() {
    # TIDEGATE_BIN=PATH measures that binary instead (e.g. an older build).
    [[ -n "${TIDEGATE_BIN:-}" ]] && return 0
    if [[ ! -f build-host/CMakeCache.txt ]]; then
        log "configuring the release build (preset host, build-host/)"
        cmake --preset host >/dev/null
    fi
    log "building tidegate"
    cmake --build --preset host --target tidegate >/dev/null
}

# --- temp folders, processes, cleanup -----------------------------------------
# WORK holds brokers, configs and received messages; DATA the gateways'
# data_dirs, on a disk file system (BENCH_DATA_DIR, default /var/tmp: /tmp
# may be a tmpfs, where nothing reaches a device and fsync costs nothing).
# BENCH_KEEP=1 keeps both (logs, received messages) for a look afterwards.
WORK="$(mktemp -d /tmp/tidegate-bench.XXXXXX)"
chmod 755 "$WORK"
DATA="$(mktemp -d "${BENCH_DATA_DIR:-/var/tmp}/tidegate-bench-data.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ -n "${BENCH_KEEP:-}" ]]; then
        echo "kept: $WORK $DATA" >&2
    else
        rm -rf -- "$WORK" "$DATA"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# "ext4 on /dev/vda" for the folder $1.
filesystem_of() {
    findmnt -n -o FSTYPE,SOURCE --target "$1" 2>/dev/null | awk '{ print $1 " on " $2 }' ||
        stat -f -c %T "$1"
}

# start_broker PORT NAME: a private Mosquitto on 127.0.0.1:PORT; its pid in
# BROKER_PID (also cleaned up on exit).
start_broker() {
    local port="$1" dir="$WORK/mosquitto-$2"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1 && chown mosquitto: "$dir"
    cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 0
persistence false
log_dest stderr
log_type error
CONF
    mosquitto -c "$dir/mosquitto.conf" 2>"$dir/log" &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    local _
    for _ in $(seq 200); do port_open "$port" && return 0; sleep 0.05; done
    cat "$dir/log" >&2
    echo "mosquitto did not start on port $port" >&2
    exit 1
}

# write_config NAME SENSORS_YAML -> path of a config for gateway bench-NAME-$$,
# its data_dir under DATA.
write_config() {
    local name="$1" sensors="$2" dir="$WORK/$1"
    mkdir -p "$dir/rules.d"
    cat >"$dir/cfg.yaml" <<CFG
gateway:
  id: bench-$name-$$
  data_dir: $DATA/$name
mqtt:
  uri: tcp://127.0.0.1:$PORT
rules:
  paths: [$dir/rules.d]
sensors:
$sensors
CFG
    echo "$dir/cfg.yaml"
}

# sensors_yaml COUNT INTERVAL PREFIX: simulated sine sensors PREFIX.s0...
sensors_yaml() {
    local i
    for i in $(seq 0 $(($1 - 1))); do
        printf '  - name: %s.s%d\n    driver: simulated\n    interval: %s\n' "$3" "$i" "$2"
        printf '    unit: "°C"\n    options: { profile: sine, min: 0, max: 100, period: 60s }\n'
    done
}

# baseline N: sends N envelopes like the gateway's through `mosquitto_pub -l
# -q 1 -M 1000` to the broker on PORT, received by a QoS 1 `mosquitto_sub -C
# N`. Sets BASE_RATE (N / wall time from the publisher's start until the
# subscriber got the last one) and BASE_GOT (messages received).
baseline() {
    local n="$1" sub pub t1 t2 deadline
    [[ $n -lt 1000 ]] && n=1000
    log "baseline: $n messages through mosquitto_pub -l -q 1"
    # Messages like the gateway's: the envelope of SPEC §4 with a growing seq.
    awk -v n="$n" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"v\":1,\"id\":\"bench-base:%d\",\"type\":\"reading\",\"gateway\":\"bench-base\",\"seq\":%d,\"source\":\"bench.fast\",\"ts\":\"2026-11-26T17:15:53.123Z\",\"value\":%.4f,\"unit\":\"°C\"}\n", i, i, 50 + 50 * sin(i / 100)
    }' >"$WORK/baseline.jsonl"
    mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -C "$n" -t "bench/baseline-$$" \
        >"$WORK/baseline.received" &
    sub=$!
    PIDS+=("$sub")
    sleep 0.5
    # mosquitto_pub -l (2.0.11) disconnects at end of input without waiting for
    # the QoS 1 messages still queued, losing most of a fast burst: its input is
    # held open until the subscriber has them all.
    t1="$(now)"
    { cat "$WORK/baseline.jsonl"; while kill -0 "$sub" 2>/dev/null; do sleep 0.05; done; } |
        mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -M 1000 -l -t "bench/baseline-$$" &
    pub=$!
    PIDS+=("$pub")
    deadline=$((SECONDS + 120))
    while kill -0 "$sub" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.01; done
    t2="$(now)"
    BASE_GOT="$(wc -l <"$WORK/baseline.received")"
    if kill -0 "$sub" 2>/dev/null; then
        echo "baseline: only $BASE_GOT of $n messages arrived within 120 s" >&2
        kill "$sub" 2>/dev/null || true
    fi
    wait "$sub" 2>/dev/null || true
    wait "$pub" 2>/dev/null || true
    BASE_RATE="$(calc '%.0f' "$BASE_GOT / ($t2 - $t1)")"
}

row() { printf '%-50s %s\n' "$1" "$2"; }
