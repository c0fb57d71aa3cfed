# Interoperability tests: the real tidegate binary against real brokers
# (Mosquitto, RabbitMQ's MQTT plugin) and real clients of other stacks
# (mosquitto_sub, Python paho-mqtt, MQTT.js, pika over AMQP 0-9-1).
#
# The fixtures and helpers of tests/integration are reused, not copied: they
# are the tidegate_testkit package's, re-exported here for these tests.
# The Mosquitto is scripts/test's (TIDEGATE_MQTT_PORT) or a private one; one
# private RabbitMQ node serves the whole session (it takes ~10 s to start).
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent

# Helpers, classes and fixtures of tidegate_testkit (pytest finds the
# fixtures by their presence in this module).
from tidegate_testkit.core import *  # noqa: E402,F401,F403
from tidegate_testkit.core import (  # noqa: E402,F401
    broker_port, make_config, mosquitto_factory, start_gateway, subscribe, tidegate_bin)

from rabbitmq import RabbitMQ  # noqa: E402

PY = "/usr/bin/python3"  # Debian's: the one python3-paho-mqtt and python3-pika belong to
CONSUMERS = HERE / "consumers"
MQTTJS_SRC = HERE / "mqttjs"
DEBIAN_NODE_MODULES = Path("/usr/share/nodejs")  # Debian's node-* packages


@pytest.fixture(scope="session")
def rabbitmq():
    """One private RabbitMQ node (AMQP and MQTT listeners on loopback) for
    the session; stopped at the end. Tests keep apart by unique gateway ids
    and queue names."""
    try:
        broker = RabbitMQ().start()
    except RuntimeError as e:
        pytest.fail(f"cannot start RabbitMQ: {e}", pytrace=False)
    print(f"rabbitmq {broker.nodename}: amqp {broker.amqp_port}, mqtt {broker.mqtt_port}, "
          f"ready in {broker.startup_seconds:.1f} s")
    try:
        yield broker
    finally:
        errors = [line for line in broker.log().splitlines() if "[error]" in line]
        broker.stop()
        if errors:
            print("--- rabbitmq [error] lines ---")
            print("\n".join(errors[:200]))


@pytest.fixture(scope="session")
def mqttjs() -> Path:
    """A node_modules folder holding MQTT.js, installed with `npm ci` from the
    lock file committed in tests/interop/mqttjs into a cache folder
    (TIDEGATE_INTEROP_CACHE, default build-host/interop-cache/mqttjs); reinstalled
    only when the lock file changes."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the MQTT.js tests (scripts/test installs "
                    "Debian's nodejs and npm when npm is missing)", pytrace=False)
    cache = Path(os.environ.get("TIDEGATE_INTEROP_CACHE", REPO / "build-host" / "interop-cache"))
    folder = cache / "mqttjs"
    lock = (MQTTJS_SRC / "package-lock.json").read_bytes()
    stamp = folder / ".lock-sha256"
    digest = hashlib.sha256(lock).hexdigest()
    modules = folder / "node_modules"
    if not (modules / "mqtt" / "package.json").exists() or \
            not stamp.exists() or stamp.read_text() != digest:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(MQTTJS_SRC / name, folder / name)
        res = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                              "--loglevel=error"], cwd=folder, capture_output=True, text=True,
                             timeout=300)
        if res.returncode != 0:
            # No registry (offline, or a proxy whose certificate this root
            # does not trust): Debian's own MQTT.js (node-mqtt, 4.x, installed
            # by scripts/test) is the same client, one major version older.
            if (DEBIAN_NODE_MODULES / "mqtt" / "package.json").exists():
                warnings.warn(f"npm ci in {folder} failed ({first_error_line(res)}); "
                              f"using Debian's MQTT.js from {DEBIAN_NODE_MODULES}")
                return DEBIAN_NODE_MODULES
            pytest.fail(f"npm ci in {folder} failed:\n{res.stdout}{res.stderr}", pytrace=False)
        stamp.write_text(digest)
    return modules


def first_error_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
    return lines[0] if lines else f"exit {res.returncode}"


# --------------------------------------------------------------------------
# AMQP 0-9-1 side of RabbitMQ


@dataclass
class AmqpMessage:
    routing_key: str
    body: bytes
    headers: dict
    delivery_mode: int | None
    redelivered: bool

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class AmqpCollector:
    """A pika consumer on its own thread (pika connections are not thread
    safe): an exclusive queue bound to `amq.topic` with `keys` is declared and
    bound before the constructor returns, so nothing published afterwards is
    missed; every delivery is collected (auto-ack)."""

    def __init__(self, port: int, keys: list[str] | str, timeout: float = DEFAULT_TIMEOUT):
        import pika  # python3-pika; imported here so the MQTT-only tests run without it
        self._pika = pika
        self.port = port
        self.keys = [keys] if isinstance(keys, str) else list(keys)
        self.messages: list[AmqpMessage] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            self._stop.set()
            raise AssertionError(f"AMQP consumer on :{port} not ready: {self._error!r}")

    def _run(self):
        try:
            conn = self._pika.BlockingConnection(
                self._pika.ConnectionParameters("127.0.0.1", self.port))
            ch = conn.channel()
            queue = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for key in self.keys:
                ch.queue_bind(queue, "amq.topic", routing_key=key)

            def on_message(_ch, method, props, body):
                with self._cond:
                    self.messages.append(AmqpMessage(method.routing_key, bytes(body),
                                                     dict(props.headers or {}),
                                                     props.delivery_mode, method.redelivered))
                    self._cond.notify_all()

            ch.basic_consume(queue, on_message, auto_ack=True)
            self._ready.set()
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.1)
            conn.close()
        except BaseException as e:  # reported by the waits
            self._error = e
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    def snapshot(self, suffix: str | None = None) -> list[AmqpMessage]:
        with self._cond:
            msgs = list(self.messages)
        return [m for m in msgs if suffix is None or m.routing_key.endswith(suffix)]

    def wait_for(self, predicate: Callable[[list[AmqpMessage]], Any],
                 timeout: float = DEFAULT_TIMEOUT, what: str = "messages") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error:
                    raise AssertionError(f"AMQP consumer failed: {self._error!r}")
                result = predicate(list(self.messages))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    keys = sorted({m.routing_key for m in self.messages})
                    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}; "
                                         f"{len(self.messages)} message(s) so far on {keys}")
                self._cond.wait(min(left, 0.2))

    def close(self):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def amqp_collect(rabbitmq):
    """amqp_collect(keys) -> AmqpCollector bound on the session's RabbitMQ;
    closed at teardown."""
    made: list[AmqpCollector] = []

    def make(keys) -> AmqpCollector:
        c = AmqpCollector(rabbitmq.amqp_port, keys)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def routing_key(topic: str) -> str:
    """RabbitMQ's MQTT plugin maps an MQTT topic to an AMQP routing key on
    amq.topic by turning `/` into `.` (3.10: a `.` inside a level stays a `.`)."""
    return topic.replace("/", ".")
