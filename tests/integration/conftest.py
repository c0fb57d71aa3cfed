# The integration tests' fixtures and helpers live in the tidegate_testkit
# package (tests/tidegate_testkit), shared with tests/interop; importing them
# here is what makes pytest find the fixtures.
from tidegate_testkit.core import *  # noqa: F401,F403
from tidegate_testkit.core import (  # noqa: F401
    broker_port, make_config, mosquitto_factory, start_gateway, subscribe, tidegate_bin)
