"""Sagas (SPEC §12) through the real gateway, with sensors fed over MQTT and
file outputs: the steps confirmed one by one, a step that times out undone in
reverse with on_failure, a failed action, and a SIGKILL mid-saga: resumed
after a quick restart, restart_expired after a long one. Saga events on
<p>/sagas/<rule> (retained)."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt

from tidegate_testkit import Subscriber

RULE = """rules:
  - name: irrigate
    when: soil < 20
    clear_when: soil > 35
    saga:
      steps:
        - name: open_valve
          do: [ {{ output: {{ name: valve, value: on }} }} ]
          expect: flow > 0.5
          within: {within}
          undo: [ {{ output: {{ name: valve, value: off }} }} ]
        - name: start_pump
          do: [ {{ output: {{ name: pump, value: on }} }} ]
          expect: pressure > 1.2
          within: {within}
          undo: [ {{ output: {{ name: pump, value: off }} }} ]
      on_failure:
        - publish: {{ topic: "it-saga/{{{{gateway}}}}/alert", payload: '{{{{step}}}} failed' }}
"""


class Feeder:
    def __init__(self, port: int):
        self.client = mqtt.Client(client_id="", clean_session=True, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def send(self, topic: str, value: str) -> None:
        info = self.client.publish(topic, value.encode(), qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def setup_gateway(make_config, tmp_path, within="3s", valve_folder=None):
    folder = valve_folder or tmp_path / "out"
    folder.mkdir(exist_ok=True)
    (tmp_path / "pumpdir").mkdir(exist_ok=True)
    sensors = [{"name": n, "driver": "mqtt", "options": {"topic": f"it-saga/{{gw}}/{n}"}}
               for n in ("soil", "flow", "pressure")]
    cfg = make_config(sensors=sensors, extra={"outputs": [
        {"name": "valve", "driver": "file", "options": {"path": str(folder / "valve"),
                                                        "initial": "off"}},
        {"name": "pump", "driver": "file", "options": {"path": str(tmp_path / "pumpdir" / "pump"),
                                                       "initial": "off"}}]})
    cfg.path.write_text(cfg.path.read_text().replace("{gw}", cfg.gateway_id))
    (cfg.path.parent / "rules.d" / "irrigate.yaml").write_text(RULE.format(within=within))
    return cfg, folder / "valve", tmp_path / "pumpdir" / "pump"


def topic_in(cfg, name):
    return f"it-saga/{cfg.gateway_id}/{name}"


def prime(feeder, sub, cfg):
    """Feeds dry-free readings until they come back: the inputs are subscribed."""
    deadline = time.monotonic() + 15
    while not sub.snapshot(cfg.topic("events", "soil")):
        assert time.monotonic() < deadline, "the gateway never read soil"
        feeder.send(topic_in(cfg, "soil"), "50")
        feeder.send(topic_in(cfg, "flow"), "0")
        feeder.send(topic_in(cfg, "pressure"), "1")
        time.sleep(0.2)


def saga_events(sub, cfg):
    return [m.json() for m in sub.snapshot(cfg.topic("sagas") + "/irrigate")]


def wait_saga(sub, cfg, n, what):
    return sub.wait_for(lambda ms: len(saga_events(sub, cfg)) >= n and saga_events(sub, cfg),
                        timeout=15, what=what)


def kinds(evs):
    return [(e["type"], e["step"]) + ((e["reason"],) if "reason" in e else ()) for e in evs]


def test_saga_steps_confirmed_complete(make_config, start_gateway, broker_port, tmp_path):
    cfg, valve, pump = setup_gateway(make_config, tmp_path, within="10s")
    sub = Subscriber(broker_port, [cfg.topic("sagas") + "/#", cfg.topic("events") + "/#"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    prime(feeder, sub, cfg)
    feeder.send(topic_in(cfg, "soil"), "15")
    evs = wait_saga(sub, cfg, 1, "saga_started")
    assert evs[0]["type"] == "saga_started" and evs[0]["step"] == "open_valve", evs
    assert evs[0]["value"] == "running" and evs[0]["rule"] == "irrigate"
    assert evs[0]["source"] == "rule:irrigate" and evs[0]["gateway"] == cfg.gateway_id
    assert valve.read_text() == "1" and pump.read_text() == "0"
    feeder.send(topic_in(cfg, "flow"), "0.9")
    wait_saga(sub, cfg, 2, "open_valve confirmed")
    assert pump.read_text() == "1"
    feeder.send(topic_in(cfg, "pressure"), "1.6")
    evs = wait_saga(sub, cfg, 4, "completed")
    assert kinds(evs) == [("saga_started", "open_valve"), ("saga_step", "open_valve"),
                          ("saga_step", "start_pump"), ("saga_completed", "start_pump")]
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs)
    # Retained: a late subscriber sees the latest.
    late = Subscriber(broker_port, cfg.topic("sagas") + "/irrigate")
    got = late.wait_for(lambda ms: ms, timeout=5, what="the retained saga event")
    assert got[0].retain and got[0].json()["type"] == "saga_completed"
    late.close()
    feeder.close()
    assert gw.terminate() == 0


def test_saga_timeout_compensates_in_reverse(make_config, start_gateway, broker_port, tmp_path):
    cfg, valve, pump = setup_gateway(make_config, tmp_path, within="2s")
    sub = Subscriber(broker_port, [cfg.topic("sagas") + "/#", cfg.topic("events") + "/#",
                                   cfg.topic("outputs") + "/#", f"it-saga/{cfg.gateway_id}/alert"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    prime(feeder, sub, cfg)
    feeder.send(topic_in(cfg, "soil"), "15")
    wait_saga(sub, cfg, 1, "saga_started")
    feeder.send(topic_in(cfg, "flow"), "0.9")
    evs = wait_saga(sub, cfg, 4, "start_pump failing after 2 s")
    assert kinds(evs) == [("saga_started", "open_valve"), ("saga_step", "open_valve"),
                          ("saga_failed", "start_pump", "timeout"),
                          ("saga_compensated", "start_pump")]
    assert valve.read_text() == "0" and pump.read_text() == "0"
    # Undone in reverse: pump off before valve off, both before `compensated`.
    outs = [(m.topic.rsplit("/", 1)[1], m.json()["value"], m.json()["seq"])
            for m in sub.snapshot(prefix=cfg.topic("outputs") + "/")]
    offs = [(name, seq) for name, value, seq in outs if value == "off" and seq > evs[2]["seq"]]
    assert [n for n, _ in offs] == ["pump", "valve"], outs
    assert all(seq < evs[3]["seq"] for _, seq in offs)
    alert = sub.wait_for(lambda ms: [m for m in ms if m.topic.endswith("/alert")], timeout=5,
                         what="on_failure's publish")
    assert alert[0].payload == b"start_pump failed"
    feeder.close()
    assert gw.terminate() == 0


def test_saga_failed_action_compensates(make_config, start_gateway, broker_port, tmp_path):
    gone = tmp_path / "gone"
    cfg, valve, pump = setup_gateway(make_config, tmp_path, within="30s", valve_folder=gone)
    gone.rmdir()  # the valve cannot be switched
    sub = Subscriber(broker_port, [cfg.topic("sagas") + "/#", cfg.topic("events") + "/#"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    prime(feeder, sub, cfg)
    feeder.send(topic_in(cfg, "soil"), "15")
    evs = wait_saga(sub, cfg, 3, "the failed action compensated")
    assert kinds(evs) == [("saga_started", "open_valve"),
                          ("saga_failed", "open_valve", "action_failed"),
                          ("saga_compensated", "open_valve")]
    feeder.close()
    assert gw.terminate() == 0


def test_saga_survives_sigkill(make_config, start_gateway, broker_port, tmp_path):
    cfg, valve, pump = setup_gateway(make_config, tmp_path, within="6s")
    sub = Subscriber(broker_port, [cfg.topic("sagas") + "/#", cfg.topic("events") + "/#"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    prime(feeder, sub, cfg)
    feeder.send(topic_in(cfg, "soil"), "15")
    wait_saga(sub, cfg, 1, "saga_started")
    time.sleep(0.5)  # the rule state (with the saga) is written in the background
    gw.kill()
    # A quick restart: the step resumes with what is left of its 6 s.
    gw = start_gateway(cfg)
    gw.wait_for_log(r"resumed rule state", timeout=10)
    # Sent until read: the restarted gateway subscribes once it is connected.
    before = len(sub.snapshot(cfg.topic("events", "flow")))
    deadline = time.monotonic() + 5
    while len(sub.snapshot(cfg.topic("events", "flow"))) == before:
        assert time.monotonic() < deadline, "the restarted gateway never read flow"
        feeder.send(topic_in(cfg, "flow"), "0.9")
        time.sleep(0.1)
    evs = wait_saga(sub, cfg, 2, "open_valve confirmed after the restart")
    assert kinds(evs)[:2] == [("saga_started", "open_valve"), ("saga_step", "open_valve")], evs
    assert pump.read_text() == "1"
    # Killed again on start_pump, and down longer than its 6 s: restart_expired.
    time.sleep(0.5)
    gw.kill()
    time.sleep(6.5)
    gw = start_gateway(cfg)
    evs = wait_saga(sub, cfg, 4, "restart_expired")
    assert kinds(evs)[2:4] == [("saga_failed", "start_pump", "restart_expired"),
                              ("saga_compensated", "start_pump")], evs
    time.sleep(0.3)
    assert pump.read_text() == "0" and valve.read_text() == "0"
    feeder.close()
    assert gw.terminate() == 0
