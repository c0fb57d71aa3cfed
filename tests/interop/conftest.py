# Interoperability tests: the real tidegate binary against real brokers
# (Mosquitto, RabbitMQ's MQTT plugin) and real clients of other stacks
# (mosquitto_sub, Python paho-mqtt, MQTT.js, pika over AMQP 0-9-1).
#
# The fixtures and helpers of tests/integration are reused, not copied: its
# conftest is loaded here under its own module name and re-exported, so
# `from conftest import ...` in these tests (and in faultkit.py) finds them.
# The Mosquitto is scripts/test's (TIDEGATE_MQTT_PORT) or a private one; one
# private RabbitMQ node serves the whole session (it takes ~10 s to start).
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"

_spec = importlib.util.spec_from_file_location("tidegate_integration_conftest",
                                               INTEGRATION / "conftest.py")
_it = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _it
_spec.loader.exec_module(_it)

# Helpers and classes.
from tidegate_integration_conftest import (  # noqa: E402,F401
    DEFAULT_TIMEOUT, REPO, RFC3339_RE, TS_RE, Gateway, GatewayConfig, Message, Mosquitto,
    Subscriber, assert_consecutive, check_reading_envelope, envelopes, free_port, parse_ts,
    port_open, project_version, sequence_sensor, wait_until)
# Fixtures (pytest finds them by their presence in this module).
from tidegate_integration_conftest import (  # noqa: E402,F401
    broker_port, make_config, mosquitto_factory, start_gateway, subscribe, tidegate_bin)

sys.path.insert(0, str(INTEGRATION))  # faultkit.py
sys.path.insert(0, str(HERE / "consumers"))  # tracker.py, for its unit tests

from rabbitmq import RabbitMQ  # noqa: E402

PY = "/usr/bin/python3"  # Debian's: the one python3-paho-mqtt and python3-pika belong to
CONSUMERS = HERE / "consumers"
MQTTJS_SRC = HERE / "mqttjs"


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
    (TIDEGATE_INTEROP_CACHE, default build/interop-cache/mqttjs); reinstalled
    only when the lock file changes."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the MQTT.js tests (scripts/test installs "
                    "Debian's nodejs and npm when npm is missing)", pytrace=False)
    cache = Path(os.environ.get("TIDEGATE_INTEROP_CACHE", REPO / "build" / "interop-cache"))
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
            pytest.fail(f"npm ci in {folder} failed:\n{res.stdout}{res.stderr}", pytrace=False)
        stamp.write_text(digest)
    return modules
