# Readings become events (SPEC §3, §4): topics, the envelope, seq, retained
# state for late joiners.
from datetime import datetime, timedelta, timezone

from tidegate_testkit import (assert_consecutive, check_reading_envelope, envelopes, parse_ts,
                      sequence_sensor)


def test_events_carry_the_envelope_in_order(make_config, start_gateway, subscribe):
    values = [1, 2.5, -3, 0.1, 35]
    seq_sensor = sequence_sensor("greenhouse.temp", values=values, interval="100ms", unit="°C")
    plain = sequence_sensor("door.count", values=[7, 8], interval="150ms", unit=None)
    cfg = make_config(sensors=[seq_sensor, plain])
    sub = subscribe(f"{cfg.base}/#")
    before = datetime.now(timezone.utc)
    gw = start_gateway(cfg)

    temp_topic = cfg.topic("events", "greenhouse.temp")
    door_topic = cfg.topic("events", "door.count")
    assert temp_topic == f"tidegate/{cfg.gateway_id}/events/greenhouse/temp"
    sub.wait_count(2 * len(values) + 1, topic=temp_topic)
    sub.wait_count(3, topic=door_topic)
    assert gw.running()
    after = datetime.now(timezone.utc)

    temp_msgs = sub.snapshot(topic=temp_topic)
    door_msgs = sub.snapshot(topic=door_topic)
    assert not any(m.retain for m in temp_msgs + door_msgs), "events must not be retained"

    temp = envelopes(temp_msgs)
    for env in temp:
        check_reading_envelope(env, cfg.gateway_id, seq_sensor)
        ts = parse_ts(env["ts"])
        assert before - timedelta(seconds=2) <= ts <= after + timedelta(seconds=2), \
            f"ts {env['ts']} is not the wall-clock time of the reading (UTC)"
    for env in envelopes(door_msgs):
        check_reading_envelope(env, cfg.gateway_id, plain)

    # The sequence profile, cycled, in order, from the first poll at start.
    got = [env["value"] for env in temp]
    assert got == [values[i % len(values)] for i in range(len(got))]
    assert [env["value"] for env in envelopes(door_msgs)][:3] == [7, 8, 7]

    # Timestamps of one sensor never go backwards.
    stamps = [parse_ts(env["ts"]) for env in temp]
    assert stamps == sorted(stamps)

    # One seq per envelope the gateway creates, over all its events (both
    # sensors share one counter), consecutive and in order.
    all_events = envelopes(sub.snapshot(prefix=f"{cfg.base}/events/"))
    assert_consecutive([env["seq"] for env in all_events])
    ids = {}
    for env in all_events:
        assert ids.setdefault(env["id"], env) == env, f"id {env['id']} reused for another event"

    # state/<path> repeats events (same id, same content) and creates no seq of its own.
    states = sub.snapshot(prefix=f"{cfg.base}/state/")
    assert states, "no state/<path> messages"
    for msg in states:
        env = msg.json()
        sensor = seq_sensor if env["source"] == seq_sensor["name"] else plain
        assert msg.topic == cfg.topic("state", sensor["name"]), msg.topic
        check_reading_envelope(env, cfg.gateway_id, sensor)
        if env["id"] in ids:
            assert ids[env["id"]] == env, f"state differs from its event: {env}"
        else:  # its event may still be on the way; never a seq beyond the events'
            assert env["seq"] > max(ids.values(), key=lambda e: e["seq"])["seq"], env


def test_state_is_retained_for_late_joiners(make_config, start_gateway, subscribe):
    sensor = sequence_sensor("tank.level", values=[10, 20, 30, 40], interval="200ms", unit="cm")
    cfg = make_config(sensors=[sensor], mqtt={"topic_prefix": "it-site"})
    events = subscribe(f"{cfg.base}/events/#")
    start_gateway(cfg)
    events.wait_count(3)

    state_topic = cfg.topic("state", "tank.level")
    assert state_topic == f"it-site/{cfg.gateway_id}/state/tank/level"
    late = subscribe(state_topic)
    first = late.wait_count(1, topic=state_topic)[0]
    assert first.retain, "the first state message a late subscriber gets must be the retained one"
    state = first.json()
    check_reading_envelope(state, cfg.gateway_id, sensor)
    second = envelopes(events.snapshot())[1]
    assert state["seq"] >= second["seq"], \
        f"retained state {state} is older than a reading seen before subscribing ({second})"

    # It repeats an event on purpose: same id, same content.
    def event_with_that_id(msgs):
        return [m.json() for m in msgs if m.json()["id"] == state["id"]]
    same = events.wait_for(event_with_that_id, what=f"the event with id {state['id']}")
    assert same[0] == state


def test_seq_continues_across_a_restart(make_config, start_gateway, subscribe):
    sensor = sequence_sensor("pump.pressure", values=[1, 2, 3], interval="100ms", unit="bar")
    cfg = make_config(sensors=[sensor])
    sub = subscribe(f"{cfg.base}/events/#")

    first = start_gateway(cfg)
    sub.wait_count(5)
    assert first.terminate() == 0
    boundary = datetime.now(timezone.utc)
    run1 = envelopes(sub.snapshot())

    second = start_gateway(cfg)
    # Readings stamped after the first run ended belong to the second run.
    sub.wait_for(lambda msgs: len([e for e in envelopes(msgs)
                                   if parse_ts(e["ts"]) > boundary]) >= 5,
                 what="5 readings of the second run")
    assert second.running()
    all_events = envelopes(sub.snapshot())
    seqs = [e["seq"] for e in all_events]
    by_id = {}
    for env in all_events:
        check_reading_envelope(env, cfg.gateway_id, sensor)
        assert by_id.setdefault(env["id"], env) == env, f"id {env['id']} reused"

    last_of_first = max(e["seq"] for e in all_events if parse_ts(e["ts"]) <= boundary)
    first_of_second = min(e["seq"] for e in all_events if parse_ts(e["ts"]) > boundary)
    assert max(e["seq"] for e in run1) <= last_of_first
    assert first_of_second == last_of_first + 1, \
        f"first seq after restart {first_of_second}, last before {last_of_first}: {seqs}"
    assert_consecutive(seqs)


def test_relative_data_dir_is_resolved_against_the_config_folder(
        make_config, start_gateway, subscribe, tmp_path):
    cfg = make_config(data_dir="state-here")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sub = subscribe(f"{cfg.base}/events/#")
    gw = start_gateway(cfg, cwd=str(elsewhere))
    sub.wait_count(2)
    assert gw.terminate() == 0
    assert (cfg.path.parent / "state-here").is_dir(), \
        "data_dir 'state-here' not created next to the config file"
    assert not (elsewhere / "state-here").exists(), \
        "relative data_dir was resolved against the working directory"
