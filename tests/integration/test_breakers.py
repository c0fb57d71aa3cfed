"""Circuit breakers (SPEC §11) through the real gateway: a file output whose
folder disappears and comes back, an exec program that fails and then
works. Breaker events on <p>/breakers/<target> (retained), skipped calls as
`circuit_open` dead letters, and `check` on breaker keys."""

from __future__ import annotations

import re

from tidegate_testkit import Subscriber, run_cli, sequence_sensor

DIAG_RE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$")

KICK = """rules:
  - name: kick
    when: s.v > 0.5
    actions:
{actions}
"""


def breaker_values(sub: Subscriber, topic: str) -> list[str]:
    return [m.json()["value"] for m in sub.snapshot(topic)]


def test_output_breaker_opens_skips_and_closes(make_config, start_gateway, broker_port, tmp_path):
    folder = tmp_path / "relay"
    cfg = make_config(
        sensors=[sequence_sensor("s.v", values=[1, 0], interval="150ms", unit=None)],
        extra={"outputs": [{"name": "valve", "driver": "file",
                            "options": {"path": str(folder / "valve")},
                            "breaker": {"failures": 3, "open_for": "2s"}}]})
    (cfg.path.parent / "rules.d" / "kick.yaml").write_text(
        KICK.format(actions="      - output: { name: valve, value: on }")
        + "    on_clear:\n      - output: { name: valve, value: off }\n")
    topic = cfg.topic("breakers") + "/output/valve"
    sub = Subscriber(broker_port, [cfg.topic("breakers") + "/#", cfg.topic("deadletter"),
                                   cfg.topic("outputs") + "/#"])
    gw = start_gateway(cfg)
    opened = sub.wait_for(lambda ms: [m for m in ms if m.topic == topic], timeout=10,
                          what="the breaker opening")[0]
    env = opened.json()
    assert env["type"] == "breaker" and env["value"] == "open", env
    assert env["target"] == "output/valve" and env["failures"] == 3, env
    assert env["source"] == "breaker:output/valve"
    assert "valve" in env["detail"], env
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")
                    and m.json()["reason"] == "circuit_open"],
        timeout=5, what="a circuit_open dead letter")
    assert letters[0]["source"] == "output:valve", letters

    # The folder comes back: after open_for, a trial switch closes the breaker.
    folder.mkdir()
    sub.wait_for(lambda ms: breaker_values(sub, topic)[-2:] == ["half_open", "closed"],
                 timeout=10, what="half_open then closed")
    assert breaker_values(sub, topic) == ["open", "half_open", "closed"]
    sub.wait_for(lambda ms: [m for m in ms if m.topic == cfg.topic("outputs", "valve")],
                 timeout=5, what="an output event once the valve works")
    # The retained state for a late subscriber is the latest: closed.
    late = Subscriber(broker_port, topic)
    retained = late.wait_for(lambda ms: ms, timeout=5, what="the retained breaker state")
    assert retained[0].retain and retained[0].json()["value"] == "closed"
    late.close()
    assert gw.running()
    assert gw.terminate() == 0


def test_exec_breaker_opens_and_closes_when_the_program_works(make_config, start_gateway,
                                                              broker_port, tmp_path):
    flag = tmp_path / "works"
    program = tmp_path / "flaky.sh"
    program.write_text(f"#!/bin/sh\n[ -e {flag} ] && exit 0\necho broken >&2\nexit 3\n")
    program.chmod(0o755)
    cfg = make_config(sensors=[sequence_sensor("s.v", values=[1, 0], interval="150ms",
                                               unit=None)])
    (cfg.path.parent / "rules.d" / "kick.yaml").write_text(KICK.format(
        actions=f"      - exec: {{ argv: [{program}], breaker: {{ failures: 2, open_for: 1s }} }}"))
    topic = cfg.topic("breakers") + "/exec/flaky.sh"
    sub = Subscriber(broker_port, [cfg.topic("breakers") + "/#", cfg.topic("deadletter")])
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: breaker_values(sub, topic), timeout=10, what="the breaker opening")
    env = sub.snapshot(topic)[0].json()
    assert env["value"] == "open" and env["failures"] == 2, env
    assert env["target"] == "exec/flaky.sh"
    assert "exit 3" in env["detail"] and "broken" in env["detail"], env
    letters = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")
                    and m.json()["reason"] == "circuit_open"],
        timeout=5, what="a circuit_open dead letter")
    assert letters[0]["source"] == "rule:kick"
    assert "exec/flaky.sh not run" in letters[0]["detail"]
    flag.touch()
    sub.wait_for(lambda ms: breaker_values(sub, topic)[-1:] == ["closed"], timeout=10,
                 what="closed once the program works")
    values = breaker_values(sub, topic)
    # Trials may fail again before the flag is seen: open/half_open pairs.
    assert values[0] == "open" and values[-2:] == ["half_open", "closed"], values
    assert gw.terminate() == 0


def test_check_reports_bad_breaker_keys(tidegate_bin, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""gateway: {{ id: b, data_dir: {tmp_path / 'data'} }}
rules: {{ paths: [{tmp_path / 'rules.d'}] }}
sensors: []
outputs:
  - name: valve
    driver: file
    options: {{ path: {tmp_path / 'v'} }}
    breaker: {{ failures: 0, open_fro: 1s }}
  - name: pump
    driver: file
    options: {{ path: {tmp_path / 'p'} }}
    breaker: 5
""")
    (tmp_path / "rules.d").mkdir()
    (tmp_path / "rules.d" / "r.yaml").write_text("""rules:
  - name: r
    when: x > 1
    actions:
      - exec: { argv: [/bin/true], breaker: { open_for: 1h } }
""")
    r = run_cli(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    found = {(m["line"], m["col"]): m["msg"] for m in map(DIAG_RE.match, r.stdout.splitlines())
             if m}
    assert found[("8", "26")] == "breaker: failures: must be 1 to 1000, got 0", r.stdout
    assert found[("8", "29")].startswith("unknown key 'open_fro' in 'breaker' (did you mean "
                                         "'open_for'?)"), r.stdout
    assert found[("12", "14")].startswith("breaker: expected a map"), r.stdout
    r = run_cli(tidegate_bin, "check", str(tmp_path / "rules.d" / "r.yaml"))
    assert r.returncode == 1, r
    assert r.stdout.endswith(":5:57: error: breaker: open_for: must be 100ms to 10m, got 1h\n"), \
        r.stdout
