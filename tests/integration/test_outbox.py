"""The durable outbox end to end (SPEC §7): a real gateway, a real Mosquitto,
real SIGKILLs, a TCP proxy that cuts the network, and damaged files on disk."""

import json
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tidegate_testkit import Subscriber, parse_ts, sequence_sensor, wait_until
from tidegate_testkit.faultkit import CuttableProxy, contiguous, seqs_of


def test_sigkill_while_the_broker_is_down_loses_nothing(mosquitto_factory, make_config,
                                                        start_gateway):
    broker = mosquitto_factory()  # not started yet: the broker is down
    cfg = make_config(sensors=[sequence_sensor(interval="50ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"})
    first = start_gateway(cfg)
    first.wait_for_log(r"connect to .* failed", timeout=10)
    time.sleep(1.5)  # ~30 readings, all in the outbox only
    first.kill()
    assert (cfg.data_dir / "outbox").is_dir()

    broker.start()
    sub = Subscriber(broker.port, f"{cfg.base}/#")
    second = start_gateway(cfg)
    second.wait_for_log(r"previous run did not stop cleanly; nothing lost", timeout=10)
    # Everything taken before the kill arrives, then new readings continue
    # the same numbering with no gap.
    got = sub.wait_for(lambda ms: (s := seqs_of(ms)) and min(s) == 1 and max(s) >= 40
                       and contiguous(s), timeout=20, what="seq 1..40 without a gap")
    assert got
    assert second.terminate() == 0


def test_network_cut_and_restore_delivers_every_seq(mosquitto_factory, make_config,
                                                    start_gateway):
    broker = mosquitto_factory().start()
    proxy = CuttableProxy(broker.port)
    try:
        sub = Subscriber(broker.port, f"tidegate/+/events/#")
        cfg = make_config(sensors=[sequence_sensor(interval="20ms")],
                          mqtt={"uri": f"tcp://127.0.0.1:{proxy.port}", "keepalive": "1s"})
        gw = start_gateway(cfg)
        sub.wait_for(lambda ms: len(seqs_of(ms)) >= 20, timeout=10, what="20 events")
        proxy.cut()
        gw.wait_for_log(r"connection to .* lost|connect to .* failed", timeout=10)
        time.sleep(2)  # readings pile up in the outbox
        cut_max = max(seqs_of(sub.snapshot()))
        proxy.restore()
        gw.wait_for_log(r"connected to .*", count=2, timeout=30)
        sub.wait_for(lambda ms: (s := seqs_of(ms)) and max(s) > cut_max + 100
                     and contiguous(s) and min(s) == 1,
                     timeout=30, what="every seq across the outage")
        assert gw.terminate() == 0
    finally:
        proxy.close()


def test_torn_tail_is_cut_out_and_the_intact_records_delivered(mosquitto_factory, make_config,
                                                               start_gateway):
    broker = mosquitto_factory()
    cfg = make_config(sensors=[sequence_sensor(interval="50ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"},
                      extra={"metrics": {"interval": "1s"}})
    first = start_gateway(cfg)
    first.wait_for_log(r"connect to .* failed", timeout=10)
    time.sleep(1.0)
    first.kill()
    segments = sorted((cfg.data_dir / "outbox").glob("*.seg"))
    assert segments, "the outbox wrote no segment"
    newest = segments[-1]
    intact = newest.stat().st_size
    # What a power cut mid-write leaves: the start of a record, then junk.
    with open(newest, "ab") as f:
        f.write(b"\x54\x47\x52\x31" + b"\xff" * 37 + b"garbage after a torn write")

    broker.start()
    sub = Subscriber(broker.port, f"{cfg.base}/#")
    second = start_gateway(cfg)
    second.wait_for_log(r"damaged byte", timeout=10)
    assert second.running(), "start-up must not fail because of corruption"
    metrics = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")
                    and m.json()["corrupt_records"] >= 1],
        timeout=15, what="metrics counting the corrupt record")
    assert metrics[0]["corrupt_records"] >= 1
    got = sub.wait_for(lambda ms: (s := seqs_of(ms)) and min(s) == 1 and contiguous(s)
                       and len(s) >= 25, timeout=15, what="the intact records from seq 1")
    assert got
    assert newest.stat().st_size >= intact  # cut back to the good end, then appended to
    corrupt = list((cfg.data_dir / "outbox" / "corrupt").iterdir())
    assert corrupt, "the damaged bytes are kept aside for inspection"
    assert second.terminate() == 0


def test_clean_shutdown_while_offline_keeps_events_for_the_next_start(
        mosquitto_factory, make_config, start_gateway):
    broker = mosquitto_factory()
    cfg = make_config(sensors=[sequence_sensor(interval="50ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"})
    first = start_gateway(cfg)
    first.wait_for_log(r"connect to .* failed", timeout=10)
    time.sleep(1.0)
    assert first.terminate() == 0
    assert "kept in the outbox for the next start" in first.log()

    broker.start()
    sub = Subscriber(broker.port, f"{cfg.base}/#")
    second = start_gateway(cfg)
    sub.wait_for(lambda ms: (s := seqs_of(ms)) and min(s) == 1 and contiguous(s)
                 and len(s) >= 25, timeout=15, what="the events of the first run")
    assert "did not stop cleanly" not in second.log()
    assert second.terminate() == 0


def test_metrics_carry_every_counter_of_spec_7(make_config, start_gateway, broker_port):
    cfg = make_config(sensors=[sequence_sensor(interval="100ms")],
                      extra={"metrics": {"interval": "1s"}})
    sub = Subscriber(broker_port, cfg.topic("metrics"))
    gw = start_gateway(cfg)
    msgs = sub.wait_for(lambda ms: [m for m in ms if m.json()["acked"] > 0], timeout=15,
                        what="a metrics message after acks")
    m = msgs[0]
    assert not m.retain
    body = m.json()
    for key in ("events_in", "published", "acked", "outbox_depth", "outbox_bytes", "dropped",
                "corrupt_records", "deadletter", "reconnects", "rules_fired", "uptime_s"):
        assert isinstance(body[key], int), key
    assert body["events_in"] >= 1
    assert gw.terminate() == 0



def test_a_backlog_sends_every_event_and_each_sensor_state_once(mosquitto_factory, make_config,
                                                                 start_gateway):
    # state/<path> is a read model (SPEC §3): after an outage only each
    # sensor's newest reading needs to reach it; events/<path> gets them all.
    broker = mosquitto_factory()  # down while the backlog builds
    sensors = [sequence_sensor("tank.a", interval="50ms"),
               sequence_sensor("tank.b", interval="50ms")]
    cfg = make_config(sensors=sensors, mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"})
    first = start_gateway(cfg)
    first.wait_for_log(r"connect to .* failed", timeout=10)
    time.sleep(1.5)  # ~30 readings per sensor, all in the outbox only
    assert first.terminate() == 0

    broker.start()
    sub = Subscriber(broker.port, f"{cfg.base}/#")
    # The same gateway and data_dir; its sensors now read once, at start.
    again = make_config(sensors=[dict(s, interval="1h") for s in sensors],
                        gateway_id=cfg.gateway_id, data_dir=cfg.data_dir,
                        mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"})
    second = start_gateway(again)
    second_start = second.started_at - timedelta(seconds=1)

    def events(msgs):
        return [m.json() for m in msgs if "/events/" in m.topic]

    def drained(msgs):
        evs = events(msgs)
        seqs = [e["seq"] for e in evs]
        fresh = {e["source"] for e in evs if parse_ts(e["ts"]) >= second_start}
        return seqs and min(seqs) == 1 and contiguous(seqs) and fresh == {"tank.a", "tank.b"}

    sub.wait_for(drained, timeout=20, what="the whole backlog and the readings at restart")
    time.sleep(0.5)  # a state message would follow its event closely
    msgs = sub.snapshot()
    for name in ("tank.a", "tank.b"):
        mine = [e for e in events(msgs) if e["source"] == name]
        sent = [m.json() for m in msgs if m.topic == again.topic("state", name)]
        assert len(mine) > 20, f"only {len(mine)} readings of {name} in the backlog"
        # At most the newest of the backlog and the reading at the restart,
        # not one per reading; the last is the newest reading.
        assert 1 <= len(sent) <= 2, f"{len(sent)} state messages for {len(mine)} readings"
        assert sent[-1] == max(mine, key=lambda e: e["seq"])
    assert second.terminate() == 0
    sub.close()


def test_sigkill_while_connected_resends_only_the_unacknowledged_window(
        mosquitto_factory, make_config, start_gateway):
    # The delivery cursor reaches the state file on the loop turn that moved
    # it, so a process crash sends again at most what was in flight (64
    # records), not the last sync interval's worth (~200 events at 5 ms).
    broker = mosquitto_factory().start()
    sub = Subscriber(broker.port, "tidegate/+/events/#")
    cfg = make_config(sensors=[sequence_sensor(interval="5ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"})
    first = start_gateway(cfg)
    sub.wait_for(lambda ms: len(seqs_of(ms)) >= 300, timeout=20, what="300 events")
    first.kill()
    before = seqs_of(sub.snapshot())
    second = start_gateway(cfg)
    second.wait_for_log(r"previous run did not stop cleanly; nothing lost", timeout=10)
    sub.wait_for(lambda ms: (s := seqs_of(ms)) and max(s) >= max(before) + 200
                 and contiguous(s) and min(s) == 1,
                 timeout=20, what="every seq across the crash")
    second.kill()
    seqs = seqs_of(sub.snapshot())
    duplicates = len(seqs) - len(set(seqs))
    assert duplicates <= 64, f"{duplicates} events sent again after the crash"
