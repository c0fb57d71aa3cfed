"""Fault tests of the durable outbox and the MQTT link (SPEC §4 dead letters,
§7 guarantees) against real brokers: a Mosquitto killed with SIGKILL and
restarted, an outbox held at its size bound, a broker that refuses a topic
(MQTT 5 reason code) and one that closes the connection on a publish (MQTT
3.1.1, where a refusal has no code)."""

import re
import time

from tidegate_testkit import Subscriber, sequence_sensor
from tidegate_testkit.faultkit import (CuttableProxy, SessionSubscriber, contiguous, kill_broker,
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


class CounterFile:
    """A file another program keeps up to date, as the `file` driver reads
    it: a background thread writes 1, 2, 3, ... (atomically, by rename)
    until stopped. With `deadband` on the sensor every new value is one
    event and an unchanged file makes none, so the test decides when events
    stop being created."""

    def __init__(self, path, period=0.001):
        import threading

        self.path = path
        self.value = 1
        self.period = period
        self._write()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _write(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.value}\n")
        tmp.replace(self.path)

    def _run(self):
        while not self._stop.is_set():
            self.value += 1
            self._write()
            time.sleep(self.period)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(5)


DROP_DETAIL_RE = re.compile(r"^(\d+) undelivered event\(s\) dropped, seq (\d+)\.\.(\d+) ")


def test_outbox_bound_drops_exactly_the_oldest_counted_and_dead_lettered(
        mosquitto_factory, make_config, start_gateway, tmp_path):
    """outbox.max_bytes 32 KiB with the network cut: ~500 events/s for a few
    seconds overflow it. After the network is back: the seqs missing at a
    subscriber (which was on the broker all along) are exactly 1..D, a
    single run of the oldest; D is the `dropped` counter of <p>/metrics;
    and the outbox_full dead letters on <p>/deadletter report D events,
    seq 1..D. No event is created once the network is back, so every drop
    happened while it was cut."""
    broker = mosquitto_factory().start()
    proxy = CuttableProxy(broker.port)
    proxy.cut()
    counter = CounterFile(tmp_path / "counter")
    sensor = {"name": "line.count", "driver": "file", "interval": "2ms", "deadband": 0.5,
              "options": {"path": str(counter.path)}}
    try:
        cfg = make_config(sensors=[sensor],
                          mqtt={"uri": f"tcp://127.0.0.1:{proxy.port}", "keepalive": "1s"},
                          extra={"outbox": {"max_bytes": "32KiB"},
                                 "metrics": {"interval": "1s"}})
        sub = Subscriber(broker.port, [f"{cfg.base}/events/#", cfg.topic("deadletter"),
                                       cfg.topic("metrics")])
        gw = start_gateway(cfg)
        counter.start()
        gw.wait_for_log(r"connect to .* failed", timeout=10)
        gw.wait_for_log(r"undelivered event\(s\) dropped", timeout=20)
        time.sleep(2.0)  # more drops, in several batches
        counter.stop()
        time.sleep(0.5)  # the last value is read; from now on no new event
        proxy.restore()

        def settled(ms):
            metrics = [m.json() for m in ms if m.topic == cfg.topic("metrics")]
            letters = [m.json() for m in ms if m.topic == cfg.topic("deadletter")]
            if not metrics or metrics[-1]["outbox_depth"] != 0:
                return None
            dropped = metrics[-1]["dropped"]
            reported = sum(int(DROP_DETAIL_RE.match(d["detail"]).group(1))
                           for d in letters if d.get("reason") == "outbox_full")
            return (metrics[-1], letters) if dropped > 0 and reported == dropped else None

        last_metrics, letters = sub.wait_for(
            settled, timeout=30, what="an empty outbox and dead letters reporting every drop")
        dropped = last_metrics["dropped"]
        events = seqs_of(sub.snapshot())
        every = set(events) | {d["seq"] for d in letters}
        missing = sorted(set(range(1, max(every) + 1)) - every)
        print(f"{counter.value} values written; dropped {dropped}; received "
              f"{len(set(events))} events, seq {min(events)}..{max(events)}; "
              f"{len(letters)} dead letter(s): {[d['detail'] for d in letters]}")
        assert missing == list(range(1, dropped + 1)), \
            f"missing seqs {missing[:5]}..{missing[-5:]} ({len(missing)}) are not 1..{dropped}"
        assert len(events) == len(set(events)), "no event was sent twice here"
        covered = []
        for d in letters:
            assert d["type"] == "deadletter" and d["source"] == "outbox", d
            assert d["reason"] == "outbox_full", d
            m = DROP_DETAIL_RE.match(d["detail"])
            covered.append((int(m.group(2)), int(m.group(3))))
        covered.sort()
        assert covered[0][0] == 1 and covered[-1][1] == dropped, covered
        assert last_metrics["deadletter"] == len(letters)
        assert gw.terminate() == 0
    finally:
        counter.stop()
        proxy.close()


def test_mqtt5_acl_refusal_is_retried_then_dead_lettered_and_the_rest_flows(
        mosquitto_factory, make_config, start_gateway):
    """Mosquitto with an ACL that denies one sensor's events topic; the
    gateway speaks MQTT 5, so the denied QoS 1 publish comes back as a
    PUBACK with reason 0x87 (not authorized). The refused event is retried
    with backoff (1, 2, 4, 8 s), given up at the 5th refusal and published
    on <p>/deadletter as `publish_refused`; the other sensor's events, held
    behind it meanwhile (delivery is in seq order), then all arrive, and the
    gateway keeps running. Takes ~15 s: the backoff is the product's."""
    broker = mosquitto_factory()
    cfg = make_config(
        sensors=[sequence_sensor("good.one", interval="100ms"),
                 # One reading, at start: the one event that is refused.
                 sequence_sensor("bad.one", values=[7], interval="1h")],
        mqtt={"uri": f"tcp://127.0.0.1:{broker.port}", "version": 5},
        extra={"metrics": {"interval": "1s"}})
    denied = cfg.topic("events", "bad.one")
    acl = broker.file("acl", f"topic deny {denied}\ntopic readwrite #\n")
    # Mosquitto 2.0.11 ends a handled-but-refused publish with "quota
    # exceeded" whenever the client's outgoing packet count is at least
    # max_queued_messages -- always, with the 0 (no limit) of conftest's
    # brokers -- and then drops the connection right after its PUBACK 0x87.
    # A finite limit keeps the refusal a plain PUBACK, as it is by default.
    broker.extra += [f"acl_file {acl}", "max_queued_messages 1000"]
    broker.start()
    sub = Subscriber(broker.port, [f"{cfg.base}/events/#", cfg.topic("deadletter"),
                                   cfg.topic("metrics")])
    gw = start_gateway(cfg)
    t0 = time.monotonic()
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")],
        timeout=40, what="a publish_refused dead letter")
    took = time.monotonic() - t0
    letter = letters[0]
    assert letter["type"] == "deadletter" and letter["reason"] == "publish_refused", letter
    assert letter["source"] == "mqtt", letter
    m = re.match(rf"event {re.escape(cfg.gateway_id)}:(\d+) to {re.escape(denied)} refused 5 "
                 r"times: reason 135 \(Not authorized\)", letter["detail"])
    assert m, letter["detail"]
    refused = int(m.group(1))

    log = gw.log()
    retries = re.findall(rf"publish of event seq {refused} to {re.escape(denied)} failed: .*"
                         r"reason 135 .*; retrying in (\S+)", log)
    assert len(retries) == 4, retries
    assert f"broker refused event seq {refused} on {denied} 5 times" in log
    # The broker's side of it: the publish was denied by its ACL.
    assert f"Denied PUBLISH from tidegate-{cfg.gateway_id} " in broker.log()

    # The other sensor's events flow again: every seq up to well past the
    # refused one arrives, except the refused event itself (its dead letter
    # is on <p>/deadletter).
    good = cfg.topic("events", "good.one")

    def caught_up(ms):
        seqs = {m.json()["seq"] for m in ms if m.topic == good}
        seqs |= {m.json()["seq"] for m in ms if m.topic == cfg.topic("deadletter")}
        return seqs if seqs and max(seqs) > letter["seq"] + 20 else None

    seqs = sub.wait_for(caught_up, timeout=15, what="good events after the dead letter")
    assert refused not in seqs
    assert sorted(seqs | {refused}) == list(range(1, max(seqs) + 1))
    assert not [m for m in sub.snapshot() if m.topic == denied]
    metrics = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")
                    and m.json()["deadletter"] >= 1],
        timeout=5, what="metrics counting the dead letter")
    assert metrics[-1]["deadletter"] == 1
    print(f"refused seq {refused}; dead letter after {took:.1f} s; retries in {retries}; "
          f"{len(seqs)} seqs delivered")
    assert gw.running()
    assert gw.terminate() == 0


def test_mqtt311_broker_closing_the_connection_on_an_event_dead_letters_it(
        mosquitto_factory, make_config, start_gateway):
    """MQTT 3.1.1 cannot refuse a publish with a code; a broker that refuses
    one closes the connection instead (RabbitMQ on an ACL denial). Mosquitto
    does the same for a packet over its max_packet_size, which makes one
    event the broker closes the connection on, every time it is sent. The
    gateway tells this from an outage: after the first loss it sends the
    events that were in flight one at a time; the connection dying right
    after the same event was sent alone, 5 times in a row, makes it refused:
    dead-lettered as publish_refused, and the other sensor's events flow."""
    broker = mosquitto_factory(extra=["max_packet_size 1024"])
    broker.start()
    cfg = make_config(
        sensors=[sequence_sensor("good.one", interval="100ms"),
                 # One reading, at start, with an envelope over 1 KiB.
                 sequence_sensor("big.one", values=[7], interval="1h", unit="x" * 1500)],
        mqtt={"uri": f"tcp://127.0.0.1:{broker.port}", "version": "3.1.1"},
        extra={"metrics": {"interval": "1s"}})
    sub = Subscriber(broker.port, [f"{cfg.base}/events/#", cfg.topic("deadletter"),
                                   cfg.topic("metrics")])
    gw = start_gateway(cfg)
    t0 = time.monotonic()
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")],
        timeout=30, what="a publish_refused dead letter")
    took = time.monotonic() - t0
    letter = letters[0]
    big = cfg.topic("events", "big.one")
    assert letter["reason"] == "publish_refused" and letter["source"] == "mqtt", letter
    m = re.match(rf"event {re.escape(cfg.gateway_id)}:(\d+) to {re.escape(big)} refused 5 "
                 r"times: the broker closed the connection right after it was sent, each time",
                 letter["detail"])
    assert m, letter["detail"]
    refused = int(m.group(1))
    log = gw.log()
    strikes = re.findall(rf"lost right after event seq {refused} was sent alone \((\d) of 5",
                         log)
    # The last run of strikes led to the verdict (a metrics message sent
    # right after the event would have made a loss ambiguous and restarted
    # the count: possible, rare).
    assert strikes[-4:] == ["1", "2", "3", "4"], strikes
    assert broker.log().count("disconnected due to oversize packet") >= 5

    good = cfg.topic("events", "good.one")

    def caught_up(ms):
        seqs = {m.json()["seq"] for m in ms if m.topic in (good, cfg.topic("deadletter"))}
        return seqs if seqs and max(seqs) > letter["seq"] + 20 else None

    seqs = sub.wait_for(caught_up, timeout=15, what="good events after the dead letter")
    assert refused not in seqs
    assert sorted(seqs | {refused}) == list(range(1, max(seqs) + 1))
    metrics = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")
                    and m.json()["deadletter"] >= 1],
        timeout=5, what="metrics counting the dead letter")
    print(f"refused seq {refused}; dead letter after {took:.1f} s; "
          f"reconnects {metrics[-1]['reconnects']}; {len(seqs)} seqs delivered")
    assert gw.running()
    assert gw.terminate() == 0


def test_a_flapping_network_dead_letters_nothing(mosquitto_factory, make_config,
                                                  start_gateway):
    """The other side of the previous test: connections lost again and again
    while ~100 events/s stream (cuts at seeded random moments) are an outage,
    not a refusal. A cut may come right after an event was sent alone (a
    strike), but the event goes through on the next connection, so strikes
    never add up. Every seq arrives and nothing is dead-lettered."""
    import random

    rng = random.Random(4)
    broker = mosquitto_factory().start()
    proxy = CuttableProxy(broker.port)
    try:
        cfg = make_config(sensors=[sequence_sensor(interval="10ms")],
                          mqtt={"uri": f"tcp://127.0.0.1:{proxy.port}", "keepalive": "1s"})
        sub = Subscriber(broker.port, [f"{cfg.base}/events/#", cfg.topic("deadletter")])
        gw = start_gateway(cfg)
        sub.wait_for(lambda ms: len(seqs_of(ms)) >= 50, timeout=10, what="50 events")
        cuts = 6
        for i in range(cuts):
            # Up long enough to reconnect (the backoff after a loss is ~1 s).
            gw.wait_for_log(r"connected to .*", count=i + 1, timeout=30)
            time.sleep(rng.uniform(0.0, 1.5))
            proxy.cut()
            time.sleep(rng.uniform(0.1, 1.0))
            proxy.restore()
        gw.wait_for_log(r"connected to .*", count=cuts + 1, timeout=30)
        last = gw.wait_until(lambda: (s := seqs_of(sub.snapshot())) and max(s), what="events")
        sub.wait_for(lambda ms: (s := seqs_of(ms)) and min(s) == 1 and max(s) > last + 100
                     and contiguous(s), timeout=30, what="every seq across the cuts")
        assert not sub.snapshot(topic=cfg.topic("deadletter"))
        assert "giving up" not in gw.log()
        strikes = len(re.findall(r"was sent alone \(\d of 5", gw.log()))
        print(f"{cuts} cuts, {gw.log().count('lost: ')} connection losses, "
              f"{strikes} strike(s), {len(set(seqs_of(sub.snapshot())))} seqs")
        assert gw.terminate() == 0
    finally:
        proxy.close()
