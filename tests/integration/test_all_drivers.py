"""Every sensor driver of SPEC §6 in one running gateway (GPIO aside: no GPIO
lines exist here; its logic is unit-tested through a fake line provider).
Filesystem drivers read fake sysfs trees through their `root` option, serial
reads a real pseudo-terminal, command runs real programs, mqtt reads a real
broker. Good readings arrive as events, every bad input as a dead letter, and
the gateway stays up."""

import os
import pty
import subprocess
import time

from tidegate_testkit import Subscriber


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_every_driver_in_one_gateway(make_config, start_gateway, broker_port, tmp_path):
    good = tmp_path / "good"
    bad = tmp_path / "bad"
    # file: a thermal zone in milli-degrees; and one that holds garbage.
    write(good / "sys/class/thermal/thermal_zone0/temp", "48312\n")
    write(bad / "sys/class/thermal/thermal_zone0/temp", "hot\n")
    # w1: a DS18B20 whose CRC line says YES, and one that says NO.
    write(good / "sys/bus/w1/devices/28-00000a1b2c3d/w1_slave",
          "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    write(bad / "sys/bus/w1/devices/28-00000a1b2c3d/w1_slave",
          "72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    # iio: a BME280 by name, humidity as raw x scale.
    dev = good / "sys/bus/iio/devices/iio:device0"
    write(dev / "name", "bme280\n")
    write(dev / "in_humidityrelative_raw", "40125\n")
    write(dev / "in_humidityrelative_scale", "1\n")
    # serial: a real pseudo-terminal; the test writes the device's lines.
    master, slave = pty.openpty()
    tty = os.ttyname(slave)

    cfg = make_config(sensors=[
        {"name": "cpu.temp", "driver": "file", "interval": "200ms",
         "options": {"path": "/sys/class/thermal/thermal_zone0/temp", "scale": 0.001,
                     "root": str(good)}},
        {"name": "broken.temp", "driver": "file", "interval": "200ms",
         "options": {"path": "/sys/class/thermal/thermal_zone0/temp", "root": str(bad)}},
        {"name": "tank.temp", "driver": "w1", "interval": "200ms",
         "options": {"device": "auto", "root": str(good)}},
        {"name": "pond.temp", "driver": "w1", "interval": "200ms",
         "options": {"device": "28-00000a1b2c3d", "root": str(bad)}},
        {"name": "room.humidity", "driver": "iio", "interval": "200ms",
         "options": {"device": "bme280", "channel": "humidityrelative", "root": str(good)}},
        {"name": "meter.t", "driver": "serial",
         "options": {"device": tty, "baud": 9600, "format": "kv", "field": "t"}},
        {"name": "meter.h", "driver": "serial",
         "options": {"device": tty, "baud": 9600, "format": "kv", "field": "h"}},
        {"name": "prog.value", "driver": "command", "interval": "300ms",
         "options": {"argv": ["/bin/echo", "17.5"]}},
        {"name": "prog.failing", "driver": "command", "interval": "300ms",
         "options": {"argv": ["/bin/sh", "-c", "echo no sensor >&2; exit 2"]}},
        {"name": "plug.power", "driver": "mqtt",
         "options": {"topic": "it-all/+/SENSOR", "json_pointer": "/ENERGY/Power"}},
    ])
    sub = Subscriber(broker_port, f"{cfg.base}/#")
    gw = start_gateway(cfg)
    gw.wait_for_log(r"connected to", timeout=10)
    time.sleep(0.5)  # the serial reader has opened the pty
    os.write(master, b"t=21.5 h=40\n\x00\xffgarbage without fields\nt=22")
    time.sleep(0.2)
    os.write(master, b".25 h=41\n")  # a partial line completed later
    for payload in ('{"ENERGY": {"Power": 12.5}}', "not json"):
        subprocess.run(["mosquitto_pub", "-p", str(broker_port), "-q", "1",
                        "-t", "it-all/plug1/SENSOR", "-m", payload], check=True, timeout=10)

    def last_value(sensor):
        ms = sub.snapshot(cfg.topic("events", sensor))
        return ms[-1].json()["value"] if ms else None

    expected = {"cpu.temp": 48.312, "tank.temp": 23.125, "room.humidity": 40.125,
                "meter.t": 22.25, "meter.h": 41, "prog.value": 17.5, "plug.power": 12.5}
    sub.wait_for(lambda ms: all(last_value(s) == v for s, v in expected.items()), timeout=20,
                 what="every driver's value: " + ", ".join(expected))
    letters = sub.wait_for(
        lambda ms: (d := {(m.json()["source"], m.json()["reason"]) for m in ms
                          if m.topic == cfg.topic("deadletter")})
        and {"broken.temp", "pond.temp", "prog.failing", "plug.power", "meter.t"}
        <= {s for s, _ in d} and d,
        timeout=20, what="a dead letter for every bad input")
    reasons = dict(letters)
    assert reasons["pond.temp"] == "crc"
    assert reasons["broken.temp"] == "parse"
    assert reasons["plug.power"] == "parse"
    assert reasons["prog.failing"] == "exec_failed"
    meter = [m.json()["value"] for m in sub.snapshot(cfg.topic("events", "meter.t"))]
    assert meter == [21.5, 22.25], "the garbage line made no reading; the split one did"
    assert gw.running()
    assert gw.terminate() == 0
    os.close(master)
    os.close(slave)
