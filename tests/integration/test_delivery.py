# Delivery while the broker is away (SPEC §7): the gateway keeps reading,
# retries with backoff, and delivers what it read once the broker is back.
import re
import time
from datetime import timedelta

from tidegate_testkit import (MQTT_TROUBLE_RE, assert_consecutive, check_reading_envelope, envelopes,
                      free_port, parse_ts, sequence_sensor)

# Any line of the MQTT link about a (re)connect attempt, at any level.
MQTT_ATTEMPT_RE = re.compile(r"^[A-Z]+ mqtt: .*(connect|retry|retrying)",
                             re.IGNORECASE | re.MULTILINE)


def test_readings_taken_while_the_broker_is_down_are_delivered(
        make_config, start_gateway, subscribe, mosquitto_factory):
    port = free_port()  # nothing listens here yet
    sensor = sequence_sensor("line.flow", values=[1, 2, 3, 4, 5, 6, 7], interval="200ms",
                             unit="l/min")
    cfg = make_config(sensors=[sensor], mqtt={"uri": f"tcp://127.0.0.1:{port}"})
    gw = start_gateway(cfg)
    t0 = time.monotonic()

    # The failure is logged, the gateway keeps running and retries.
    gw.wait_for_log(MQTT_TROUBLE_RE, timeout=10)
    while time.monotonic() - t0 < 2.0:  # the outage lasts at least ~2 s
        time.sleep(0.01)
    assert gw.running(), f"gateway exited while the broker was down:\n{gw.log()}"
    # Start the broker right after the next logged attempt: the one after is a
    # backoff (>= 2 s by now) away, time enough to subscribe before the gateway
    # reconnects and flushes what it queued.
    attempts = len(MQTT_ATTEMPT_RE.findall(gw.log()))
    gw.wait_until(lambda: len(MQTT_ATTEMPT_RE.findall(gw.log())) > attempts, timeout=35,
                  interval=0.01, what="a logged retry of the MQTT connection")
    down_until = time.monotonic()

    broker = mosquitto_factory(port=port).start()
    sub = subscribe(f"{cfg.base}/events/#", port=broker.port)
    # ~2 s of readings at 5 Hz were taken while the broker was down.
    msgs = sub.wait_count(12, timeout=45)
    events = envelopes(msgs)
    for env in events:
        check_reading_envelope(env, cfg.gateway_id, sensor)
    assert_consecutive([e["seq"] for e in events])

    # The very first reading (taken at start, broker down) is among them.
    first_ts = min(parse_ts(e["ts"]) for e in events)
    assert first_ts <= gw.started_at + timedelta(seconds=1.5), \
        f"earliest delivered reading {first_ts} is not the one taken at start {gw.started_at}"
    outage = down_until - t0
    during = [e for e in events
              if parse_ts(e["ts"]) < gw.started_at + timedelta(seconds=outage)]
    assert len(during) >= 5, f"only {len(during)} readings from the {outage:.1f} s outage"
    values = [e["value"] for e in events]
    assert values == [sensor["options"]["values"][i % 7] for i in range(len(values))]
    assert gw.running()
