"""Home Assistant MQTT discovery (SPEC §8) against a real Mosquitto: every
discovery payload field by field, its templates rendered with Jinja (as Home
Assistant does) against the real retained state payloads, the switch round
trip through the announced command topic, re-announce on Home Assistant's
birth message, removal on reload and across a restart, availability through
the last will, and hostile input on <prefix>/status."""

from __future__ import annotations

import json
import signal
import time
import uuid

import jinja2
import paho.mqtt.publish as mqtt_publish

from tidegate_testkit import Subscriber, project_version, run_cli, sequence_sensor

ENV = jinja2.Environment()


def render(template: str, payload: bytes) -> str:
    """A value template as Home Assistant renders it: value_json is the parsed payload."""
    text = payload.decode("utf-8")
    return ENV.from_string(template).render(value=text, value_json=json.loads(text)).strip()


def ha_prefix() -> str:
    # A prefix of its own per test: retained configs and statuses of one
    # test never reach another.
    return f"ha-{uuid.uuid4().hex[:8]}"


def ha_config(make_config, prefix: str, sensors=None, outputs=None, **kw):
    extra = {"homeassistant": {"discovery": True, "prefix": prefix}}
    if outputs is not None:
        extra["outputs"] = outputs
    return make_config(sensors=sensors, extra=extra, **kw)


def latest(sub: Subscriber, prefix: str) -> dict[str, bytes]:
    """config topic -> its latest payload (b"" once removed)."""
    out: dict[str, bytes] = {}
    for m in sub.snapshot(prefix=prefix + "/"):
        if m.topic.endswith("/config"):
            out[m.topic] = m.payload
    return out


def clear_retained(port: int, topics) -> None:
    for t in topics:
        mqtt_publish.single(t, b"", retain=True, hostname="127.0.0.1", port=port)


AVAILABILITY = {
    "availability_template": "{{ value_json.state }}",
    "payload_available": "online",
    "payload_not_available": "offline",
}


def check_common(p: dict, cfg, component: str, object_id: str, name: str) -> None:
    gw = cfg.gateway_id
    version = project_version()
    assert p["name"] == name
    assert p["unique_id"] == f"tidegate_{gw}_{object_id}"
    assert p["default_entity_id"] == f"{component}.{gw}_{object_id}"
    assert p["object_id"] == f"{gw}_{object_id}"
    assert p["availability_topic"] == cfg.topic("status")
    for k, v in AVAILABILITY.items():
        assert p[k] == v, k
    assert p["device"] == {"identifiers": [f"tidegate_{gw}"], "name": gw,
                           "manufacturer": "tidegate", "model": "tidegate edge gateway",
                           "sw_version": version}
    assert p["origin"] == {"name": "tidegate", "sw_version": version}
    # Home Assistant's entity name must not repeat the device's.
    assert gw not in p["name"]


def test_every_payload_follows_spec_and_templates_render(make_config, start_gateway,
                                                         broker_port, tmp_path):
    prefix = ha_prefix()
    text_file = tmp_path / "mode.txt"
    text_file.write_text("eco\n")
    sensors = [
        sequence_sensor("greenhouse.temp", values=[21.5, 22], interval="200ms", unit="°C"),
        {**sequence_sensor("air.hum", values=[55], interval="200ms", unit="%"),
         "ha": {"device_class": "humidity", "name": "Air humidity"}},
        {"name": "door.open", "driver": "simulated", "type": "boolean", "interval": "200ms",
         "options": {"profile": "sequence", "values": [1]}},
        {"name": "boiler.mode", "driver": "file", "type": "string", "interval": "200ms",
         "options": {"path": str(text_file)}},
        {**sequence_sensor("fast.raw", values=[1], interval="200ms"), "publish": "events"},
        {**sequence_sensor("quiet.raw", values=[1], interval="200ms"), "publish": "none"},
    ]
    outputs = [
        {"name": "fan", "driver": "file", "remote": True,
         "options": {"path": str(tmp_path / "fan"), "initial": "off"}},
        {"name": "led", "driver": "file",
         "options": {"path": str(tmp_path / "led"), "initial": "off"}},
    ]
    cfg = ha_config(make_config, prefix, sensors, outputs)
    (cfg.path.parent / "rules.d" / "r.yaml").write_text(
        "rules:\n  - name: too_warm\n    when: greenhouse.temp > 0\n")
    sub = Subscriber(broker_port, [prefix + "/#", cfg.base + "/#"])
    gw = start_gateway(cfg)
    gid = cfg.gateway_id
    want = {
        f"{prefix}/sensor/{gid}/greenhouse_temp/config",
        f"{prefix}/sensor/{gid}/air_hum/config",
        f"{prefix}/binary_sensor/{gid}/door_open/config",
        f"{prefix}/sensor/{gid}/boiler_mode/config",
        f"{prefix}/binary_sensor/{gid}/rule_too_warm/config",
        f"{prefix}/switch/{gid}/output_fan/config",
        f"{prefix}/binary_sensor/{gid}/output_led/config",
    }
    sub.wait_for(lambda ms: set(latest(sub, prefix)) >= want, timeout=10,
                 what="the discovery configs")
    # The states the templates read: retained, as Home Assistant gets them.
    sub.wait_for(lambda ms: {cfg.topic("state", s) for s in
                             ("greenhouse.temp", "air.hum", "door.open", "boiler.mode")}
                 | {cfg.topic("rules") + "/too_warm", cfg.topic("outputs") + "/fan",
                    cfg.topic("outputs") + "/led"} <= {m.topic for m in ms},
                 timeout=10, what="the state topics")
    time.sleep(0.5)
    configs = latest(sub, prefix)
    assert set(configs) == want, "sensors without a state topic are not announced"
    msgs = [m for m in sub.snapshot(prefix=prefix + "/") if m.topic in want]
    assert all(m.qos == 1 for m in msgs)
    # Retained: a subscriber arriving later (Home Assistant starting) gets them all.
    late = Subscriber(broker_port, [prefix + "/#"])
    late.wait_count(len(want), prefix=prefix + "/", timeout=5)
    assert {m.topic for m in late.snapshot() if m.retain} == want
    late.close()
    p = {t.split("/")[3]: json.loads(v) for t, v in configs.items()}

    def state(topic: str) -> bytes:
        return [m for m in sub.snapshot(topic) if m.payload][-1].payload

    # number sensor: unit -> device_class
    t = p["greenhouse_temp"]
    check_common(t, cfg, "sensor", "greenhouse_temp", "Greenhouse temp")
    assert t["state_topic"] == cfg.topic("state", "greenhouse.temp")
    assert t["value_template"] == "{{ value_json.value }}"
    assert t["unit_of_measurement"] == "°C"
    assert t["state_class"] == "measurement"
    assert t["device_class"] == "temperature"
    assert "command_topic" not in t
    assert float(render(t["value_template"], state(t["state_topic"]))) in (21.5, 22)
    # number sensor with the ha block
    h = p["air_hum"]
    check_common(h, cfg, "sensor", "air_hum", "Air humidity")
    assert h["device_class"] == "humidity" and h["unit_of_measurement"] == "%"
    assert h["state_class"] == "measurement"
    assert render(h["value_template"], state(h["state_topic"])) == "55"
    # boolean sensor
    d = p["door_open"]
    check_common(d, cfg, "binary_sensor", "door_open", "Door open")
    assert d["state_topic"] == cfg.topic("state", "door.open")
    assert d["value_template"] == "{{ 'ON' if value_json.value else 'OFF' }}"
    assert "unit_of_measurement" not in d and "state_class" not in d
    assert render(d["value_template"], state(d["state_topic"])) == "ON"
    # string sensor: no unit, no state class
    b = p["boiler_mode"]
    check_common(b, cfg, "sensor", "boiler_mode", "Boiler mode")
    assert "unit_of_measurement" not in b and "state_class" not in b
    assert "device_class" not in b
    assert render(b["value_template"], state(b["state_topic"])) == "eco"
    # rule
    r = p["rule_too_warm"]
    check_common(r, cfg, "binary_sensor", "rule_too_warm", "Too warm")
    assert r["device_class"] == "problem"
    assert r["state_topic"] == cfg.topic("rules") + "/too_warm"
    assert r["value_template"] == "{{ 'ON' if value_json.value else 'OFF' }}"
    assert render(r["value_template"], state(r["state_topic"])) == "ON"
    # remote output: switch
    f = p["output_fan"]
    check_common(f, cfg, "switch", "output_fan", "Fan")
    assert f["command_topic"] == cfg.topic("cmd") + "/outputs/fan"
    assert (f["payload_on"], f["payload_off"]) == ("on", "off")
    assert f["state_topic"] == cfg.topic("outputs") + "/fan"
    assert f["value_template"] == "{{ value_json.value }}"
    assert (f["state_on"], f["state_off"]) == ("on", "off")
    assert render(f["value_template"], state(f["state_topic"])) == f["state_off"]
    # local output: binary_sensor on the same kind of state topic
    led = p["output_led"]
    check_common(led, cfg, "binary_sensor", "output_led", "Led")
    assert "command_topic" not in led
    assert led["state_topic"] == cfg.topic("outputs") + "/led"
    assert render(led["value_template"], state(led["state_topic"])) == led["payload_off"]
    # availability renders against the real status
    status = [m for m in sub.snapshot(cfg.topic("status"))][-1].payload
    assert render(t["availability_template"], status) == "online"
    # unique ids are unique
    assert len({v["unique_id"] for v in p.values()}) == len(p)
    # what was announced is remembered in data_dir
    remembered = json.loads((cfg.data_dir / "homeassistant.announced").read_text())
    assert set(remembered["topics"]) == want
    assert gw.terminate() == 0
    clear_retained(broker_port, want)


def test_switch_round_trip_through_announced_topics(make_config, start_gateway, broker_port,
                                                    tmp_path):
    prefix = ha_prefix()
    fan_file = tmp_path / "fan"
    cfg = ha_config(make_config, prefix, outputs=[
        {"name": "fan", "driver": "file", "remote": True,
         "options": {"path": str(fan_file), "initial": "off"}}])
    sub = Subscriber(broker_port, [prefix + "/#", cfg.topic("outputs") + "/#"])
    gw = start_gateway(cfg)
    topic = f"{prefix}/switch/{cfg.gateway_id}/output_fan/config"
    sub.wait_count(1, topic=topic, timeout=10)
    conf = json.loads(sub.snapshot(topic)[-1].payload)
    sub.wait_count(1, topic=conf["state_topic"], timeout=10)
    # As Home Assistant does when the switch is turned on.
    mqtt_publish.single(conf["command_topic"], conf["payload_on"], qos=1,
                        hostname="127.0.0.1", port=broker_port)
    sub.wait_for(lambda ms: [m for m in ms if m.topic == conf["state_topic"]
                             and render(conf["value_template"], m.payload) == conf["state_on"]],
                 timeout=10, what="the state topic showing on")
    assert fan_file.read_text() == "1"
    mqtt_publish.single(conf["command_topic"], conf["payload_off"], qos=1,
                        hostname="127.0.0.1", port=broker_port)
    sub.wait_for(lambda ms: render(conf["value_template"],
                                   [m for m in ms if m.topic == conf["state_topic"]][-1].payload)
                 == conf["state_off"], timeout=10, what="the state topic showing off")
    assert fan_file.read_text() == "0"
    assert gw.terminate() == 0
    clear_retained(broker_port, [topic])


def test_birth_message_reannounces_and_hostile_status_is_harmless(make_config, start_gateway,
                                                                  broker_port):
    prefix = ha_prefix()
    cfg = ha_config(make_config, prefix)
    topic = f"{prefix}/sensor/{cfg.gateway_id}/test_seq/config"
    sub = Subscriber(broker_port, [prefix + "/+/+/+/config"])
    # Garbage retained on the status topic before the gateway even starts.
    mqtt_publish.single(prefix + "/status", b"\xff\x00garbage", retain=True,
                        hostname="127.0.0.1", port=broker_port)
    gw = start_gateway(cfg)
    sub.wait_count(1, topic=topic, timeout=10)
    time.sleep(1.5)
    assert len(sub.snapshot(topic)) == 1, "one announce per connect; garbage asks for none"

    # Home Assistant restarted: its birth message.
    mqtt_publish.single(prefix + "/status", "online", hostname="127.0.0.1", port=broker_port)
    sub.wait_count(2, topic=topic, timeout=5)

    # Hostile: 1 MB, sub-topics, a retained "online" on a sub-topic, offline.
    big = b"online" + b"x" * (1 << 20)
    msgs = [(prefix + "/status", big, 1, False),
            (prefix + "/status/sub", "online", 1, False),
            (prefix + "/status/online", "online", 1, True),
            (prefix + "/status", "offline", 1, False),
            (prefix + "/status", "ONLINE ", 1, False)]
    mqtt_publish.multiple([{"topic": t, "payload": p, "qos": q, "retain": r}
                           for t, p, q, r in msgs], hostname="127.0.0.1", port=broker_port)
    time.sleep(1.5)
    assert len(sub.snapshot(topic)) == 2, "none of those is a birth message"
    assert gw.running()

    # A storm of birth messages: at most one announce per second.
    start = time.monotonic()
    before = len(sub.snapshot(topic))
    for _ in range(40):
        mqtt_publish.single(prefix + "/status", "online", hostname="127.0.0.1",
                            port=broker_port)
        time.sleep(0.05)
    time.sleep(1.2)  # the deferred one, if any
    elapsed = time.monotonic() - start
    announces = len(sub.snapshot(topic)) - before
    assert 1 <= announces <= int(elapsed) + 1, (announces, elapsed)
    time.sleep(1.5)
    assert len(sub.snapshot(topic)) - before == announces, "no announce loop"
    assert gw.running()
    assert gw.terminate() == 0
    clear_retained(broker_port, [topic, prefix + "/status", prefix + "/status/online"])


def test_rule_removed_on_reload_gets_empty_config(make_config, start_gateway, broker_port):
    prefix = ha_prefix()
    cfg = ha_config(make_config, prefix)
    rules = cfg.path.parent / "rules.d" / "r.yaml"
    rules.write_text("rules:\n  - name: keep\n    when: test.seq > 100\n"
                     "  - name: drop\n    when: test.seq < -100\n")
    sub = Subscriber(broker_port, [prefix + "/#"])
    gw = start_gateway(cfg)
    keep = f"{prefix}/binary_sensor/{cfg.gateway_id}/rule_keep/config"
    drop = f"{prefix}/binary_sensor/{cfg.gateway_id}/rule_drop/config"
    sub.wait_for(lambda ms: {keep, drop} <= set(latest(sub, prefix)), timeout=10,
                 what="both rules announced")
    rules.write_text("rules:\n  - name: keep\n    when: test.seq > 100\n"
                     "  - name: added\n    when: test.seq > 200\n")
    gw.signal(signal.SIGHUP)
    added = f"{prefix}/binary_sensor/{cfg.gateway_id}/rule_added/config"
    sub.wait_for(lambda ms: latest(sub, prefix).get(drop) == b""
                 and latest(sub, prefix).get(added), timeout=10,
                 what="the removed rule's config emptied, the new one announced")
    # The empty config was retained: it deleted the retained config, so a
    # late subscriber (Home Assistant starting) sees the other rules only.
    late = Subscriber(broker_port, [prefix + "/#"])
    late.wait_count(3, prefix=prefix + "/", timeout=5)
    time.sleep(0.3)
    sensor = f"{prefix}/sensor/{cfg.gateway_id}/test_seq/config"
    assert {m.topic for m in late.snapshot()} == {keep, added, sensor}
    late.close()
    assert json.loads(latest(sub, prefix)[added])["unique_id"] == \
        f"tidegate_{cfg.gateway_id}_rule_added"
    remembered = json.loads((cfg.data_dir / "homeassistant.announced").read_text())
    assert drop not in remembered["topics"] and added in remembered["topics"]
    assert gw.terminate() == 0
    clear_retained(broker_port, latest(sub, prefix))


def test_removal_across_restart_and_offline_on_sigkill(make_config, start_gateway, broker_port):
    prefix = ha_prefix()
    two = [sequence_sensor("a.one", interval="200ms"), sequence_sensor("b.two", interval="200ms")]
    cfg = ha_config(make_config, prefix, sensors=two, gateway_id=f"it-ha-{uuid.uuid4().hex[:8]}")
    one = f"{prefix}/sensor/{cfg.gateway_id}/a_one/config"
    gone = f"{prefix}/sensor/{cfg.gateway_id}/b_two/config"
    sub = Subscriber(broker_port, [prefix + "/#", cfg.topic("status")])
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: {one, gone} <= set(latest(sub, prefix)), timeout=10,
                 what="both sensors announced")
    sub.wait_for(lambda ms: [m for m in ms if m.topic == cfg.topic("status")
                             and m.json().get("state") == "online"], timeout=10,
                 what="online status")
    # SIGKILL: the broker publishes the last will; the availability
    # template reads it as payload_not_available.
    gw.kill()
    conf = json.loads(latest(sub, prefix)[one])
    offline = sub.wait_for(lambda ms: [m for m in ms if m.topic == conf["availability_topic"]
                                       and m.json().get("state") == "offline"],
                           timeout=10, what="the last will")
    assert render(conf["availability_template"], offline[-1].payload) == \
        conf["payload_not_available"]

    # The same gateway without b.two: its entity is removed at the next start.
    cfg2 = ha_config(make_config, prefix, sensors=two[:1], gateway_id=cfg.gateway_id,
                     data_dir=cfg.data_dir)
    n_one = len(sub.snapshot(one))
    gw2 = start_gateway(cfg2)
    sub.wait_for(lambda ms: latest(sub, prefix).get(gone) == b"", timeout=10,
                 what="an empty retained config for the sensor that is gone")
    sub.wait_for(lambda ms: len(sub.snapshot(one)) > n_one, timeout=10,
                 what="the remaining sensor announced again")
    assert json.loads(latest(sub, prefix)[one])["state_topic"] == cfg.topic("state", "a.one")
    # A late subscriber (Home Assistant starting now) sees only what exists.
    late = Subscriber(broker_port, [prefix + "/#"])
    time.sleep(0.5)
    assert {m.topic for m in late.snapshot() if m.payload} == {one}
    late.close()
    assert gw2.terminate() == 0
    clear_retained(broker_port, [one])


def test_check_reports_bad_homeassistant_keys_at_their_place(tidegate_bin, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("""homeassistant:
  discovery: yes please
  prefx: ha
sensors:
  - name: room.temp
    driver: simulated
    unit: "°C"
    ha: { device_class: temprature }
  - name: door.open
    driver: simulated
    type: boolean
    ha:
      device_class: temperature
      nmae: Door
""")
    res = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"{cfg}:2:14: error: ")
    assert lines[1:] == [
        f"{cfg}:3:3: error: unknown key 'prefx' in 'homeassistant' (did you mean 'prefix'?)",
        f"{cfg}:8:25: error: unknown device_class 'temprature' for a number sensor "
        "(did you mean 'temperature'?)",
        f"{cfg}:13:21: error: device_class 'temperature' is for number sensors, not boolean ones",
        f"{cfg}:14:7: error: unknown key 'nmae' in 'ha' (did you mean 'name'?)",
    ]
    (tmp_path / "rules.d").mkdir()
    cfg.write_text(f"rules: {{ paths: [{tmp_path / 'rules.d'}] }}\n"
                   "homeassistant: { discovery: true, prefix: ha }\nsensors:\n"
                   "  - { name: a, driver: simulated, ha: { device_class: voltage, name: A } }\n")
    res = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert (res.returncode, res.stdout) == (0, "")
