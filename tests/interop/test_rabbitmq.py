"""tidegate against RabbitMQ 3.10 (Debian 12's) through its MQTT plugin, read
over AMQP 0-9-1 with pika and over MQTT with paho. RabbitMQ routes every MQTT
publish to the `amq.topic` exchange with the topic as routing key, `/` turned
into `.`: `tidegate/<gw>/events/test/seq` -> `tidegate.<gw>.events.test.seq`.

What differs from Mosquitto, and is asserted here so a change is noticed:
- retained messages (a per-vhost store) reach only a subscription whose filter
  is exactly the topic: `tidegate/<gw>/status` gets the retained status,
  `tidegate/<gw>/#` or `tidegate/+/status` get none;
- MQTT 5 is not spoken (RabbitMQ 3.13 added it): the broker cannot parse an
  MQTT 5 CONNECT and closes the connection without a CONNACK; a gateway set to
  `version: 5` keeps everything in its outbox until it is set to 3.1.1."""
from __future__ import annotations

import signal
import time

from conftest import (Subscriber, check_reading_envelope, project_version, routing_key,
                      sequence_sensor)
from tidegate_testkit import run_cli
from tidegate_testkit.faultkit import CuttableProxy, contiguous


def rabbit_config(make_config, rabbitmq, sensors, port=None, gateway_id=None, data_dir=None,
                  **mqtt):
    return make_config(sensors=sensors, gateway_id=gateway_id, data_dir=data_dir,
                       mqtt={"uri": f"tcp://127.0.0.1:{port or rabbitmq.mqtt_port}", **mqtt})


def event_seqs(msgs, gw):
    prefix = f"tidegate.{gw}.events."
    return [m.json()["seq"] for m in msgs if m.routing_key.startswith(prefix)]


def states(msgs, gw):
    return [m.json().get("state") for m in msgs if m.routing_key == f"tidegate.{gw}.status"]


def test_every_event_reaches_an_amqp_consumer_on_amq_topic(rabbitmq, make_config,
                                                           start_gateway, amqp_collect):
    sensor = sequence_sensor(interval="50ms")
    cfg = rabbit_config(make_config, rabbitmq, [sensor])
    gw_id = cfg.gateway_id
    events_key = routing_key(cfg.topic("events", sensor["name"]))
    assert events_key == f"tidegate.{gw_id}.events.test.seq"
    amqp = amqp_collect(f"tidegate.{gw_id}.events.#")
    everything = amqp_collect(f"tidegate.{gw_id}.#")
    gw = start_gateway(cfg)

    msgs = amqp.wait_for(lambda ms: len(ms) >= 40 and ms, timeout=20, what="40 events")
    for m in msgs:
        assert m.routing_key == events_key, m
        check_reading_envelope(m.json(), gw_id, sensor)
        # QoS 1 publishes become persistent AMQP messages; the plugin notes
        # the MQTT QoS in a header.
        assert m.delivery_mode == 2 and m.headers.get("x-mqtt-publish-qos") == 1, m
    seqs = [m.json()["seq"] for m in msgs]
    assert seqs == list(range(1, len(seqs) + 1)), f"every seq from 1, in order: {seqs}"

    # The other topics of SPEC §3 arrive too, under their routing keys.
    all_msgs = everything.wait_for(
        lambda ms: any(m.routing_key == f"tidegate.{gw_id}.state.test.seq" for m in ms) and ms,
        what="state messages")
    status = [m.json() for m in all_msgs if m.routing_key == f"tidegate.{gw_id}.status"]
    assert status and status[0]["state"] == "online", status
    assert status[0]["version"] == project_version() and status[0]["sensors"] == 1, status

    assert gw.terminate() == 0
    everything.wait_for(lambda ms: states(ms, gw_id)[-1:] == ["offline"],
                        what="offline status on SIGTERM")


def test_retained_status_and_state_reach_exact_topic_subscribers_only(
        rabbitmq, make_config, start_gateway, amqp_collect):
    sensor = sequence_sensor(interval="100ms")
    cfg = rabbit_config(make_config, rabbitmq, [sensor])
    status, state = cfg.topic("status"), cfg.topic("state", sensor["name"])
    amqp = amqp_collect(f"tidegate.{cfg.gateway_id}.#")
    gw = start_gateway(cfg)
    amqp.wait_for(lambda ms: len(event_seqs(ms, cfg.gateway_id)) >= 5, what="5 events")

    # A late MQTT subscriber to the exact topics gets both retained messages.
    exact = Subscriber(rabbitmq.mqtt_port, [status, state])
    try:
        got = exact.wait_for(lambda ms: {m.topic for m in ms if m.retain} == {status, state}
                             and ms, what="retained status and state")
    finally:
        exact.close()
    retained = {m.topic: m.json() for m in got if m.retain}
    assert retained[status]["state"] == "online", retained
    check_reading_envelope(retained[state], cfg.gateway_id, sensor)

    # Wildcard filters get the live messages but no retained one (Mosquitto
    # would send the retained status and state here).
    wild = Subscriber(rabbitmq.mqtt_port, [f"{cfg.base}/#", f"tidegate/+/status"])
    try:
        msgs = wild.wait_for(
            lambda ms: len([m for m in ms if "/events/" in m.topic]) >= 20 and ms,
            timeout=15, what="20 live events on the wildcard subscription")
    finally:
        wild.close()
    assert not [m for m in msgs if m.retain], \
        f"RabbitMQ 3.10 sent retained messages to a wildcard: {[m.topic for m in msgs if m.retain]}"

    # The last will is retained too: after a crash, a late exact subscriber
    # reads `offline`.
    gw.signal(signal.SIGKILL)
    gw.proc.wait(10)
    amqp.wait_for(lambda ms: states(ms, cfg.gateway_id)[-1:] == ["offline"],
                  what="the last will on amq.topic")
    after = Subscriber(rabbitmq.mqtt_port, status)
    try:
        will = after.wait_count(1, topic=status)[0]
    finally:
        after.close()
    assert will.retain and will.json() == {"state": "offline"}, will


def test_mqtt5_is_refused_by_rabbitmq_3_10_and_nothing_is_lost(
        rabbitmq, make_config, start_gateway, amqp_collect):
    sensor = sequence_sensor(interval="50ms")
    cfg = rabbit_config(make_config, rabbitmq, [sensor], version="5")
    amqp = amqp_collect(f"tidegate.{cfg.gateway_id}.events.#")
    first = start_gateway(cfg)
    line = first.wait_for_log(r"^WARN mqtt: connect to .* failed: .*may not speak MQTT 5.*$",
                              timeout=15)[0]
    assert "(rc -1)" in line and "mqtt.version 3.1.1" in line, line
    first.wait_for_log(r"connect to .* failed", count=2, timeout=15)  # it keeps trying
    assert first.running()
    assert first.terminate() == 0
    assert "kept in the outbox for the next start" in first.log()
    assert not amqp.snapshot()

    # Same data_dir, MQTT 3.1.1: everything taken meanwhile arrives, from seq 1.
    cfg2 = rabbit_config(make_config, rabbitmq, [sensor], gateway_id=cfg.gateway_id,
                         data_dir=cfg.data_dir, version="3.1.1")
    second = start_gateway(cfg2)
    amqp.wait_for(lambda ms: (s := event_seqs(ms, cfg.gateway_id)) and min(s) == 1
                  and contiguous(s) and len(set(s)) >= 40, timeout=20,
                  what="the events kept while MQTT 5 was refused")
    assert second.terminate() == 0


def test_network_outage_to_rabbitmq_loses_no_event(rabbitmq, make_config, start_gateway,
                                                   amqp_collect):
    proxy = CuttableProxy(rabbitmq.mqtt_port)
    try:
        sensor = sequence_sensor(interval="10ms")  # ~100 events/s
        cfg = rabbit_config(make_config, rabbitmq, [sensor], port=proxy.port,
                            keepalive="1s")
        gw_id = cfg.gateway_id
        # Declared and bound before the gateway starts: the queue holds all.
        amqp = amqp_collect([f"tidegate.{gw_id}.events.#", f"tidegate.{gw_id}.status"])
        gw = start_gateway(cfg)
        amqp.wait_for(lambda ms: len(event_seqs(ms, gw_id)) >= 100, timeout=15,
                      what="100 events before the cut")
        proxy.cut()
        gw.wait_for_log(r"connection to .* lost|connect to .* failed", timeout=10)
        time.sleep(5)  # the outage itself: ~500 readings pile up in the outbox
        cut_max = max(event_seqs(amqp.snapshot(), gw_id))
        proxy.restore()
        gw.wait_for_log(r"connected to .*", count=2, timeout=40)
        msgs = amqp.wait_for(lambda ms: (s := event_seqs(ms, gw_id)) and
                             max(s) > cut_max + 600 and ms, timeout=40,
                             what="the backlog and new events after the outage")
        seqs = event_seqs(msgs, gw_id)
        assert min(seqs) == 1, seqs[:10]
        assert contiguous(seqs), \
            f"missing seqs: {sorted(set(range(1, max(seqs) + 1)) - set(seqs))[:20]}"
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == sorted(first_seen), "events arrive in seq order"
        # RabbitMQ published the will when the link died; the gateway's birth
        # message followed the reconnect.
        assert states(msgs, gw_id) == ["online", "offline", "online"], states(msgs, gw_id)
        assert gw.terminate() == 0
    finally:
        proxy.close()


def test_check_connect_names_a_refused_protocol_version(rabbitmq, tidegate_bin, tmp_path):
    # RabbitMQ 3.10's MQTT plugin speaks 3.1 and 3.1.1, not 5: a real broker
    # refusing the version the config asks for. It closes the connection
    # instead of answering with a CONNACK code, and the check says what that
    # means and what to do.
    uri = f"tcp://127.0.0.1:{rabbitmq.mqtt_port}"
    for version, expected, rc in (("5", f"{uri}: error: MQTT: the broker closed the connection "
                                        "without answering CONNECT (a broker without MQTT 5 "
                                        "does this: try mqtt.version: 3.1.1)", 1),
                                  ("3.1.1", f"{uri}: ok (MQTT 3.1.1)", 0)):
        cfg = tmp_path / f"v{version}.yaml"
        cfg.write_text(f"mqtt: {{uri: '{uri}', version: '{version}'}}\n"
                       f"rules: {{paths: []}}\n"
                       "sensors: [{name: a.b, driver: simulated}]\n")
        r = run_cli(tidegate_bin, "check", "--connect", "-c", str(cfg))
        assert expected in r.stdout.splitlines(), r.stdout + r.stderr
        assert r.returncode == rc, r.stdout + r.stderr
