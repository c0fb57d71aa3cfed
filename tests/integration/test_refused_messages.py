"""Messages that are not events (publish actions, status, metrics) that the
broker refuses are given up after the same number of attempts as events, and
dead-lettered (`publish_refused`), instead of being sent again forever while
they hold the link back (SPEC §4, §7)."""

from __future__ import annotations

import re
import time

from tidegate_testkit import Subscriber, sequence_sensor


def write_rules(cfg, text: str) -> None:
    (cfg.path.parent / "rules.d" / "refused.yaml").write_text(text)


def test_mqtt5_refused_publish_action_is_dead_lettered_and_the_rest_flows(
        mosquitto_factory, make_config, start_gateway):
    broker = mosquitto_factory()
    cfg = make_config(
        sensors=[sequence_sensor("tick.n", values=list(range(1, 301)), interval="200ms")],
        mqtt={"uri": f"tcp://127.0.0.1:{broker.port}", "version": 5},
        extra={"metrics": {"interval": "1s"}})
    # One reading fires the rule once: its first action is denied by the ACL,
    # the second one is allowed.
    write_rules(cfg, """rules:
  - name: once
    when: tick.n == 3
    actions:
      - publish: { topic: it-refused/denied, payload: 'no', qos: 1 }
      - publish: { topic: it-refused/allowed, payload: 'yes', qos: 1 }
""")
    acl = broker.file("acl", "topic deny it-refused/denied\ntopic readwrite #\n")
    # See test_faults.py: a finite limit keeps a refusal a plain PUBACK 0x87.
    broker.extra += [f"acl_file {acl}", "max_queued_messages 1000"]
    broker.start()
    sub = Subscriber(broker.port, ["it-refused/#", cfg.topic("deadletter"), cfg.topic("metrics"),
                                   f"{cfg.base}/events/#"])
    gw = start_gateway(cfg)
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")
                    and m.json()["reason"] == "publish_refused"],
        timeout=20, what="a publish_refused dead letter for the publish action")
    letter = letters[0]
    assert letter["source"] == "mqtt", letter
    assert re.match(r"message to it-refused/denied refused 5 times: reason 135 \(Not authorized\)",
                    letter["detail"]), letter["detail"]
    assert [m.payload for m in sub.snapshot("it-refused/allowed")] == [b"yes"]
    assert not sub.snapshot("it-refused/denied")
    # Five attempts, then nothing more: the broker denied it, and denies
    # nothing after the dead letter.
    log = gw.log()
    assert len(re.findall(r"publish to it-refused/denied failed: reason 135 .*; will retry",
                          log)) == 4, log
    assert "giving up on a message to it-refused/denied after 5 attempts" in log
    denied = f"Denied PUBLISH from tidegate-{cfg.gateway_id} "
    denials = broker.log().count(denied)
    assert denials > 0
    time.sleep(2)
    assert broker.log().count(denied) == denials, "sent again after it was given up"
    # The link stayed up and everything else flows: readings, metrics.
    before = len(sub.snapshot(prefix=f"{cfg.base}/events/"))
    sub.wait_count(before + 3, prefix=f"{cfg.base}/events/", timeout=10)
    metrics = sub.wait_for(lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")],
                           timeout=5, what="metrics")
    assert metrics[-1]["reconnects"] == 0, metrics[-1]
    assert gw.running()
    assert gw.terminate() == 0
