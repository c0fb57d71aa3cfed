"""Outputs switched by rules, through the real gateway: a timed switch
(`for:`) goes back by itself with an `output` event for each real change, in
order; a failing output is dead-lettered (`output_failed`) and works again
once its device is back (SPEC §3, §5)."""

from __future__ import annotations

import time

from tidegate_testkit import Subscriber, sequence_sensor


def test_timed_output_switches_back_and_failures_are_dead_lettered(make_config, start_gateway,
                                                                   broker_port, tmp_path):
    pulse = tmp_path / "pulse"
    gone = tmp_path / "gone"
    gone.mkdir()
    cfg = make_config(
        # 1 once, then 0 for a long time: the rule fires once.
        sensors=[sequence_sensor("s.v", values=[1] + [0] * 200, interval="300ms", unit=None)],
        extra={"outputs": [
            {"name": "pulse", "driver": "file", "options": {"path": str(pulse), "initial": "off"}},
            {"name": "broken", "driver": "file", "options": {"path": str(gone / "x")}}]})
    (cfg.path.parent / "rules.d" / "out.yaml").write_text("""rules:
  - name: kick
    when: s.v > 0.5
    actions:
      - output: { name: pulse, value: on, for: 1s }
      - output: { name: broken, value: on }
""")
    gone.rmdir()  # the second output's folder is missing: switching it fails
    sub = Subscriber(broker_port, [cfg.topic("outputs") + "/#", cfg.topic("deadletter"),
                                   cfg.topic("rules") + "/#"])
    gw = start_gateway(cfg)
    changes = sub.wait_for(
        lambda ms: (v := [m.json()["value"] for m in ms if m.topic == cfg.topic("outputs", "pulse")])
        and v[-3:] == ["off", "on", "off"] and v,
        timeout=10, what="pulse: off at start, on, then off again after 1 s")
    assert changes == ["off", "on", "off"], changes
    on_at, off_at = [m.received for m in sub.snapshot(cfg.topic("outputs", "pulse"))][1:3]
    assert 0.7 < off_at - on_at < 3, f"switched back after {off_at - on_at:.2f} s"
    assert pulse.read_text() == "0"
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")],
        timeout=5, what="output_failed for the output whose folder is missing")
    assert letters[0]["reason"] == "output_failed" and letters[0]["source"] == "output:broken"
    # The rule event comes before the output events of its actions.
    order = [m.topic for m in sub.snapshot() if m.topic != cfg.topic("outputs", "pulse")
             or m.json()["value"] == "on"]
    assert order.index(cfg.topic("rules") + "/kick") < order.index(cfg.topic("outputs", "pulse"))
    time.sleep(0.2)
    assert gw.running()
    assert gw.terminate() == 0
