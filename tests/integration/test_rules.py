"""Rules end to end (SPEC §5) against a real Mosquitto: rule events, actions
(publish, file output, exec, log), reloads, restarts, remote output commands,
and `tidegate check` / `tidegate replay` on the command line."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tidegate_testkit import Subscriber, run_cli, sequence_sensor


def write_rules(cfg, text, name="a.yaml"):
    path = cfg.path.parent / "rules.d" / name
    path.write_text(text)
    return path


def rule_events(sub, cfg, rule):
    return [m.json() for m in sub.snapshot(cfg.topic("rules") + "/" + rule) if m.payload]


HOT_RULES = """
rules:
  - name: hot
    when: g.temp > 30
    clear_when: g.temp < 20
    severity: critical
    actions:
      - publish: {{ topic: "it-alerts/{{{{gateway}}}}", payload: '{{"t": {{{{g.temp}}}}, "r": "{{{{rule}}}}"}}' }}
      - output: {{ name: fan, value: on }}
      - log: "hot at {{{{ round(g.temp, 1) }}}}"
    on_clear:
      - output: {{ name: fan, value: off }}
"""


def hot_config(make_config, tmp_path, values=(10, 40, 40, 10), interval="200ms"):
    fan = tmp_path / "fan"
    cfg = make_config(
        sensors=[sequence_sensor("g.temp", values=values, interval=interval)],
        extra={"outputs": [{"name": "fan", "driver": "file",
                            "options": {"path": str(fan), "initial": "off"}}]})
    write_rules(cfg, HOT_RULES.format())
    return cfg, fan


def test_rule_fires_and_clears_with_its_actions(make_config, start_gateway, broker_port,
                                                tmp_path):
    cfg, fan = hot_config(make_config, tmp_path)
    sub = Subscriber(broker_port, [f"{cfg.base}/#", f"it-alerts/{cfg.gateway_id}"])
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: len(rule_events(sub, cfg, "hot")) >= 2
                 and len(sub.snapshot(cfg.topic("outputs") + "/fan")) >= 3,
                 what="fired and cleared, fan on and off")
    fired, cleared = rule_events(sub, cfg, "hot")[:2]
    assert fired["type"] == "rule_fired" and fired["value"] is True
    assert fired["source"] == "rule:hot" and fired["rule"] == "hot"
    assert fired["severity"] == "critical" and fired["values"] == {"g.temp": 40}
    assert cleared["type"] == "rule_cleared" and cleared["value"] is False
    assert cleared["values"] == {"g.temp": 10}
    alerts = sub.snapshot(f"it-alerts/{cfg.gateway_id}")
    assert alerts and json.loads(alerts[0].payload) == {"t": 40, "r": "hot"}
    outputs = [m.json()["value"] for m in sub.snapshot(cfg.topic("outputs") + "/fan")]
    assert outputs[:3] == ["off", "on", "off"]
    assert "INFO rule: hot: hot at 40" in gw.log()
    # Order (SPEC §5.2): the reading's event, then the rule event, then the output's.
    seqs = {m.topic: m.json()["seq"] for m in sub.snapshot() if m.topic.startswith(cfg.base)
            and m.json().get("seq") == fired["seq"] - 1}
    assert any("/events/" in t for t in seqs), "the reading that fired comes just before"
    # on_clear starts with the output, so it switches before anything is
    # appended; its event still comes right after the rule event (as the
    # event of `actions`' output, which runs after a publish action, does).
    fan_events = [m.json() for m in sub.snapshot(cfg.topic("outputs") + "/fan")]
    assert fan_events[1]["seq"] == fired["seq"] + 1
    assert fan_events[2]["seq"] == cleared["seq"] + 1
    assert any("/events/" in m.topic for m in sub.snapshot() if m.topic.startswith(cfg.base)
               and m.json().get("seq") == cleared["seq"] - 1), "the reading that cleared"
    # The retained rule state for late joiners.
    late = Subscriber(broker_port, cfg.topic("rules") + "/hot")
    retained = late.wait_for(lambda ms: ms, what="retained rule event")
    assert retained[0].retain
    assert gw.terminate() == 0
    assert fan.read_text() in ("0", "1")


def test_firing_rule_resumes_after_restart_without_firing_again(make_config, start_gateway,
                                                                broker_port, tmp_path):
    cfg, fan = hot_config(make_config, tmp_path, values=(40,), interval="200ms")
    sub = Subscriber(broker_port, cfg.topic("rules") + "/hot")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: ms, what="rule fired")
    assert gw.terminate() == 0
    assert json.loads((cfg.data_dir / "rules.state").read_text())["rules"][0]["state"] == "firing"
    first_count = len(sub.snapshot())
    alerts = Subscriber(broker_port, f"it-alerts/{cfg.gateway_id}")
    again = start_gateway(cfg)
    again.wait_for_log(r"resumed rule state: 1 firing")
    time.sleep(1.5)  # several readings above the threshold
    assert len(sub.snapshot()) == first_count, "no new rule_fired after the restart"
    assert alerts.snapshot() == [], "actions are not run again"
    assert again.terminate() == 0


def test_broken_reload_keeps_old_rules_and_good_reload_takes_effect(make_config, start_gateway,
                                                                    broker_port, tmp_path):
    cfg, fan = hot_config(make_config, tmp_path)
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: rule_events(sub, cfg, "hot"), what="hot fires")
    # A broken file: rejected whole, logged, dead-lettered; the old set keeps running.
    write_rules(cfg, "rules:\n  - name: broken\n    when: g.temp >\n", name="b.yaml")
    gw.signal(signal.SIGHUP)
    dead = sub.wait_for(lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")
                                    and m.json()["reason"] == "rules_rejected"],
                        what="rules_rejected dead letter")
    assert "b.yaml:3" in dead[0]["detail"]
    n = len(rule_events(sub, cfg, "hot"))
    sub.wait_for(lambda ms: len(rule_events(sub, cfg, "hot")) > n + 1, what="old rules still run")
    # A good change, picked up without a signal (the files are watched).
    (cfg.path.parent / "rules.d" / "b.yaml").unlink()
    write_rules(cfg, "rules:\n  - name: cold\n    when: g.temp < 15\n")
    sub.wait_for(lambda ms: rule_events(sub, cfg, "cold"), timeout=15, what="the new rule fires")
    # The removed rule's retained event is emptied.
    sub.wait_for(lambda ms: [m for m in ms if m.topic == cfg.topic("rules") + "/hot"
                             and m.payload == b""], what="hot's retained event emptied")
    status = [m.json() for m in sub.snapshot(cfg.topic("status")) if m.payload]
    assert status[-1]["rules"] == 1
    assert gw.terminate() == 0


def test_exec_never_runs_a_shell_and_failures_are_dead_lettered(make_config, start_gateway,
                                                                broker_port, tmp_path):
    out = tmp_path / "argv.json"
    marker = tmp_path / "pwned"
    script = (f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))")
    tricky = [f"a; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", "two\nlines",
              "{{g.temp}} °C"]
    rules = {"rules": [
        {"name": "run_it", "when": "g.temp > 30",
         "actions": [{"exec": ["/usr/bin/python3", "-c", script, *tricky]}]},
        {"name": "fail_it", "when": "g.temp > 30",
         "actions": [{"exec": ["/bin/sh", "-c", "echo broken pipe >&2; exit 3"]}]},
    ]}
    cfg = make_config(sensors=[sequence_sensor("g.temp", values=(40,), interval="1s")])
    write_rules(cfg, json.dumps(rules))  # JSON is YAML: no quoting trouble
    sub = Subscriber(broker_port, cfg.topic("deadletter"))
    gw = start_gateway(cfg)
    gw.wait_until(lambda: out.exists() and out.read_text(), what="the program's argv file")
    argv = json.loads(out.read_text())
    assert argv == [f"a; touch {marker}", f"$(touch {marker})", f"`touch {marker}`",
                    "two\nlines", "40 °C"]
    assert not marker.exists(), "no shell ran"
    dead = sub.wait_for(lambda ms: [m.json() for m in ms if m.json()["reason"] == "exec_failed"],
                        what="exec_failed dead letter")
    assert dead[0]["source"] == "rule:fail_it"
    assert "exit 3" in dead[0]["detail"] and "broken pipe" in dead[0]["detail"]
    assert gw.terminate() == 0


def test_remote_output_commands(make_config, start_gateway, broker_port, tmp_path):
    relay = tmp_path / "relay"
    cfg = make_config(
        sensors=[sequence_sensor("g.temp", interval="1s")],
        extra={"outputs": [{"name": "relay", "driver": "file", "remote": True,
                            "options": {"path": str(relay), "on": "ON", "off": "OFF",
                                        "initial": "off"}},
                           {"name": "local", "driver": "file",
                            "options": {"path": str(tmp_path / "local")}}]})
    sub = Subscriber(broker_port, [cfg.topic("outputs") + "/#", cfg.topic("deadletter")])
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: ms, what="the output's state at start")
    assert relay.read_text() == "OFF"

    def pub(topic, payload, retain=False):
        args = ["mosquitto_pub", "-p", str(broker_port), "-q", "1", "-t", topic, "-m", payload]
        subprocess.run(args + (["-r"] if retain else []), check=True, timeout=10)

    pub(cfg.topic("cmd") + "/outputs/relay", "On")
    sub.wait_for(lambda ms: [m for m in ms if m.payload and m.json().get("value") == "on"],
                 what="relay on")
    assert relay.read_text() == "ON"
    pub(cfg.topic("cmd") + "/outputs/relay", "maybe")
    sub.wait_for(lambda ms: [m for m in ms if m.topic == cfg.topic("deadletter")],
                 what="a dead letter for a bad command")
    pub(cfg.topic("cmd") + "/outputs/local", "on")  # not remote: refused
    time.sleep(0.5)
    local = tmp_path / "local"
    assert not local.exists() or local.read_text() != "1", "a non-remote output is not switched"
    assert relay.read_text() == "ON"
    assert gw.terminate() == 0


def test_check_and_replay_on_the_command_line(tidegate_bin, tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: hot\n    when: t.x > 30\n    for: 2s\n"
                     "    clear_when: t.x < 20\n")
    r = run_cli(tidegate_bin, "check", str(rules))
    assert r.returncode == 0 and r.stdout == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    when: avg(t.x) > 1\n  - name: x\n    when: t.x > 2\n")
    r = run_cli(tidegate_bin, "check", str(bad))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(f"{bad}:3:" in line and "error:" in line for line in lines), r.stdout
    assert any(f"{bad}:4:" in line and "duplicate" in line for line in lines), r.stdout

    def ev(ts, v):
        return json.dumps({"v": 1, "id": f"g:{ts}", "type": "reading", "gateway": "g", "seq": ts,
                           "source": "t.x", "ts": f"2026-11-26T10:00:{ts:02d}.000Z", "value": v})
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([ev(0, 10), ev(1, 35), ev(2, 36), ev(3, 37), ev(5, 15)]) + "\n")
    r = run_cli(tidegate_bin, "replay", "--rules", str(rules), str(events))
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(o["ts"], o["transition"]) for o in out] == [
        ("2026-11-26T10:00:03.000Z", "fired"), ("2026-11-26T10:00:05.000Z", "cleared")]
    assert out[0]["values"] == {"t.x": 37}
    r = run_cli(tidegate_bin, "replay", str(events))
    assert r.returncode == 2
