"""The mqtt sensor driver against a real Mosquitto: readings from another
device's topic, through the gateway's own connection, renewed after a cut."""

import subprocess

from tidegate_testkit import Subscriber
from tidegate_testkit.faultkit import CuttableProxy


def publish(port, topic, payload, retain=False):
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic,
            "-m", payload]
    if retain:
        args.append("-r")
    subprocess.run(args, check=True, timeout=10)


def test_zigbee_style_topic_feeds_two_sensors_and_bad_payloads_are_dead_lettered(
        make_config, start_gateway, broker_port):
    cfg = make_config(sensors=[
        {"name": "room.temp", "driver": "mqtt", "unit": "°C",
         "options": {"topic": "it-z2m/room", "json_pointer": "/temperature"}},
        {"name": "room.humidity", "driver": "mqtt",
         "options": {"topic": "it-z2m/room", "json_pointer": "/humidity"}},
    ])
    # A retained message is a device's last state: the gateway reads it at start.
    publish(broker_port, "it-z2m/room", '{"temperature": 20.5, "humidity": 41}', retain=True)
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    sub.wait_for(lambda ms: any(m.topic == cfg.topic("events", "room.humidity") for m in ms),
                 what="the retained state read at start")
    publish(broker_port, "it-z2m/room", '{"temperature": 22.25, "humidity": 44}')
    temps = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("events", "room.temp")
                    and m.json()["value"] == 22.25], what="the new temperature")
    assert temps[0]["unit"] == "°C" and temps[0]["source"] == "room.temp"
    publish(broker_port, "it-z2m/room", "garbage")
    dead = sub.wait_for(lambda ms: [m.json() for m in ms if m.topic == cfg.topic("deadletter")],
                        what="a dead letter for the bad payload")
    assert dead[0]["reason"] == "parse"
    assert gw.running()
    publish(broker_port, "it-z2m/room", "", retain=True)  # clean up the retained message
    assert gw.terminate() == 0


def test_subscription_is_renewed_after_the_network_comes_back(mosquitto_factory, make_config,
                                                              start_gateway):
    broker = mosquitto_factory().start()
    proxy = CuttableProxy(broker.port)
    try:
        cfg = make_config(sensors=[{"name": "plug.power", "driver": "mqtt",
                                    "options": {"topic": "tele/plug1/power"}}],
                          mqtt={"uri": f"tcp://127.0.0.1:{proxy.port}"})
        sub = Subscriber(broker.port, f"{cfg.base}/events/#")
        gw = start_gateway(cfg)
        gw.wait_for_log(r"connected to", timeout=10)
        publish(broker.port, "tele/plug1/power", "10")
        sub.wait_for(lambda ms: [m for m in ms if m.json()["value"] == 10], what="first value")
        proxy.cut()
        gw.wait_for_log(r"connection to .* lost", timeout=10)
        proxy.restore()
        gw.wait_for_log(r"connected to", count=2, timeout=30)
        # Retained, so it reaches the gateway whether its new subscription
        # was acknowledged before or after this publish.
        publish(broker.port, "tele/plug1/power", "11", retain=True)
        sub.wait_for(lambda ms: [m for m in ms if m.json()["value"] == 11], timeout=10,
                     what="a value published after the reconnect")
        assert gw.terminate() == 0
    finally:
        proxy.close()
