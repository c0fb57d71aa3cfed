"""A private RabbitMQ node for tests: started as a plain process (not the
system service), loopback only, on free ports, with the MQTT plugin.

Everything the node touches lives in one temporary folder: its own
RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, a new-style rabbitmq.conf, an
enabled_plugins file (which enables plugins offline, without
`rabbitmq-plugins`), a HOME for the Erlang cookie, and its own epmd on a free
loopback port, so it neither needs nor disturbs a system RabbitMQ (whose
postinst may not have been able to start it anyway where no service manager
runs). Works as root.

    broker = RabbitMQ().start()      # ~10 s: Erlang boot, Raft election for MQTT client ids
    broker.amqp_port, broker.mqtt_port
    broker.ctl("list_queues", "name", "messages")   # rabbitmqctl against this node
    broker.stop()                    # SIGTERM, then the epmd we started

Options other tests may need (e.g. a 3.1.1 broker that disconnects a client
on an unauthorized publish): `conf=[...]` adds lines to rabbitmq.conf (e.g.
`mqtt.allow_anonymous = false`), `plugins=[...]` changes the enabled plugins,
and ctl() runs `add_user`, `set_permissions`, `set_topic_permissions`, ...
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

RABBITMQ_SBIN = Path("/usr/lib/rabbitmq/bin")  # Debian: the scripts without the su wrapper


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def mqtt_connack(port: int, client_id: str = "tidegate-probe", timeout: float = 2.0) -> int | None:
    """Sends a bare MQTT 3.1.1 CONNECT (clean session) and returns the CONNACK
    return code (0 = accepted), or None when no CONNACK came. A listening
    socket is not enough: RabbitMQ's MQTT plugin accepts TCP before its
    client-id tracker (a Raft cluster of one) has elected a leader."""
    cid = client_id.encode()
    var_header = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", 10)
    payload = struct.pack("!H", len(cid)) + cid
    body = var_header + payload
    packet = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(packet)
            reply = b""
            while len(reply) < 4:
                chunk = s.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
            if reply[0] != 0x20:
                return None
            try:
                s.sendall(b"\xe0\x00")  # DISCONNECT
            except OSError:
                pass
            return reply[3]
    except OSError:
        return None


class RabbitMQ:
    def __init__(self, conf: list[str] | None = None, plugins: list[str] | None = None,
                 name: str = "tidegate"):
        if not (RABBITMQ_SBIN / "rabbitmq-server").exists():
            raise RuntimeError("RabbitMQ is not installed (Debian package rabbitmq-server)")
        self.amqp_port = _free_port()
        self.mqtt_port = _free_port()
        self.dist_port = _free_port()
        self.epmd_port = _free_port()
        self.nodename = f"rabbit-{name}-{self.amqp_port}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="tidegate-rabbitmq."))
        self.conf_lines = list(conf or [])
        self.plugins = list(plugins or ["rabbitmq_mqtt"])
        self.proc: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._out = None

    # -- the environment every rabbitmq script run against this node needs
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        d = self.dir
        env.update({
            "HOME": str(d / "home"),                     # the Erlang cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),  # absent: none
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),      # not /etc/rabbitmq's
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        })
        return env

    def _write_files(self) -> None:
        d = self.dir
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir(mode=0o700, exist_ok=True)
        lines = [
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}",
            "distribution.listener.interface = 127.0.0.1",
            "log.console = false",
            "log.file.level = info",
            *self.conf_lines,
        ]
        (d / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (d / "enabled_plugins").write_text("[" + ",".join(self.plugins) + "].\n")
        (d / "rabbitmq-env.conf").write_text("")

    def start(self, timeout: float = 90.0) -> "RabbitMQ":
        self._write_files()
        env = self.env()
        began = time.monotonic()
        # Our own epmd, in the foreground, so stop() ends exactly the one we started.
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait(lambda: _port_open(self.epmd_port), 10, "epmd")
        self._out = open(self.dir / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            [str(RABBITMQ_SBIN / "rabbitmq-server")], env=env, cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            self._wait(lambda: _port_open(self.amqp_port) and _port_open(self.mqtt_port),
                       timeout, "the AMQP and MQTT listeners")
            left = max(5.0, timeout - (time.monotonic() - began))
            # Accepted, or refused for want of credentials (mqtt.allow_anonymous
            # = false): either way the plugin is up. Not rc 3, "unavailable".
            self._wait(lambda: mqtt_connack(self.mqtt_port) in (0, 4, 5), left,
                       "an MQTT CONNACK from the MQTT plugin")
        except BaseException:
            self.stop(keep_dir=True)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited ({self.proc.returncode}) before "
                                   f"{what} was ready; log folder {self.dir}\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ: no {what} within {timeout:.0f} s; "
                                   f"log folder {self.dir}\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        """The node's main log (and its stdout)."""
        parts = []
        for path in [self.dir / "stdout.log", self.dir / "log" / f"{self.nodename}.log"]:
            try:
                parts.append(path.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(parts)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """rabbitmqctl against this node (e.g. add_user, set_permissions,
        list_queues); raises on failure."""
        res = subprocess.run([str(RABBITMQ_SBIN / "rabbitmqctl"), "-n", self.nodename, *args],
                             env=self.env(), capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({res.returncode}):\n"
                               f"{res.stdout}{res.stderr}")
        return res

    def stop(self, timeout: float = 30.0, keep_dir: bool = False) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                # The start script hands SIGTERM to the VM: a clean shutdown.
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            # The VM's helpers (erl_child_setup, inet_gethost) are in the
            # session we created for the node; none may outlive it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.terminate()
            try:
                self.epmd.wait(5)
            except subprocess.TimeoutExpired:
                self.epmd.kill()
                self.epmd.wait(5)
        if self._out:
            self._out.close()
            self._out = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
