"""The end-to-end tests' helpers and pytest fixtures: the real `tidegate`
binary against a real Mosquitto. scripts/test starts one broker and passes its
port in TIDEGATE_MQTT_PORT; run alone a private broker is started here. Tests
that need a special broker (TLS, passwords, a late start) start their own
with `mosquitto_factory`.

Every gateway gets a unique id, so retained topics of one test never leak
into another. Waits are bounded polls on a condition, never fixed sleeps,
except where a test must show that something does NOT happen.

Used by tests/integration and tests/interop: their conftest.py files import
the fixtures from here (pytest finds fixtures by their presence there)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest

REPO = Path(__file__).resolve().parents[2]
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RFC3339_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# A log line of the MQTT link reporting a failed connection attempt, e.g.
# `WARN mqtt: connect failed: ...` (the level, the component, the failure).
MQTT_TROUBLE_RE = re.compile(
    r"^(?:WARN|ERROR) mqtt: (?=.*connect)(?=.*(?:fail|error|refused|unable|cannot|could not|"
    r"not authori[sz]ed|bad user)).*$", re.IGNORECASE | re.MULTILINE)

DEFAULT_TIMEOUT = 10.0


# --------------------------------------------------------------------------
# small helpers


def wait_until(predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT,
               interval: float = 0.05, what: str = "condition") -> Any:
    """Polls `predicate` until it returns something truthy; returns it.
    Fails the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: "subprocess.Popen | None", timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pending_connections(port: int, n: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """`n` TCP connections to `port` started without waiting for them to be
    accepted (non-blocking connects): they fill a server's accept queue or
    hold its workers while sending nothing. The caller closes them."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        out.append(s)
    return out


def parse_ts(ts: str) -> datetime:
    """RFC 3339 UTC with milliseconds (`2026-11-26T17:15:53.123Z`) -> aware datetime."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def project_version() -> str:
    text = (REPO / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*tidegate\s+VERSION\s+([0-9][0-9.]*)", text)
    assert m, "no project(tidegate VERSION x.y.z) in CMakeLists.txt"
    return m.group(1)


def is_root() -> bool:
    return os.geteuid() == 0


def give_to_mosquitto(path: Path) -> None:
    """Run as root, Mosquitto drops to user `mosquitto` before it reads its
    certificates and password file: hand them over."""
    if is_root():
        try:
            shutil.chown(path, user="mosquitto", group="mosquitto")
        except (LookupError, PermissionError):
            pass


# --------------------------------------------------------------------------
# Mosquitto


class Mosquitto:
    """A private Mosquitto in its own temporary folder (world-traversable, since
    pytest's tmp_path is not and Mosquitto reads its files as user mosquitto)."""

    def __init__(self, port: int | None = None, extra: list[str] | None = None,
                 listener: list[str] | None = None):
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tidegate-it-mosquitto."))
        self.dir.chmod(0o755)
        give_to_mosquitto(self.dir)
        self.proc: subprocess.Popen | None = None
        # Options of the listener (TLS files, require_certificate) and general
        # ones; both may be extended until start().
        self.listener = list(listener or [])
        self.extra = list(extra or [])
        self.conf = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"

    def _write_conf(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1", *self.listener,
                 "max_queued_messages 0", "persistence false", "log_dest stderr",
                 "log_type all", *self.extra]
        if not any(line.startswith("allow_anonymous") for line in lines):
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    def file(self, name: str, content: str | bytes, mode: int = 0o644) -> Path:
        """Writes a file the broker will read (certificates, password file)."""
        path = self.dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        path.chmod(mode)
        give_to_mosquitto(path)
        return path

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> "Mosquitto":
        self._write_conf()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port) or self.proc.poll() is not None,
                   timeout, what=f"mosquitto on port {self.port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited ({self.proc.returncode}):\n{self.log()}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def mosquitto_factory():
    brokers: list[Mosquitto] = []

    def make(**kwargs) -> Mosquitto:
        broker = Mosquitto(**kwargs)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        log = broker.log()
        broker.stop()
        print(f"--- mosquitto :{broker.port} log ---")
        print(log)


@pytest.fixture(scope="session")
def broker_port():
    """The shared plain broker: scripts/test's, or a private one."""
    env = os.environ.get("TIDEGATE_MQTT_PORT")
    if env:
        port = int(env)
        assert port_open(port), f"TIDEGATE_MQTT_PORT={port}, but nothing listens there"
        yield port
        return
    broker = Mosquitto().start()
    try:
        yield broker.port
    finally:
        broker.stop()


# --------------------------------------------------------------------------
# the binary


@pytest.fixture(scope="session")
def tidegate_bin() -> str:
    path = os.environ.get("TIDEGATE_BIN") or str(REPO / "build-host/firmware-gateway/tidegate")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no tidegate binary at {path}: build first (cmake --preset host && "
                    "cmake --build --preset host; scripts/test does) or set TIDEGATE_BIN",
                    pytrace=False)
    return path


def run_cli(bin_path: str, *args: str, timeout: float = 20.0, cwd: str | None = None):
    return subprocess.run([bin_path, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------
# configuration files


def to_yaml(value: Any, indent: int = 0) -> str:
    """A tiny YAML emitter for the shapes a config has (no PyYAML on a fresh
    Debian): mappings in block style, lists of scalars in flow style, lists of
    mappings in block style, scalars as JSON (valid YAML)."""
    pad = "  " * indent
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                if item:
                    out.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
                else:
                    out.append(f"{pad}{key}: {{}}\n")
            elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
                out.append(f"{pad}{key}:\n")
                for entry in item:
                    body = to_yaml(entry, indent + 2)
                    first = "  " * (indent + 2)
                    out.append(f"{pad}  - {body[len(first):]}")
            else:
                out.append(f"{pad}{key}: {scalar(item)}\n")
    else:
        out.append(f"{pad}{scalar(value)}\n")
    return "".join(out)


def scalar(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


@dataclass
class GatewayConfig:
    path: Path
    gateway_id: str
    data_dir: Path
    prefix: str
    sensors: list[dict]

    @property
    def base(self) -> str:
        """<topic_prefix>/<gateway.id>"""
        return f"{self.prefix}/{self.gateway_id}"

    def topic(self, kind: str, sensor: str | None = None) -> str:
        if sensor is None:
            return f"{self.base}/{kind}"
        return f"{self.base}/{kind}/{sensor.replace('.', '/')}"


def sequence_sensor(name: str = "test.seq", values=(1, 2.5, -3, 0.1, 35),
                    interval: str = "100ms", unit: str | None = "°C") -> dict:
    sensor = {"name": name, "driver": "simulated", "interval": interval}
    if unit is not None:
        sensor["unit"] = unit
    sensor["options"] = {"profile": "sequence", "values": list(values)}
    return sensor


@pytest.fixture
def make_config(tmp_path, broker_port, request):
    """make_config(sensors=[...], mqtt={...}, ...) -> GatewayConfig: writes a
    config YAML into the test's tmp_path with a unique gateway id, a private
    data_dir and an empty rules folder, pointed at the shared broker unless
    `mqtt` says otherwise."""
    counter = iter(range(1, 1000))

    def make(sensors: list[dict] | None = None, mqtt: dict | None = None,
             gateway_id: str | None = None, data_dir: Path | str | None = None,
             extra: dict | None = None, name: str | None = None) -> GatewayConfig:
        n = next(counter)
        short = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:24].strip("-")
        gw = gateway_id or f"it-{short}-{uuid.uuid4().hex[:8]}"
        folder = tmp_path / (name or f"gw{n}")
        folder.mkdir(exist_ok=True)
        rules = folder / "rules.d"
        rules.mkdir(exist_ok=True)
        data = Path(data_dir) if data_dir is not None else folder / "data"
        sensors = sensors if sensors is not None else [sequence_sensor()]
        doc = {
            "gateway": {"id": gw, "data_dir": str(data)},
            "mqtt": {"uri": f"tcp://127.0.0.1:{broker_port}", "keepalive": "1s"},
            "rules": {"paths": [str(rules)]},
            # Many gateways run at once: the HTTP server only where a test asks.
            "http": {"listen": ""},
            "sensors": sensors,
        }
        deep_merge(doc["mqtt"], mqtt or {})
        deep_merge(doc, extra or {})
        path = folder / "cfg.yaml"
        path.write_text(to_yaml(doc))
        return GatewayConfig(path=path, gateway_id=gw, data_dir=data,
                             prefix=doc["mqtt"].get("topic_prefix", "tidegate"),
                             sensors=sensors)

    return make


# --------------------------------------------------------------------------
# the gateway process


class Gateway:
    def __init__(self, bin_path: str, config: GatewayConfig, log_level: str = "debug",
                 cwd: str | None = None):
        self.config = config
        self.stderr_path = config.path.parent / f"tidegate-{uuid.uuid4().hex[:6]}.stderr"
        self.started_at = datetime.now(timezone.utc)
        with open(self.stderr_path, "wb") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [bin_path, "run", "-c", str(config.path), "--log-level", log_level],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def exit_note(self) -> str:
        rc = self.proc.poll()
        if rc is None:
            return ""
        if rc < 0:
            try:
                return f" (tidegate died of {signal.Signals(-rc).name})"
            except ValueError:
                return f" (tidegate died of signal {-rc})"
        return f" (tidegate exited with status {rc})"

    def wait_until(self, predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT,
                   what: str = "condition", interval: float = 0.05) -> Any:
        """wait_until() that gives up early when the gateway has exited, and
        shows its stderr when it fails."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if not self.running():
                result = predicate()
                if result:
                    return result
                raise AssertionError(f"gave up waiting for {what}{self.exit_note()}\n"
                                     f"--- gateway stderr ---\n{self.log()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}\n"
                                     f"--- gateway stderr ---\n{self.log()}")
            time.sleep(interval)

    def wait_for_log(self, pattern: re.Pattern | str, timeout: float = DEFAULT_TIMEOUT,
                     count: int = 1) -> list[str]:
        """Waits until `pattern` matched `count` times in stderr; returns the matches."""
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        def enough():
            found = [m.group(0) for m in regex.finditer(self.log())]
            return found if len(found) >= count else None
        return self.wait_until(enough, timeout, what=f"{count} log line(s) /{regex.pattern}/")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tidegate did not exit within {timeout} s of SIGTERM\n"
                                 f"--- gateway stderr ---\n{self.log()}") from None

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
        self.proc.wait(DEFAULT_TIMEOUT)

    def close(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait(DEFAULT_TIMEOUT)


@pytest.fixture
def start_gateway(tidegate_bin):
    """start_gateway(config, **kw) -> Gateway; every gateway is killed at the
    end of the test, and its stderr printed (shown by pytest on failure)."""
    gateways: list[Gateway] = []

    def start(config: GatewayConfig, **kwargs) -> Gateway:
        gw = Gateway(tidegate_bin, config, **kwargs)
        gateways.append(gw)
        return gw

    yield start
    for gw in gateways:
        note = " (killed at teardown)" if gw.running() else gw.exit_note()
        gw.close()
        print(f"--- tidegate {gw.config.gateway_id} stderr{note} ---")
        print(gw.log())


# --------------------------------------------------------------------------
# MQTT subscriber


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    received: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.payload.decode("utf-8"))


class Subscriber:
    """Collects every message of its subscriptions (topic, payload, retain)."""

    def __init__(self, port: int, topics: list[str] | str, host: str = "127.0.0.1",
                 tls: dict | None = None, tls_insecure: bool = False,
                 auth: tuple[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 client_id: str | None = None, clean_session: bool = True,
                 keepalive: int = 30):
        self.messages: list[Message] = []
        self.connects = 0  # successful CONNACKs
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._connect_rc: int | None = None
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.client = mqtt.Client(client_id=client_id or f"it-sub-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv311, clean_session=clean_session)
        if tls:
            self.client.tls_set(**tls)
            self.client.tls_insecure_set(tls_insecure)  # True: no host name check
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=keepalive)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.client.loop_stop()
            raise AssertionError(f"subscriber on {host}:{port} not subscribed within "
                                 f"{timeout} s (CONNACK rc={self._connect_rc})")

    def _on_connect(self, client, userdata, flags, rc):
        self._connect_rc = rc
        if rc == 0:
            with self._cond:
                self.connects += 1
            # On every connect: harmless on a session the broker kept, needed
            # on one it lost.
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain),
                                         msg.qos))
            self._cond.notify_all()

    def snapshot(self, topic: str | None = None, prefix: str | None = None) -> list[Message]:
        with self._cond:
            msgs = list(self.messages)
        if topic is not None:
            msgs = [m for m in msgs if m.topic == topic]
        if prefix is not None:
            msgs = [m for m in msgs if m.topic.startswith(prefix)]
        return msgs

    def wait_for(self, predicate: Callable[[list[Message]], Any],
                 timeout: float = DEFAULT_TIMEOUT, what: str = "messages") -> Any:
        """Waits until predicate(all messages so far) is truthy; returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(list(self.messages))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    raise AssertionError(
                        f"timed out after {timeout:.1f} s waiting for {what}; "
                        f"{len(self.messages)} message(s) so far on {topics}")
                self._cond.wait(min(left, 0.2))

    def wait_count(self, n: int, topic: str | None = None, prefix: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        def enough(msgs):
            sel = [m for m in msgs if (topic is None or m.topic == topic)
                   and (prefix is None or m.topic.startswith(prefix))]
            return sel if len(sel) >= n else None
        return self.wait_for(enough, timeout, what=f"{n} message(s) on {topic or prefix or '#'}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribe(broker_port):
    """subscribe(topics, port=..., tls=..., auth=...) -> Subscriber, connected
    and subscribed (SUBACK received) on return; disconnected at teardown."""
    subs: list[Subscriber] = []

    def make(topics, port: int | None = None, **kwargs) -> Subscriber:
        sub = Subscriber(port or broker_port, topics, **kwargs)
        subs.append(sub)
        return sub

    yield make
    for sub in subs:
        sub.close()


# --------------------------------------------------------------------------
# envelope checks shared by the tests

ENVELOPE_KEYS = {"v", "id", "type", "gateway", "seq", "source", "ts", "value"}


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_reading_envelope(env: dict, gateway_id: str, sensor: dict) -> None:
    """SPEC §4 for a reading. Unknown extra keys are allowed (readers must
    ignore them), every documented key must be there with its type."""
    missing = ENVELOPE_KEYS - env.keys()
    assert not missing, f"envelope lacks {sorted(missing)}: {env}"
    assert env["v"] == 1 and isinstance(env["v"], int) and not isinstance(env["v"], bool), env
    assert isinstance(env["seq"], int) and not isinstance(env["seq"], bool), env
    assert env["seq"] >= 0, env
    assert env["id"] == f"{gateway_id}:{env['seq']}", env
    assert env["type"] == "reading", env
    assert env["gateway"] == gateway_id, env
    assert env["source"] == sensor["name"], env
    assert isinstance(env["ts"], str) and TS_RE.match(env["ts"]), f"bad ts: {env}"
    assert is_number(env["value"]), env
    if "unit" in sensor:
        assert env.get("unit") == sensor["unit"], env
    else:
        assert "unit" not in env, f"no unit configured, yet: {env}"


def envelopes(msgs: list[Message]) -> list[dict]:
    return [m.json() for m in msgs]


def assert_consecutive(seqs: list[int], what: str = "seq") -> None:
    """seqs (in arrival order, duplicates allowed for redeliveries) cover a
    range with no gap and arrive in order (SPEC §7: in seq order per gateway)."""
    assert seqs, f"no {what} at all"
    distinct = sorted(set(seqs))
    expected = list(range(distinct[0], distinct[-1] + 1))
    gaps = sorted(set(expected) - set(distinct))
    assert not gaps, f"{what} has gaps, missing {gaps[:20]}; got {seqs}"
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == distinct, f"{what} out of order: {seqs}"
