"""Per-sensor options of SPEC §2 end to end: range, precision, deadband with
heartbeat, and which topics a sensor publishes to."""

import time

from tidegate_testkit import Subscriber, sequence_sensor


def values(sub, topic):
    return [m.json()["value"] for m in sub.snapshot(topic)]


def test_range_rejects_and_dead_letters_precision_rounds(make_config, start_gateway,
                                                         broker_port):
    s = sequence_sensor("tank.level", values=(1.23456, 500, -2.5), interval="50ms", unit="L")
    s["range"] = [-10, 100]
    s["precision"] = 2
    cfg = make_config(sensors=[s])
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    dead = sub.wait_for(lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")],
                        what="an out_of_range dead letter")
    assert dead[0]["reason"] == "out_of_range" and dead[0]["source"] == "tank.level"
    sub.wait_for(lambda ms: len(values(sub, cfg.topic("events", "tank.level"))) >= 6,
                 what="six events")
    got = values(sub, cfg.topic("events", "tank.level"))
    assert 500 not in got
    assert set(got) == {1.23, -2.5}
    # One dead letter per source and reason per minute, however many readings.
    time.sleep(0.5)
    assert len(sub.snapshot(cfg.topic("deadletter"))) == 1
    assert gw.terminate() == 0


def test_deadband_thins_what_is_published_and_heartbeat_still_sends(make_config,
                                                                     start_gateway,
                                                                     broker_port):
    s = sequence_sensor("room.temp", values=(20, 20.05, 20.1, 20.3, 20.32), interval="100ms")
    s["deadband"] = 0.2
    s["heartbeat"] = "1s"
    cfg = make_config(sensors=[s])
    sub = Subscriber(broker_port, cfg.topic("events", "room.temp"))
    gw = start_gateway(cfg)
    time.sleep(2.6)
    assert gw.terminate() == 0
    got = values(sub, cfg.topic("events", "room.temp"))
    # 26 readings: the changes of at least 0.2 and one heartbeat a second pass.
    assert 4 <= len(got) <= 12, got
    assert got[0] == 20
    assert 20.3 in got
    seqs = [m.json()["seq"] for m in sub.snapshot()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "filtered readings take no seq"


def test_publish_mode_selects_topics(make_config, start_gateway, broker_port):
    sensors = [sequence_sensor("a.all", interval="100ms"),
               dict(sequence_sensor("a.events", interval="100ms"), publish="events"),
               dict(sequence_sensor("a.state", interval="100ms"), publish="state"),
               dict(sequence_sensor("a.none", interval="100ms"), publish="none")]
    cfg = make_config(sensors=sensors)
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: len([m for m in ms if "/a/all" in m.topic]) >= 6, what="events")
    assert gw.terminate() == 0
    topics = {m.topic for m in sub.snapshot()}
    assert cfg.topic("events", "a.all") in topics and cfg.topic("state", "a.all") in topics
    assert cfg.topic("events", "a.events") in topics
    assert cfg.topic("state", "a.events") not in topics
    assert cfg.topic("state", "a.state") in topics
    assert cfg.topic("events", "a.state") not in topics
    assert not any("/a/none" in t for t in topics)
