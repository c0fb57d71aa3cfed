# <p>/status (SPEC §3): retained `online` while connected, `offline` from the
# last will on a crash and from the gateway itself on a clean stop.
import signal

from tidegate_testkit import RFC3339_RE, project_version, sequence_sensor


def online(msgs):
    return [m for m in msgs if m.json().get("state") == "online"]


def offline(msgs):
    return [m for m in msgs if m.json().get("state") == "offline"]


def check_online(status: dict, sensors: int) -> None:
    assert status["state"] == "online"
    assert status["version"] == project_version(), status
    assert isinstance(status["started"], str) and RFC3339_RE.match(status["started"]), status
    assert status["rules"] == 0 and isinstance(status["rules"], int), status
    assert status["sensors"] == sensors and isinstance(status["sensors"], int), status


def test_status_online_is_retained_and_last_will_says_offline(
        make_config, start_gateway, subscribe):
    cfg = make_config(sensors=[sequence_sensor("a.one", interval="500ms"),
                               sequence_sensor("a.two", interval="500ms")])
    topic = cfg.topic("status")
    assert topic == f"tidegate/{cfg.gateway_id}/status"
    watcher = subscribe(topic)
    gw = start_gateway(cfg)
    watcher.wait_for(online, what="status online")

    late = subscribe(topic)
    first = late.wait_count(1)[0]
    assert first.retain, "status must be retained"
    check_online(first.json(), sensors=2)

    gw.signal(signal.SIGKILL)
    gw.proc.wait(10)
    # The kernel closes the dead process's socket: the broker sends the will.
    will = watcher.wait_for(offline, what="offline from the last will")[0]
    assert will.json() == {"state": "offline"}

    after = subscribe(topic)
    retained = after.wait_count(1)[0]
    assert retained.retain
    assert retained.json() == {"state": "offline"}, "the will must be retained"


def test_sigterm_publishes_offline_and_exits_0(make_config, start_gateway, subscribe):
    cfg = make_config()
    topic = cfg.topic("status")
    watcher = subscribe(topic)
    gw = start_gateway(cfg)
    watcher.wait_for(online, what="status online")
    check_online(online(watcher.snapshot())[0].json(), sensors=1)

    assert gw.terminate() == 0, gw.log()
    # A clean DISCONNECT suppresses the will: this offline is the gateway's own.
    watcher.wait_for(offline, what="offline published on SIGTERM")

    after = subscribe(topic)
    retained = after.wait_count(1)[0]
    assert retained.retain
    assert retained.json().get("state") == "offline", retained.payload


def test_sigint_stops_cleanly_too(make_config, start_gateway, subscribe):
    cfg = make_config()
    watcher = subscribe(cfg.topic("status"))
    gw = start_gateway(cfg)
    watcher.wait_for(online, what="status online")
    gw.signal(signal.SIGINT)
    assert gw.proc.wait(10) == 0, gw.log()
    watcher.wait_for(offline, what="offline published on SIGINT")
