"""The consumer examples (tests/interop/consumers/) run as programs against real
brokers and a real gateway: pika_consumer.py on RabbitMQ, paho_consumer.py on
Mosquitto. Each is made to crash right after processing an event and before
acknowledging it (its --crash-after testing aid), while the gateway is
SIGKILLed and restarted (it sends its unacknowledged window again); after the
consumer's restart every event is in its output exactly once, with no gap. The
gap detector is fed a hand-made stream with a gap, a late event and a
duplicate."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from pathlib import Path

from conftest import CONSUMERS, PY, sequence_sensor, wait_until
from tidegate_testkit.faultkit import contiguous

SUMMARY_RE = re.compile(r"^INFO consumer: summary (\{.*\})$", re.MULTILINE)


class ConsumerRun:
    """One run of a consumer example, its stderr in a file."""

    def __init__(self, program: str, args: list[str], folder: Path, name: str):
        self.stderr_path = folder / f"{name}.stderr"
        self.argv = [PY, str(CONSUMERS / program), *args]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 20.0) -> str:
        regex = re.compile(pattern, re.MULTILINE)

        def found():
            m = regex.search(self.log())
            if m:
                return m.group(0)
            if self.proc.poll() is not None:
                m = regex.search(self.log())
                if m:
                    return m.group(0)
                raise AssertionError(f"consumer exited ({self.proc.returncode}) before "
                                     f"/{pattern}/:\n{self.log()}")
            return None
        return wait_until(found, timeout, what=f"consumer log /{pattern}/")

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"consumer still running after {timeout} s:\n"
                                 f"{self.log()}") from None

    def summary(self) -> dict:
        found = SUMMARY_RE.findall(self.log())
        assert found, f"no summary line:\n{self.log()}"
        return json.loads(found[-1])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def processed(output: Path) -> list[dict]:
    return [json.loads(line) for line in output.read_text().splitlines()]


def assert_exactly_once_and_contiguous(output: Path, gateway: str, at_least: int):
    records = processed(output)
    ids = [r["event"]["id"] for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"processed more than once: {dupes}"
    seqs = [r["event"]["seq"] for r in records]
    assert all(r["event"]["gateway"] == gateway for r in records)
    assert len(seqs) >= at_least, len(seqs)
    assert min(seqs) == 1 and contiguous(seqs), \
        f"missing: {sorted(set(range(1, max(seqs) + 1)) - set(seqs))[:20]}"
    assert seqs == sorted(seqs), "processed in seq order"


def test_pika_consumer_processes_every_event_once_across_crashes(
        rabbitmq, make_config, start_gateway, tmp_path):
    cfg = make_config(sensors=[sequence_sensor(interval="20ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{rabbitmq.mqtt_port}"})
    queue = f"tidegate-test-{uuid.uuid4().hex[:8]}"
    output = tmp_path / "processed.jsonl"
    common = ["--port", str(rabbitmq.amqp_port), "--queue", queue,
              "--gateway", cfg.gateway_id, "--output", str(output), "--prefetch", "50"]
    runs = []
    try:
        first = ConsumerRun("pika_consumer.py", [*common, "--crash-after", "40",
                                                 "--timeout", "60"], tmp_path, "run1")
        runs.append(first)
        # The durable queue is declared and bound before the gateway starts.
        first.wait_for_log(r"^INFO consumer: ready: queue ")
        gw = start_gateway(cfg)
        assert first.wait() == 3, first.log()
        assert "exiting before the acknowledgement of" in first.log()
        assert len(processed(output)) == 40

        # While no consumer runs, the gateway dies and comes back: what it
        # had in flight is published again.
        gw.signal(signal.SIGKILL)
        gw.proc.wait(10)
        gw2 = start_gateway(cfg)
        gw2.wait_for_log(r"previous run did not stop cleanly; nothing lost", timeout=10)

        # The durable queue kept collecting meanwhile.
        listing = rabbitmq.ctl("list_queues", "name", "durable", "messages", "--no-table-headers",
                               "--quiet").stdout
        row = next((line.split() for line in listing.splitlines()
                    if line.split()[:1] == [queue]), None)
        assert row and row[1] == "true" and int(row[2]) > 0, listing

        second = ConsumerRun("pika_consumer.py", [*common, "--count", "300", "--timeout", "60"],
                             tmp_path, "run2")
        runs.append(second)
        assert second.wait() == 0, second.log()
        stats = second.summary()
        # The 40th event of the first run was processed but not acknowledged:
        # RabbitMQ delivered it again, flagged redelivered, and it was skipped.
        assert stats["duplicates"] >= 1 and stats["redelivered"] >= 1, second.log()
        assert stats["gaps"] == 0 and stats["reordered"] == 0, second.log()
        assert stats["invalid"] == 0
        assert_exactly_once_and_contiguous(output, cfg.gateway_id, at_least=300)
        assert gw2.terminate() == 0
    finally:
        for r in runs:
            r.close()


def test_paho_consumer_processes_every_event_once_across_crashes(
        broker_port, make_config, start_gateway, tmp_path):
    cfg = make_config(sensors=[sequence_sensor(interval="20ms")])
    client_id = f"it-consumer-{uuid.uuid4().hex[:8]}"
    output = tmp_path / "processed.jsonl"
    common = ["--port", str(broker_port), "--client-id", client_id,
              "--gateway", cfg.gateway_id, "--output", str(output)]
    runs = []
    try:
        first = ConsumerRun("paho_consumer.py", [*common, "--crash-after", "40",
                                                 "--timeout", "60"], tmp_path, "run1")
        runs.append(first)
        first.wait_for_log(r"^INFO consumer: ready: subscribed to ")
        gw = start_gateway(cfg)
        assert first.wait() == 3, first.log()
        assert len(processed(output)) == 40

        gw.signal(signal.SIGKILL)
        gw.proc.wait(10)
        gw2 = start_gateway(cfg)
        gw2.wait_for_log(r"previous run did not stop cleanly; nothing lost", timeout=10)

        second = ConsumerRun("paho_consumer.py", [*common, "--count", "300", "--timeout", "60"],
                             tmp_path, "run2")
        runs.append(second)
        assert second.wait() == 0, second.log()
        assert "ready: session of" in second.log(), "the broker kept the session"
        stats = second.summary()
        # The 40th message had no PUBACK: the broker sent it again (DUP).
        assert stats["duplicates"] >= 1 and stats["redelivered"] >= 1, second.log()
        assert stats["gaps"] == 0 and stats["reordered"] == 0, second.log()
        assert_exactly_once_and_contiguous(output, cfg.gateway_id, at_least=300)
        assert gw2.terminate() == 0
    finally:
        for r in runs:
            r.close()
        # The broker would keep the persistent session: a clean connect ends it.
        subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker_port), "-i",
                        client_id, "-E", "-t", "x", "-V", "311"], timeout=10,
                       capture_output=True)


def envelope(gateway: str, seq: int) -> str:
    return json.dumps({"v": 1, "id": f"{gateway}:{seq}", "type": "reading", "gateway": gateway,
                       "seq": seq, "source": "synthetic.x",
                       "ts": f"2026-11-26T17:15:{seq:02d}.000Z", "value": seq})


def test_paho_consumer_reports_gaps_late_events_and_duplicates(broker_port, tmp_path):
    gateway = f"synthetic-{uuid.uuid4().hex[:8]}"
    topic = f"tidegate/{gateway}/events/synthetic/x"
    output = tmp_path / "processed.jsonl"
    run = ConsumerRun("paho_consumer.py",
                      ["--port", str(broker_port), "--client-id", f"it-gaps-{gateway}",
                       "--clean", "--gateway", gateway, "--output", str(output),
                       "--count", "8", "--timeout", "30"], tmp_path, "gaps")
    try:
        run.wait_for_log(r"^INFO consumer: ready: subscribed to ")
        # 1 2 3 5 4 6 6 9 10 with a non-envelope between: 4 is late (after 5),
        # 7..8 never come, 6 comes twice.
        stream = [envelope(gateway, s) for s in (1, 2, 3, 5, 4, 6, 6, 9)]
        stream.insert(5, "not json")
        stream.append(envelope(gateway, 10))
        res = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker_port),
                              "-q", "1", "-t", topic, "-l"], input="\n".join(stream) + "\n",
                             text=True, capture_output=True, timeout=20)
        assert res.returncode == 0, res.stderr
        assert run.wait(30) == 0, run.log()
    finally:
        run.close()
    log = run.log()
    assert re.search(rf"^WARNING consumer: gap: gateway {gateway}: seq 4 missing \(1\) "
                     rf"before seq 5", log, re.MULTILINE), log
    assert re.search(rf"^WARNING consumer: late: gateway {gateway}: seq 4 arrived after seq 5",
                     log, re.MULTILINE), log
    assert re.search(rf"^WARNING consumer: gap: gateway {gateway}: seq 7\.\.8 missing \(2\) "
                     rf"before seq 9", log, re.MULTILINE), log
    assert re.search(rf"^INFO consumer: duplicate {gateway}:6 on {re.escape(topic)}", log,
                     re.MULTILINE), log
    assert re.search(rf"^WARNING consumer: open gaps of {gateway}: \[\[7, 8\]\]", log,
                     re.MULTILINE), log
    stats = run.summary()
    assert stats == {"processed": 8, "duplicates": 1, "gaps": 2, "missing": 3, "late": 1,
                     "reordered": 1, "retained": 0, "invalid": 1, "redelivered": 0}, stats
    assert [r["event"]["seq"] for r in processed(output)] == [1, 2, 3, 5, 4, 6, 9, 10]
