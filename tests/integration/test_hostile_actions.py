"""Rule actions fed by hostile sensor values (SPEC §5.1), against the real
binary and a real Mosquitto: a `publish` topic rendered from a sensor's text
is checked before it is sent (a wildcard, NUL, bad UTF-8 or an overlong topic
is dead-lettered as `bad_topic` and the connection stays up), json() keeps a
payload valid JSON whatever the sensor sends, and `check` refuses an exec
program chosen by a template."""

import json
import re
import time

import paho.mqtt.client as mqtt

from tidegate_testkit import Subscriber, run_cli

LONG = "v" * 70_000  # wraps MQTT's 16-bit topic length: 70 007 bytes with the prefix

# Values that each make a topic the broker would refuse (closing the
# connection) or that MQTT cannot encode.
HOSTILE = ["#", "+", "a/+/b", "x#", "a/#/b", "++", "\0", "a\0b", b"\xc0\xaf", b"\xed\xa0\x80",
           b"\xf4\x90\x80\x80", b"\x80", b"ok\xe2\x82", "#/+", "a+", "sub/#",
           "v" * 65_600, "+" * 3, "#\0+", b"\xff\xfe"]


class Feeder:
    """One MQTT connection publishing the sensor values in order (QoS 1)."""

    def __init__(self, port):
        self.client = mqtt.Client(client_id=f"it-feeder-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def send(self, topic, value):
        payload = value if isinstance(value, bytes) else value.encode("utf-8")
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"feeder could not publish on {topic}"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def relay_config(make_config, names):
    """One mqtt string sensor per name, on its own input topic."""
    sensors = [{"name": f"in.{n}", "driver": "mqtt", "type": "string",
                "options": {"topic": f"it-hostile-in/{{gw}}/{n}"}} for n in names]
    cfg = make_config(sensors=sensors, extra={"metrics": {"interval": "1s"}})
    # The input topics name the gateway, so parallel runs never share them.
    text = cfg.path.read_text().replace("{gw}", cfg.gateway_id)
    cfg.path.write_text(text)
    return cfg


def input_topic(cfg, name):
    return f"it-hostile-in/{cfg.gateway_id}/{name}"


def write_rules(cfg, text):
    (cfg.path.parent / "rules.d" / "relay.yaml").write_text(text)


def relay_rule(name, alerts):
    # Fires on every value but "-", which clears it for the next one.
    return (f"  - name: relay_{name}\n"
            f"    when: in.{name} != \"-\"\n"
            f"    actions:\n"
            f"      - publish: {{ topic: '{alerts}/{{{{in.{name}}}}}', payload: '{{{{rule}}}}' }}\n")


def prime(feeder, sub, cfg, name):
    """Sends "-" until it comes back as a reading: then the gateway's
    subscription to the input topic is in place."""
    deadline = time.monotonic() + 15
    while not sub.snapshot(cfg.topic("events", f"in.{name}")):
        assert time.monotonic() < deadline, f"no reading of in.{name} within 15 s"
        feeder.send(input_topic(cfg, name), "-")
        time.sleep(0.2)


def dead_letters(sub, cfg):
    return [m.json() for m in sub.snapshot(cfg.topic("deadletter"))]


def test_hostile_publish_topics_are_dead_lettered_and_the_connection_stays_up(
        make_config, start_gateway, broker_port):
    cfg = relay_config(make_config, ["w", "p", "l", "s"])
    alerts = f"it-alerts/{cfg.gateway_id}"
    write_rules(cfg, "rules:\n" + "".join(relay_rule(n, alerts) for n in ["w", "p", "l", "s"]))
    sub = Subscriber(broker_port, [f"{cfg.base}/#", f"{alerts}/#"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    try:
        gw.wait_for_log(r"connected to")
        sub.wait_for(lambda ms: [m for m in ms if m.topic == cfg.topic("status")
                                 and m.json().get("state") == "online"], what="online status")
        for name in ["w", "p", "l", "s"]:
            prime(feeder, sub, cfg, name)

        feeder.send(input_topic(cfg, "w"), "a/#")
        feeder.send(input_topic(cfg, "p"), "x+y")
        feeder.send(input_topic(cfg, "l"), LONG)
        dead = sub.wait_for(
            lambda ms: (lambda d: d if len(d) >= 3 else None)(
                [m.json() for m in ms if m.topic == cfg.topic("deadletter")]),
            timeout=15, what="three bad_topic dead letters")
        by_source = {d["source"]: d for d in dead}
        assert set(by_source) == {"rule:relay_w", "rule:relay_p", "rule:relay_l"}, dead
        for d in dead:
            assert d["reason"] == "bad_topic", d
            assert d["type"] == "deadletter", d
        assert "wildcard '#'" in by_source["rule:relay_w"]["detail"]
        assert f'"{alerts}/a/#"' in by_source["rule:relay_w"]["detail"]
        assert "wildcard '+'" in by_source["rule:relay_p"]["detail"]
        long_detail = by_source["rule:relay_l"]["detail"]
        assert f"is {len(alerts) + 1 + len(LONG)} bytes long" in long_detail
        assert len(long_detail) < 400, "the detail shows only the start of the topic"

        # A normal value afterwards is published on its topic.
        feeder.send(input_topic(cfg, "s"), "ok")
        sub.wait_for(lambda ms: [m for m in ms if m.topic == f"{alerts}/ok"],
                     what=f"{alerts}/ok published after the hostile values")
        feeder.send(input_topic(cfg, "s"), "-")

        # Twenty more hostile values through one rule, each fired and cleared;
        # then publish actions still work.
        for value in HOSTILE:
            feeder.send(input_topic(cfg, "s"), value)
            feeder.send(input_topic(cfg, "s"), "-")
        feeder.send(input_topic(cfg, "s"), "ok2")
        sub.wait_for(lambda ms: [m for m in ms if m.topic == f"{alerts}/ok2"], timeout=20,
                     what=f"{alerts}/ok2 published after {len(HOSTILE)} more hostile values")
        # Rate-limited: one dead letter per rule and reason per minute.
        relay_s = [d for d in dead_letters(sub, cfg) if d["source"] == "rule:relay_s"]
        assert len(relay_s) == 1 and relay_s[0]["reason"] == "bad_topic", relay_s
        assert "wildcard '#'" in relay_s[0]["detail"], relay_s
        gw.wait_for_log(r"rule:relay_s: bad_topic: publish topic contains the MQTT wildcard")

        # Only the good topics were published below the alerts prefix.
        published = sorted({m.topic for m in sub.snapshot(prefix=alerts + "/")})
        assert published == [f"{alerts}/ok", f"{alerts}/ok2"], published

        # The connection never dropped: one connect, no reconnect in the
        # metrics, never an offline status.
        after = time.monotonic()
        metrics = sub.wait_for(
            lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")
                        and m.received > after],
            timeout=5, what="a metrics message after the hostile values")
        assert metrics[-1]["reconnects"] == 0, metrics[-1]
        assert all(m.json().get("state") == "online"
                   for m in sub.snapshot(cfg.topic("status"))), sub.snapshot(cfg.topic("status"))
        assert len(gw.log().split("connected to")) == 2, "the gateway connected more than once"
        assert not re.search(r"connection to .* lost", gw.log())
        assert gw.running()
        assert gw.terminate() == 0
    finally:
        feeder.close()
        sub.close()


def test_json_keeps_a_payload_built_from_sensor_text_valid(make_config, start_gateway,
                                                            broker_port):
    cfg = relay_config(make_config, ["s"])
    alerts = f"it-alerts/{cfg.gateway_id}"
    write_rules(cfg, f"""rules:
  - name: relay
    when: in.s != "-"
    actions:
      - publish: {{ topic: '{alerts}/json', payload: '{{"v": {{{{json(in.s)}}}}, "r": {{{{json(rule)}}}}}}' }}
""")
    sub = Subscriber(broker_port, [f"{cfg.base}/#", f"{alerts}/#"])
    feeder = Feeder(broker_port)
    gw = start_gateway(cfg)
    try:
        prime(feeder, sub, cfg, "s")
        values = [b'say "hi"', b"back\\slash", b"tab\tnew\nline\x01", b"caf\xc3\xa9 \xe2\x9c\x93",
                  b"bad \xc3( \xed\xa0\x80 \xff", b"}}{{", b"nul\x00byte"]
        for v in values:
            feeder.send(input_topic(cfg, "s"), v)
            feeder.send(input_topic(cfg, "s"), "-")
        got = sub.wait_count(len(values), topic=f"{alerts}/json", timeout=15)
        parsed = [json.loads(m.payload.decode("utf-8")) for m in got]
        assert [p["r"] for p in parsed] == ["relay"] * len(values)
        assert [p["v"] for p in parsed] == [
            'say "hi"', "back\\slash", "tab\tnew\nline\x01", "café ✓",
            "bad \ufffd( \ufffd\ufffd\ufffd \ufffd", "}}{{", "nul\x00byte"]
        assert gw.terminate() == 0
    finally:
        feeder.close()
        sub.close()


def test_check_refuses_an_exec_program_chosen_by_a_template(tidegate_bin, tmp_path):
    rules = tmp_path / "exec.yaml"
    rules.write_text("""rules:
  - name: run_it
    when: in.s != ""
    actions:
      - exec: ['{{in.s}}', -c, id]
      - exec: [notify, "{{in.s}}"]
      - exec: [/usr/bin/logger, "--tag={{rule}}", "{{in.s}}"]
""")
    r = run_cli(tidegate_bin, "check", str(rules))
    assert r.returncode == 1, r
    out = r.stdout + r.stderr
    assert (f"{rules}:5:17: error: exec: the program (first argument) must be a literal "
            "absolute path, not a template") in out, out
    assert (f"{rules}:6:16: error: exec: the program (first argument) must be an absolute "
            "path starting with '/', got 'notify'") in out, out
    assert ":7:" not in out, "templates in later arguments are fine"
    # Fixed as the message says, it checks clean.
    rules.write_text("""rules:
  - name: run_it
    when: in.s != ""
    actions:
      - exec: [/usr/local/bin/notify, "{{in.s}}", -c, id]
""")
    r = run_cli(tidegate_bin, "check", str(rules))
    assert r.returncode == 0, r.stdout + r.stderr
