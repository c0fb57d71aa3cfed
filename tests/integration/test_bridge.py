"""The edge deployment "tidegate → Mosquitto on the Pi → bridge → central
broker", with the bridge settings of firmware-gateway/config/
mosquitto-bridge.conf: the link between the Pi and the centre is cut for 10 s
while the gateway publishes; a subscriber on the central broker still
receives every seq, in a contiguous run."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tidegate_testkit import Subscriber, sequence_sensor
from tidegate_testkit.faultkit import CuttableProxy, contiguous, seqs_of

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "firmware-gateway" / "config" / "mosquitto-bridge.conf"


def bridge_lines(central_port: int) -> list[str]:
    """The shipped bridge section, pointed at `central_port`, without the
    lines that belong to a system install (listener, persistence location)."""
    out = []
    in_bridge = False
    for line in SHIPPED.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):  # Mosquitto has whole-line comments only
            continue
        if line.startswith("connection "):
            in_bridge = True
        if not in_bridge:
            continue
        line = re.sub(r"^address .*", f"address 127.0.0.1:{central_port}", line)
        out.append(line.replace("HOSTNAME", "it"))
    return out


def test_shipped_bridge_config_carries_everything_across_a_cut(make_config, start_gateway,
                                                              mosquitto_factory):
    central = mosquitto_factory().start()
    link = CuttableProxy(central.port)  # the line between the Pi and the centre
    lines = bridge_lines(link.port)
    assert "cleansession false" in lines and "local_cleansession false" in lines
    local = mosquitto_factory(extra=lines).start()
    cfg = make_config(sensors=[sequence_sensor("b.v", values=list(range(50)), interval="100ms",
                                               unit=None)],
                      mqtt={"uri": f"tcp://127.0.0.1:{local.port}"})
    # The prefix the shipped bridge forwards.
    assert cfg.base.startswith("tidegate/")
    sub = Subscriber(central.port, cfg.topic("events") + "/#")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: len(seqs_of(ms)) >= 10, timeout=15, what="events at the centre")
    link.cut()
    time.sleep(10)
    during = len(seqs_of(sub.snapshot()))
    link.restore()
    # 10 s at 10 events/s were queued on the Pi; they arrive after the cut.
    sub.wait_for(lambda ms: len(set(seqs_of(ms))) >= during + 100, timeout=30,
                 what="the queued events after the link came back")
    assert gw.terminate() == 0
    time.sleep(1)
    got = seqs_of(sub.snapshot())
    assert contiguous(got), sorted(set(got))[:20]
    print(f"bridge: {len(set(got))} seqs at the centre, {len(got) - len(set(got))} duplicate(s)")
    link.close()
