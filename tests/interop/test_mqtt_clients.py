"""Three MQTT client stacks read what tidegate publishes to Mosquitto (SPEC §3,
§4): mosquitto_sub (C, libmosquitto; its %J output parses the payload as JSON),
Python paho-mqtt 1.6 and MQTT.js 5 (Node). Each receives live events and, as a
late joiner, the retained `state/<sensor>` and `status` topics, and the
envelope each one parsed is checked field by field. Run for a gateway speaking
MQTT 3.1.1 and one speaking MQTT 5 (MQTT.js then subscribes with MQTT 5 too)."""
from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from conftest import (MQTTJS_SRC, RFC3339_RE, Subscriber, check_reading_envelope,
                      project_version, sequence_sensor)

EVENTS = 10


class Reader:
    """A client program printing one JSON line per message on stdout,
    collected by a thread while it runs."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[dict] = []
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = json.loads(raw)
            if line.get("ready"):
                self.ready.set()
            else:
                self.lines.append(line)

    def wait_ready(self, timeout: float = 20.0):
        if not self.ready.wait(timeout):
            self.proc.kill()
            raise AssertionError(f"{self.argv[0]} not subscribed within {timeout} s: "
                                 f"{self.proc.stderr.read()}")

    def finish(self, timeout: float = 30.0) -> list[dict]:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{' '.join(self.argv)} still running after {timeout} s; "
                                 f"got {self.lines}") from None
        self._thread.join(5)
        err = self.proc.stderr.read()
        assert rc == 0, f"{' '.join(self.argv)} exited {rc}: {err}\ngot {self.lines}"
        return self.lines


def mosquitto_sub(port: int, topics: list[str], count: int, retained_only: bool = False,
                  version: str = "3.1.1") -> Reader:
    argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-C", str(count),
            "-W", "30", "-F", "%J", "-V", "5" if version == "5" else "311"]
    if retained_only:
        argv.append("--retained-only")
    for t in topics:
        argv += ["-t", t]
    return Reader(argv)


def mqttjs_receive(modules, port: int, topics: list[str], count: int, version: str) -> Reader:
    argv = ["node", str(MQTTJS_SRC / "receive.js"), "--url", f"mqtt://127.0.0.1:{port}",
            "--count", str(count), "--timeout", "30",
            "--protocol", "5" if version == "5" else "4"]
    for t in topics:
        argv += ["--topic", t]
    env = dict(os.environ, NODE_PATH=str(modules))
    reader = Reader(argv, env=env)
    reader.wait_ready()
    return reader


def check_status(status: dict, sensors: int) -> None:
    assert status["state"] == "online", status
    assert status["version"] == project_version(), status
    assert RFC3339_RE.match(status["started"]), status
    assert status["rules"] == 0 and status["sensors"] == sensors, status


def check_events(envs: list[dict], cfg, sensor: dict, who: str) -> None:
    assert len(envs) >= EVENTS, f"{who}: {len(envs)} events"
    for env in envs:
        check_reading_envelope(env, cfg.gateway_id, sensor)
    seqs = [e["seq"] for e in envs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{who}: seqs {seqs}"
    values = [e["value"] for e in envs]
    # The sequence profile cycles through its values: the numbers survive
    # every JSON parser unchanged (35, not 35.0; 0.1 exactly).
    cycle = sensor["options"]["values"]
    start = cycle.index(values[0])
    assert values == [cycle[(start + i) % len(cycle)] for i in range(len(values))], \
        f"{who}: values {values}"


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_three_client_stacks_read_events_and_retained_topics(
        version, make_config, start_gateway, broker_port, mqttjs):
    sensor = sequence_sensor(interval="100ms")
    cfg = make_config(sensors=[sensor], mqtt={"version": version})
    events = cfg.topic("events", sensor["name"])
    state = cfg.topic("state", sensor["name"])
    status = cfg.topic("status")

    # Live subscribers, before the gateway starts.
    paho_live = Subscriber(broker_port, events)
    js_live = mqttjs_receive(mqttjs, broker_port, [events], EVENTS, version)
    sub_live = mosquitto_sub(broker_port, [events], EVENTS, version=version)
    gw = start_gateway(cfg)
    try:
        paho_msgs = paho_live.wait_count(EVENTS, topic=events, timeout=20)
        js_lines = js_live.finish()
        sub_lines = sub_live.finish()
    finally:
        paho_live.close()

    check_events([m.json() for m in paho_msgs[:EVENTS]], cfg, sensor, "paho")
    assert all(not m.retain and m.qos == 1 for m in paho_msgs), "events are not retained"
    for who, lines in (("MQTT.js", js_lines), ("mosquitto_sub", sub_lines)):
        assert all(line["topic"] == events for line in lines), lines
        assert all(not line["retain"] and line["qos"] == 1 for line in lines), lines
        assert all("error" not in line for line in lines), f"{who} could not parse: {lines}"
        check_events([line["envelope"] if who == "MQTT.js" else line["payload"]
                      for line in lines], cfg, sensor, who)

    # Late joiners: the retained state and status, and nothing else.
    js_late = mqttjs_receive(mqttjs, broker_port, [state, status], 2, version)
    sub_late = mosquitto_sub(broker_port, [state, status], 2, retained_only=True,
                             version=version)
    paho_late = Subscriber(broker_port, [state, status])
    try:
        paho_ret = paho_late.wait_for(
            lambda ms: {m.topic for m in ms if m.retain} == {state, status} and ms,
            what="retained state and status")
    finally:
        paho_late.close()
    late = {
        "paho": [(m.topic, m.retain, m.json()) for m in paho_ret],
        "MQTT.js": [(line["topic"], line["retain"], line["envelope"])
                    for line in js_late.finish()],
        "mosquitto_sub": [(line["topic"], bool(line["retain"]), line["payload"])
                          for line in sub_late.finish()],
    }
    for who, got in late.items():
        # A live update of state/ may follow the retained copy; the retained
        # ones are what a late joiner is given.
        retained = {topic: body for topic, retain, body in got if retain}
        assert set(retained) == {state, status}, f"{who}: retained {got}"
        check_status(retained[status], sensors=1)
        check_reading_envelope(retained[state], cfg.gateway_id, sensor)
    assert gw.terminate() == 0
