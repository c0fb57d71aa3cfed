"""Files that are not what their names say, and config text that trips the
YAML parser (SPEC §1, §2, §5.2), against the real binary and a real broker:

- a FIFO or a symlink to /dev/zero in a rules folder makes a reload a rejected
  rule set (logged, dead-lettered `rules_rejected`, the old set keeps running),
  never a frozen event loop; SIGTERM still stops the gateway cleanly;
- such a file given as the config (or as mqtt.password_file) is one
  FILE: error: line from `check` and `run`, promptly, exit 1;
- a config of a stray ',' (yaml-cpp 0.7's LoadAll trap) is an error with a
  position, not an endless loop growing memory;
- an mqtt output whose driver would refuse its topic at start is refused by
  `check` first, at the topic's line and column.

Every command runs under a time limit and an address-space limit, so a
regression fails the test instead of hanging it or eating the machine's memory."""

import os
import re
import resource
import signal
import subprocess
import time

import pytest

from tidegate_testkit import Subscriber, sequence_sensor

# Generous bounds: these must happen "at once", the bound only stops a hang.
PROMPT_S = 10.0
MEMORY_LIMIT = 2 << 30

DIAG_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$",
                     re.MULTILINE)


def limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(bin_path, *args):
    """Runs the CLI; a run that does not finish within PROMPT_S fails the test."""
    try:
        return subprocess.run([bin_path, *args], capture_output=True, text=True,
                              timeout=PROMPT_S, preexec_fn=limited_memory,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`tidegate {' '.join(args)}` still running after {PROMPT_S} s "
                             f"(killed); output so far: {e.stdout!r} {e.stderr!r}") from None


def position_of(text, needle):
    """1-based (line, column) of the first `needle` in `text`."""
    i = text.index(needle)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def rule_events(sub, cfg, rule):
    return [m.json() for m in sub.snapshot(cfg.topic("rules") + "/" + rule) if m.payload]


HOT_RULE = "rules:\n  - name: hot\n    when: g.temp > 30\n    clear_when: g.temp < 20\n"


def test_fifo_and_dev_zero_in_rules_folder_are_a_rejected_reload(make_config, start_gateway,
                                                                 broker_port):
    cfg = make_config(sensors=[sequence_sensor("g.temp", values=(10, 40), interval="100ms")])
    rules_d = cfg.path.parent / "rules.d"
    (rules_d / "a.yaml").write_text(HOT_RULE)
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: rule_events(sub, cfg, "hot"), what="hot fires")

    fifo = rules_d / "x.yaml"
    os.mkfifo(fifo)
    (rules_d / "z.yaml").symlink_to("/dev/zero")
    gw.signal(signal.SIGHUP)

    dead = sub.wait_for(lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")
                                    and m.json()["reason"] == "rules_rejected"],
                        what="rules_rejected dead letter")
    assert dead[0]["source"] == "rules"
    assert f"{fifo}: error: cannot read: not a regular file but a FIFO" in dead[0]["detail"]
    gw.wait_for_log(r"reload rejected \(2 error\(s\)\); the previous rules keep running")
    text = gw.log()
    assert f"{fifo}: error: cannot read: not a regular file but a FIFO (named pipe)" in text
    assert (f"{rules_d / 'z.yaml'}: error: cannot read: not a regular file but a character "
            "device") in text

    # Still alive: readings keep producing events and the old rule keeps firing.
    events = len(sub.snapshot(cfg.topic("events", "g.temp")))
    fired = len([e for e in rule_events(sub, cfg, "hot") if e["type"] == "rule_fired"])
    sub.wait_for(lambda ms: len(sub.snapshot(cfg.topic("events", "g.temp"))) > events + 2,
                 what="readings after the rejected reload")
    sub.wait_for(lambda ms: len([e for e in rule_events(sub, cfg, "hot")
                                 if e["type"] == "rule_fired"]) > fired,
                 what="the old rule fires again after the rejected reload")
    assert gw.running()

    started = time.monotonic()
    assert gw.terminate(timeout=5) == 0
    assert time.monotonic() - started < 5


def test_check_and_run_refuse_a_fifo_as_config_promptly(tidegate_bin, tmp_path):
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    for command in ("check", "run"):
        r = run_bounded(tidegate_bin, command, "-c", str(fifo))
        assert r.returncode == 1, r
        out = r.stdout if command == "check" else r.stderr
        assert out.strip() == (f"{fifo}: error: cannot read config file: not a regular file "
                               "but a FIFO (named pipe)"), r


def test_check_and_run_refuse_a_symlink_to_dev_zero_as_config(tidegate_bin, tmp_path):
    link = tmp_path / "cfg.yaml"
    link.symlink_to("/dev/zero")
    for command in ("check", "run"):
        r = run_bounded(tidegate_bin, command, "-c", str(link))
        assert r.returncode == 1, r
        out = r.stdout if command == "check" else r.stderr
        assert out.strip() == (f"{link}: error: cannot read config file: not a regular file "
                               "but a character device"), r


def test_check_refuses_a_fifo_as_password_file_at_its_key(tidegate_bin, tmp_path):
    fifo = tmp_path / "password"
    os.mkfifo(fifo)
    text = f"mqtt:\n  username: pi\n  password_file: {fifo}\nsensors: []\n"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    r = run_bounded(tidegate_bin, "check", "-c", str(cfg))
    assert r.returncode == 1, r
    line, col = position_of(text, str(fifo))
    assert r.stdout.splitlines()[0] == (
        f"{cfg}:{line}:{col}: error: mqtt.password_file: cannot read '{fifo}': not a regular "
        "file but a FIFO (named pipe)"), r.stdout


@pytest.mark.parametrize("text, line, col, message", [
    (",", 1, 1, "unexpected ',' outside a flow collection ([…] or {…})"),
    (",\n", 1, 1, "unexpected ',' outside a flow collection ([…] or {…})"),
    ("sensors: []\n,\n", 2, 1, None),
    ("gateway: {id: x}\n---\n,\n", 2, 1,
     "a config file holds one YAML document; found a second one here"),
], ids=["comma", "comma-newline", "after-a-map", "after-a-second-document"])
def test_stray_comma_config_is_an_error_with_a_position(tidegate_bin, tmp_path, text, line,
                                                        col, message):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    for command in ("check", "run"):
        r = run_bounded(tidegate_bin, command, "-c", str(cfg))
        assert r.returncode == 1, (command, r)
        out = r.stdout if command == "check" else r.stderr
        found = [(int(m["line"]), int(m["col"]), m["msg"]) for m in DIAG_RE.finditer(out)
                 if m["file"] == str(cfg)]
        assert any((ln, c) == (line, col) and message in (None, msg) for ln, c, msg in found), \
            (command, out)


def test_check_refuses_an_output_topic_run_would_refuse(tidegate_bin, make_config):
    cfg = make_config(extra={"outputs": [
        {"name": "plug", "driver": "mqtt", "options": {"topic": "cmd/+/x"}}]})
    text = cfg.path.read_text()
    line, col = position_of(text, '"cmd/+/x"')
    r = run_bounded(tidegate_bin, "check", "-c", str(cfg.path))
    assert r.returncode == 1, r
    assert r.stdout.splitlines() == [
        f"{cfg.path}:{line}:{col}: error: option 'topic': 'cmd/+/x' has a wildcard (+ or #): "
        "a publish needs one exact topic"], r.stdout
    # `run` refuses it the same way, with the position, before starting anything.
    r = run_bounded(tidegate_bin, "run", "-c", str(cfg.path))
    assert r.returncode == 1, r
    assert f"{cfg.path}:{line}:{col}: error: option 'topic':" in r.stderr, r.stderr
