"""Hostile sensor values through the real gateway: whatever bytes a device
publishes, the events it causes are valid JSON text (UTF-8), so no consumer
chokes on the stream (SPEC §4: the envelope is JSON, UTF-8)."""

from __future__ import annotations

import json
import subprocess

from tidegate_testkit import Subscriber


def test_invalid_utf8_in_a_string_reading_still_makes_valid_json(make_config, start_gateway,
                                                                 broker_port):
    cfg = make_config(sensors=[{"name": "dev.label", "driver": "mqtt", "type": "string",
                                "options": {"topic": "it-hostile/label"}}])
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    gw.wait_for_log(r"connected to", timeout=10)
    sub.wait_count(1, topic=cfg.topic("status"))
    raw = b"caf\xc3\xa9 \xff\xfe \xed\xa0\x80 \"quoted\"\x01"
    subprocess.run(["mosquitto_pub", "-p", str(broker_port), "-q", "1", "-t", "it-hostile/label",
                    "-s"], input=raw, check=True, timeout=10)
    msgs = sub.wait_count(1, topic=cfg.topic("events", "dev.label"))
    text = msgs[0].payload.decode("utf-8")  # strict: raises on invalid UTF-8
    env = json.loads(text)
    assert env["value"] == "caf\u00e9 \ufffd\ufffd \ufffd\ufffd\ufffd \"quoted\"\x01", env
    state = sub.wait_count(1, topic=cfg.topic("state", "dev.label"))
    json.loads(state[0].payload.decode("utf-8"))
    assert gw.running()
    assert gw.terminate() == 0
