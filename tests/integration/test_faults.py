"""Fault tests of the durable outbox and the MQTT link (SPEC §4 dead letters,
§7 guarantees) against real brokers: a Mosquitto killed with SIGKILL and
restarted, an outbox held at its size bound, a broker that refuses a topic
(MQTT 5 reason code) and one that closes the connection on a publish (MQTT
3.1.1, where a refusal has no code)."""

import re
import time

from conftest import Subscriber, sequence_sensor
from faultkit import (CuttableProxy, SessionSubscriber, contiguous, kill_broker,
                      restart_broker, seqs_of)

# A broker that keeps its sessions and queued messages across a crash as far
# as Mosquitto can: persistence on, the database written after every change
# (autosave_on_changes counts changes; with autosave_interval 1 each one
# triggers a save at the end of that pass of the broker's loop), and no limit
# on QoS 1 messages in flight to a subscriber, so a message is written to a
# connected subscriber in the same pass that acknowledges it to the gateway.
PERSISTENT_BROKER = ["autosave_interval 1", "autosave_on_changes true",
                     "max_inflight_messages 0"]


def persistent_broker(mosquitto_factory):
    broker = mosquitto_factory()
    broker.extra += ["persistence true", f"persistence_location {broker.dir}/",
                     *PERSISTENT_BROKER]
    return broker


def test_broker_sigkill_and_restart_loses_no_seq(mosquitto_factory, make_config,
                                                 start_gateway):
    """Gateway streaming ~100 events/s; the broker is SIGKILLed, stays down
    3 s and comes back on the same port. A subscriber with a persistent
    session, which comes back only after the gateway has reconnected and
    sent its backlog, sees every seq from the first to the last: what the
    broker had not acknowledged the gateway sends again from its outbox;
    what the broker acknowledged had already been written to the connected
    subscriber; and the subscription survives in the broker's persistence
    file, so the backlog is queued for the absent subscriber."""
    broker = persistent_broker(mosquitto_factory).start()
    cfg = make_config(sensors=[sequence_sensor(interval="10ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}", "keepalive": "1s"})
    sub = SessionSubscriber(broker.port, f"{cfg.base}/events/#")
    try:
        gw = start_gateway(cfg)
        sub.wait_for(lambda ms: len(seqs_of(ms)) >= 300, timeout=15, what="300 events")
        time.sleep(0.3)  # let the broker save the session at least once more
        kill_broker(broker)
        killed_at = time.monotonic()
        sub.pause()
        seen_before = seqs_of(sub.snapshot())
        gw.wait_for_log(r"connection to .* lost", timeout=10)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - killed_at)))
        restart_broker(broker)
        gw.wait_for_log(r"connected to .*", count=2, timeout=30)
        time.sleep(1.0)  # the backlog goes to the broker while the subscriber is away
        sub.resume()
        target = max(seen_before) + 500
        sub.wait_for(lambda ms: (s := seqs_of(ms)) and max(s) >= target
                     and min(s) == 1 and contiguous(s),
                     timeout=30, what=f"every seq from 1 to at least {target}")
        seqs = seqs_of(sub.snapshot())
        print(f"broker killed after seq {max(seen_before)}; subscriber got {len(seqs)} "
              f"messages for seqs 1..{max(seqs)} ({len(seqs) - len(set(seqs))} redelivered); "
              f"subscriber connects: {sub.connects}")
        assert gw.running()
        assert gw.terminate() == 0
    finally:
        sub.close()
