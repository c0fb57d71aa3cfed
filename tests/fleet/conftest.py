# Fixtures of the fleet test: the tidegate binary (tidegate_testkit's
# tidegate_bin: TIDEGATE_BIN or build-host/) and a private 3-node RabbitMQ
# cluster (tests/interop/rabbitmq.py's RabbitCluster) for the module.
from __future__ import annotations

import time

import pytest

from tidegate_testkit.core import tidegate_bin  # noqa: F401  (a fixture)
from rabbitmq import RabbitCluster


@pytest.fixture(scope="module")
def cluster():
    """rabbit-a, rabbit-b, rabbit-c @localhost, joined, MQTT answering on
    each; stopped at the end, its [error] log lines printed."""
    began = time.monotonic()
    try:
        c = RabbitCluster(3).start()
    except RuntimeError as e:
        pytest.fail(f"cannot start the RabbitMQ cluster: {e}", pytrace=False)
    c.began = began
    print(f"rabbitmq cluster formed in {c.startup_seconds:.1f} s: " +
          ", ".join(f"{n.nodename} amqp {n.amqp_port} mqtt {n.mqtt_port}" for n in c.nodes))
    try:
        yield c
    finally:
        errors = {n.nodename: [ln for ln in n.log().splitlines() if "[error]" in ln]
                  for n in c.nodes}
        c.stop()
        for name, lines in errors.items():
            if lines:
                print(f"--- {name}: {len(lines)} [error] line(s), the first 40 ---")
                print("\n".join(lines[:40]))
