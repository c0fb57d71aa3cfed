"""Several brokers (SPEC §13): `mqtt.uri` as a list. The gateway takes the
first broker that accepts, moves to the next when its broker goes away, and
the outbox resends what was not acknowledged, so the two brokers together
see every seq. The broker in use is in <p>/status (`broker`)."""

from __future__ import annotations

import time

from tidegate_testkit import Subscriber, sequence_sensor
from tidegate_testkit.core import free_port
from tidegate_testkit.faultkit import CuttableProxy, contiguous, kill_broker, seqs_of


def fast_sensor():
    return sequence_sensor("f.v", values=list(range(100)), interval="50ms", unit=None)


def status_broker(sub, cfg):
    msgs = sub.snapshot(cfg.topic("status"))
    return msgs[-1].json().get("broker") if msgs else None


def test_failover_to_the_second_broker_loses_nothing(make_config, start_gateway,
                                                     mosquitto_factory):
    a = mosquitto_factory().start()
    b = mosquitto_factory().start()
    proxy = CuttableProxy(a.port)  # the way to broker A, which can be cut
    uri_a, uri_b = f"tcp://127.0.0.1:{proxy.port}", f"tcp://127.0.0.1:{b.port}"
    cfg = make_config(sensors=[fast_sensor()],
                      mqtt={"uri": [uri_a, uri_b], "keepalive": "1s"})
    # Subscribers on the brokers themselves, not through the proxy.
    sub_a = Subscriber(a.port, [cfg.topic("events") + "/#", cfg.topic("status")])
    sub_b = Subscriber(b.port, [cfg.topic("events") + "/#", cfg.topic("status")])
    gw = start_gateway(cfg)
    sub_a.wait_for(lambda ms: len(seqs_of(ms)) >= 20, timeout=10, what="events on broker A")
    assert status_broker(sub_a, cfg) == uri_a
    proxy.cut()
    cut_at = time.monotonic()
    sub_b.wait_for(lambda ms: len(seqs_of(ms)) >= 20, timeout=20, what="events on broker B")
    moved_after = time.monotonic() - cut_at
    sub_b.wait_for(lambda ms: status_broker(sub_b, cfg) == uri_b, timeout=5,
                   what="status on B naming B")
    assert gw.terminate() == 0
    time.sleep(0.3)
    got_a, got_b = seqs_of(sub_a.snapshot()), seqs_of(sub_b.snapshot())
    both = got_a + got_b
    assert contiguous(both), (sorted(set(got_a))[-5:], sorted(set(got_b))[:5])
    duplicates = len(both) - len(set(both))
    print(f"failover: {len(set(both))} seqs, {duplicates} duplicate(s), "
          f"on B {moved_after:.1f} s after the cut")
    proxy.close()


def test_sigkilled_broker_the_gateway_moves_on(make_config, start_gateway, mosquitto_factory):
    a = mosquitto_factory().start()
    b = mosquitto_factory().start()
    cfg = make_config(sensors=[fast_sensor()],
                      mqtt={"uri": [f"tcp://127.0.0.1:{a.port}", f"tcp://127.0.0.1:{b.port}"],
                            "keepalive": "1s"})
    sub_b = Subscriber(b.port, [cfg.topic("events") + "/#", cfg.topic("status")])
    gw = start_gateway(cfg)
    gw.wait_for_log(rf"connected to tcp://127.0.0.1:{a.port}", timeout=10)
    time.sleep(0.5)
    kill_broker(a)
    # What broker A acknowledged went down with it; from the switch on, B
    # gets every seq, the unacknowledged backlog first.
    sub_b.wait_for(lambda ms: len(seqs_of(ms)) >= 30, timeout=20, what="events on broker B")
    assert gw.running()
    got = seqs_of(sub_b.snapshot())
    assert contiguous(got), sorted(set(got))[:10]
    assert status_broker(sub_b, cfg) == f"tcp://127.0.0.1:{b.port}"
    assert gw.terminate() == 0


def test_unreachable_first_broker_is_skipped_promptly(make_config, start_gateway,
                                                      mosquitto_factory):
    b = mosquitto_factory().start()
    dead = f"tcp://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    cfg = make_config(sensors=[fast_sensor()],
                      mqtt={"uri": [dead, f"tcp://127.0.0.1:{b.port}"]})
    sub_b = Subscriber(b.port, [cfg.topic("events") + "/#", cfg.topic("status")])
    started = time.monotonic()
    gw = start_gateway(cfg)
    sub_b.wait_for(lambda ms: seqs_of(ms), timeout=10, what="the first event on broker B")
    first = time.monotonic() - started
    print(f"first event on the second broker {first:.2f} s after start")
    assert first < 5, first
    assert status_broker(sub_b, cfg) == f"tcp://127.0.0.1:{b.port}"
    assert gw.terminate() == 0
