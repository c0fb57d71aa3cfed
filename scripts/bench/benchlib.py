"""What scripts/bench/vs-nodered and scripts/bench/edge-fitness share: ports,
the CPU time and memory of a process, and the bare Paho C++ relay (the floor
both compare tidegate against)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build-host" / "bench-cache"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process, every thread."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread: {tid: (name, seconds)}."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def thread_cpu_delta(before: dict[int, tuple[str, float]],
                     after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two thread_cpu() readings, by thread name
    (the main thread under the process's name)."""
    out: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        out[name] = out.get(name, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    return out


def rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup as {field: KiB}."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0].rstrip(":")] = int(parts[1])
    return out


def build_relay() -> Path:
    """scripts/bench/paho_relay.cpp built with g++ against Debian's Paho C++,
    warnings as errors, into the cache (again when the source is newer)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    relay = CACHE / "paho_relay"
    src = REPO / "scripts" / "bench" / "paho_relay.cpp"
    if not relay.exists() or relay.stat().st_mtime < src.stat().st_mtime:
        print("==> building the Paho C++ relay", flush=True)
        subprocess.run(["g++", "-O2", "-std=c++20", "-Wall", "-Wextra", "-Werror", str(src),
                        "-lpaho-mqttpp3", "-lpaho-mqtt3as", "-o", str(relay)], check=True)
    return relay
