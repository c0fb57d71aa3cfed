"""Bursts and overload on the MQTT input path, against the real binary and a
real Mosquitto (SPEC §7, input that outruns the event loop).

- Repeated bursts of 40 000 QoS 1 inputs pushed by `mosquitto_pub -l`: every
  burst delivers every output, and the gateway stays responsive between them
  (it used to deadlock: Paho's receive thread blocked in the message callback
  on a full queue while the loop waited for a Paho mutex to publish).
- Two minutes of input at about twice what the loop can take: the gateway
  sheds visibly (the `overload` counter and dead letters), a reading on
  another sensor still switches an output quickly, and SIGTERM exits in 5 s.

The soak lasts TIDEGATE_SOAK_SECONDS (default 120).
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tidegate_testkit import Subscriber

BURST = 40_000


def rules_file(cfg, text: str) -> Path:
    path = cfg.path.parent / "rules.d" / "burst.yaml"
    path.write_text(text)
    return path


def burst_config(make_config, tag: str, extra_sensors=(), extra=None):
    sensors = [{"name": "bench.t", "driver": "mqtt", "publish": "none",
                "options": {"topic": f"it-burst/{tag}/in", "json_pointer": "/temperature"}},
               *extra_sensors]
    cfg = make_config(sensors=sensors, extra=extra or {})
    rules_file(cfg, f"""rules:
  - name: bench_hot
    when: bench.t > 50
    actions:
      - publish: {{ topic: it-burst/{tag}/out, payload: '{{"t": 60}}', qos: 1 }}
""")
    return cfg


def push(port: int, topic: str, count: int, hot_every: int = 2) -> None:
    """`count` QoS 1 messages, alternating 40 / 60, through one mosquitto_pub -l."""
    lines = "".join('{"temperature": 60}\n' if i % hot_every == hot_every - 1
                    else '{"temperature": 40}\n' for i in range(count))
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-t", topic, "-l", "-M", "1000"], input=lines.encode(), check=True,
                   timeout=120)


class Counter:
    """Counts the messages on one topic with a QoS 1 subscription (no list:
    a burst is 20 000 messages)."""

    def __init__(self, port: int, topic: str):
        self.count = 0
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.client = mqtt.Client(client_id=f"it-burst-count-{os.getpid()}-{id(self)}",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.ready.wait(10), "counter not subscribed"

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.count < n and time.monotonic() < deadline:
                self.cond.wait(0.5)
            return self.count

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def latest_metrics(sub: Subscriber, topic: str) -> dict | None:
    msgs = sub.snapshot(topic)
    return msgs[-1].json() if msgs else None


def test_repeated_bursts_deliver_every_output(make_config, start_gateway, broker_port):
    cfg = burst_config(make_config, "rep", extra={"metrics": {"interval": "1s"}})
    out_topic = "it-burst/rep/out"
    counter = Counter(broker_port, out_topic)
    metrics = Subscriber(broker_port, cfg.topic("metrics"))
    gw = start_gateway(cfg, log_level="info")
    try:
        gw.wait_for_log(r"connected to", timeout=10)
        metrics.wait_count(1, timeout=10)  # subscribed: the mqtt sensor's SUBACK came before
        for burst in range(1, 4):
            push(broker_port, "it-burst/rep/in", BURST)
            expected = burst * BURST // 2
            got = counter.wait(expected, timeout=90)
            assert got == expected, (
                f"burst {burst}: {got - (burst - 1) * BURST // 2} of {BURST // 2} outputs "
                f"arrived\n--- gateway stderr (tail) ---\n{gw.log()[-4000:]}")
            assert gw.running()
            # Responsive between bursts: a fresh metrics message arrives.
            before = len(metrics.snapshot())
            metrics.wait_count(before + 1, timeout=10)
        m = latest_metrics(metrics, cfg.topic("metrics"))
        assert m["events_in"] >= 3 * BURST, m
        # 60 000 transitions, but the log is not flooded: 20 lines a minute
        # per rule, the rest summed up.
        lines = gw.log().count("INFO rules: bench_hot ")
        assert lines <= 20, f"{lines} transition log lines"
        assert m.get("overload", 0) == 0, f"a burst of {BURST} must not be shed: {m}"
        t0 = time.monotonic()
        assert gw.terminate(timeout=10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        counter.close()
        metrics.close()


def test_sustained_overload_sheds_visibly_and_stays_responsive(make_config, start_gateway,
                                                               broker_port, tmp_path):
    soak = float(os.environ.get("TIDEGATE_SOAK_SECONDS", "120"))
    # A fast input that alone keeps the loop busy, and a slow sensor on a
    # serial line (a real pseudo-terminal: its reading does not queue behind
    # the flood in the broker) whose rule switches a file output: its
    # reaction time is what must not suffer.
    out_file = tmp_path / "relay"
    out_file.write_text("0")
    master, slave = pty.openpty()
    cfg = burst_config(
        make_config, "soak",
        extra_sensors=[{"name": "door.level", "driver": "serial",
                        "options": {"device": os.ttyname(slave), "baud": 9600,
                                    "format": "number"}}],
        extra={"metrics": {"interval": "1s"}, "mqtt": {"input_buffer": "64KiB"},
               "outputs": [{"name": "relay", "driver": "file",
                            "options": {"path": str(out_file), "on": "1", "off": "0"}}]})
    rules_file(cfg, """rules:
  - name: bench_hot
    when: bench.t > 50
    actions:
      - publish: { topic: it-burst/soak/out, payload: '{"t": 60}', qos: 1 }
  - name: door_relay
    when: door.level > 0.5
    actions:
      - output: { name: relay, value: on }
    on_clear:
      - output: { name: relay, value: off }
""")
    metrics = Subscriber(broker_port, [cfg.topic("metrics"), cfg.topic("deadletter")])
    gw = start_gateway(cfg, log_level="info")
    gw.wait_for_log(r"connected to", timeout=10)
    metrics.wait_count(1, topic=cfg.topic("metrics"), timeout=10)

    # Input from several publishers at once, as fast as the broker takes it:
    # well over what one loop turns into rule evaluations and outputs.
    stop = threading.Event()

    def flood(n: int):
        while not stop.is_set():
            push(broker_port, "it-burst/soak/in", 20_000)

    floods = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(1)]
    for t in floods:
        t.start()

    reactions = []
    try:
        end = time.monotonic() + soak
        state = False
        while time.monotonic() < end:
            time.sleep(1.0)
            state = not state
            want = "1" if state else "0"
            t0 = time.monotonic()
            os.write(master, b"1\n" if state else b"0\n")
            while out_file.read_text() != want:
                if time.monotonic() - t0 > 10:
                    raise AssertionError(f"the relay did not switch to {want} within 10 s "
                                         f"under overload\n{gw.log()[-4000:]}")
                time.sleep(0.002)
            reactions.append(time.monotonic() - t0)
            assert gw.running()
    finally:
        stop.set()
    reactions.sort()
    p99 = reactions[min(len(reactions) - 1, int(len(reactions) * 0.99))]
    print(f"door -> relay under overload: n={len(reactions)} median="
          f"{reactions[len(reactions) // 2] * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
          f"max={reactions[-1] * 1000:.1f} ms")
    assert p99 < 0.1, f"p99 reaction {p99 * 1000:.0f} ms"

    m = metrics.wait_for(lambda ms: [x.json() for x in ms if x.topic == cfg.topic("metrics")
                                     and x.json().get("overload", 0) > 0],
                         timeout=15, what="metrics with overload > 0")[-1]
    print(f"metrics after the soak: {m}")
    dead = [x.json() for x in metrics.snapshot(cfg.topic("deadletter"))
            if x.json().get("reason") == "overload"]
    assert dead, "overload must be dead-lettered"
    assert dead[0]["source"] == "mqtt"
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    try:
        rc = gw.proc.wait(5)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"SIGTERM not honoured within 5 s under overload\n{gw.log()[-4000:]}")
    assert rc == 0
    print(f"SIGTERM to exit: {time.monotonic() - t0:.2f} s")
    for t in floods:
        t.join(timeout=130)
    metrics.close()
    os.close(master)
    os.close(slave)
