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

A cluster of such nodes (RabbitCluster) shares one epmd and one Erlang cookie
(a HOME made before the nodes boot); each node keeps its own folder, ports and
distribution port, and the nodes are joined with `stop_app`, `join_cluster`,
`start_app`, one after the other:

    cluster = RabbitCluster(3).start()   # ~20-30 s: rabbit-a, rabbit-b, rabbit-c @localhost
    cluster.nodes[1].mqtt_port
    cluster.kill(1)                      # SIGKILL its Erlang VM (beam.smp): a crash
    cluster.restart(1)                   # boots again from its folder and rejoins
    cluster.stop()
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from tidegate_testkit.core import stop_process

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
    """One node. Alone it starts (and stops) its own epmd and keeps its cookie
    in its own HOME; as a member of a RabbitCluster it is given the cluster's
    `nodename`, `folder`, `home` (the shared cookie) and `epmd_port`, and
    leaves epmd to the cluster. `erl_args` go to the node's Erlang VM."""

    def __init__(self, conf: list[str] | None = None, plugins: list[str] | None = None,
                 name: str = "tidegate", *, nodename: str | None = None,
                 folder: Path | None = None, home: Path | None = None,
                 epmd_port: int | None = None, erl_args: str = ""):
        if not (RABBITMQ_SBIN / "rabbitmq-server").exists():
            raise RuntimeError("RabbitMQ is not installed (Debian package rabbitmq-server)")
        self.amqp_port = _free_port()
        self.mqtt_port = _free_port()
        self.dist_port = _free_port()
        self.own_epmd = epmd_port is None
        self.epmd_port = epmd_port or _free_port()
        self.nodename = nodename or f"rabbit-{name}-{self.amqp_port}@localhost"
        if folder is None:
            self.dir = Path(tempfile.mkdtemp(prefix="tidegate-rabbitmq."))
        else:
            self.dir = Path(folder)
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home = Path(home) if home is not None else self.dir / "home"
        self.conf_lines = list(conf or [])
        self.plugins = list(plugins or ["rabbitmq_mqtt"])
        self.erl_args = erl_args
        self.proc: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._out = None
        self._began = 0.0

    # -- the environment every rabbitmq script run against this node needs
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        d = self.dir
        env.update({
            "HOME": str(self.home),                      # the Erlang cookie
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
        if self.erl_args:
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = self.erl_args
        return env

    def _write_files(self) -> None:
        d = self.dir
        for sub in ("mnesia", "log"):
            (d / sub).mkdir(mode=0o700, exist_ok=True)
        self.home.mkdir(mode=0o700, exist_ok=True)
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
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Starts the node (and, alone, its epmd) without waiting for it: a
        cluster boots its nodes side by side. Also the way back after kill()."""
        self._write_files()
        env = self.env()
        self._began = time.monotonic()
        if self.own_epmd and (self.epmd is None or self.epmd.poll() is not None):
            # Our own epmd, in the foreground, so stop() ends exactly the one we started.
            self.epmd = start_epmd(self.epmd_port, env)
        (self.dir / "rabbitmq.pid").unlink(missing_ok=True)  # a stale one from a kill
        self._out = open(self.dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [str(RABBITMQ_SBIN / "rabbitmq-server")], env=env, cwd=self.dir,
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Waits until the node takes AMQP and MQTT connections and its MQTT
        plugin answers a CONNECT; stops the node and raises when it does not."""
        began = time.monotonic()
        try:
            self._wait(lambda: _port_open(self.amqp_port) and _port_open(self.mqtt_port),
                       timeout, "the AMQP and MQTT listeners")
            self.wait_mqtt(max(5.0, timeout - (time.monotonic() - began)))
        except BaseException:
            self.stop(keep_dir=True)
            raise
        self.startup_seconds = time.monotonic() - self._began

    def wait_mqtt(self, timeout: float) -> None:
        # Accepted, or refused for want of credentials (mqtt.allow_anonymous
        # = false): either way the plugin is up. Not rc 3, "unavailable".
        self._wait(lambda: mqtt_connack(self.mqtt_port) in (0, 4, 5), timeout,
                   "an MQTT CONNACK from the MQTT plugin")

    def beam_pid(self) -> int | None:
        """The node's Erlang VM (beam.smp): the start script's child. The pid
        file is written only once the node is well into its boot, so the
        process tree is asked first."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            if comm.startswith("beam"):
                return pid
            todo.extend(int(c) for c in children)
        return None

    def kill(self) -> None:
        """SIGKILL the Erlang VM, as a crash or the OOM killer would: no clean
        shutdown, the other cluster members see the node vanish. Its folder
        (Mnesia, queue data) stays, so launch() brings the same node back."""
        beam = self.beam_pid()
        if beam is None:
            raise RuntimeError(f"{self.nodename}: no Erlang VM to kill")
        os.kill(beam, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            # The VM's helpers (erl_child_setup, inet_gethost) are in the
            # session we created for the node; none may outlive it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._out:
            self._out.close()
            self._out = None

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

    def terminate(self) -> None:
        """Asks for a clean shutdown without waiting (stop() waits)."""
        if self.proc is not None and self.proc.poll() is None:
            # The start script hands SIGTERM to the VM: a clean shutdown.
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0, keep_dir: bool = False) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self._reap()
        if self.epmd is not None:
            stop_epmd(self.epmd)
            self.epmd = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_epmd(port: int, env: dict[str, str]) -> subprocess.Popen:
    epmd = subprocess.Popen(
        ["epmd", "-port", str(port), "-address", "127.0.0.1"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if epmd.poll() is not None or time.monotonic() > deadline:
            stop_epmd(epmd)
            raise RuntimeError(f"epmd did not listen on 127.0.0.1:{port}")
        time.sleep(0.05)
    return epmd


def stop_epmd(epmd: subprocess.Popen) -> None:
    stop_process(epmd)


class RabbitCluster:
    """`size` RabbitMQ nodes on this machine forming one cluster: nodes
    rabbit-a@localhost, rabbit-b@localhost, ... (short names, loopback only),
    each with its own AMQP, MQTT and distribution ports and folder, one epmd
    on a free port for them all (the names only need to be unique there) and
    one Erlang cookie, written before any node boots. The MQTT plugin runs on
    every node; MQTT client ids live in the plugin's own Raft cluster, which
    needs a majority of the nodes up.

    `erl_args` default to schedulers that do not spin while idle: three VMs
    share a small machine with the processes under test."""

    LETTERS = "abcdefghij"

    def __init__(self, size: int = 3, conf: list[str] | None = None,
                 plugins: list[str] | None = None,
                 erl_args: str = "+sbwt none +sbwtdcpu none +sbwtdio none"):
        self.dir = Path(tempfile.mkdtemp(prefix="tidegate-rabbitmq-cluster."))
        self.epmd_port = _free_port()
        home = self.dir / "home"
        home.mkdir(mode=0o700)
        cookie = home / ".erlang.cookie"
        cookie.write_text(os.urandom(16).hex().upper())
        cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        self.nodes = [RabbitMQ(conf, plugins, nodename=f"rabbit-{c}@localhost",
                               folder=self.dir / c, home=home, epmd_port=self.epmd_port,
                               erl_args=erl_args)
                      for c in self.LETTERS[:size]]
        self.epmd: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    def start(self, timeout: float = 180.0) -> "RabbitCluster":
        began = time.monotonic()
        deadline = began + timeout

        def left() -> float:
            return max(5.0, deadline - time.monotonic())

        try:
            self.epmd = start_epmd(self.epmd_port, self.nodes[0].env())
            for node in self.nodes:  # the Erlang boots overlap
                node.launch()
            for node in self.nodes:
                node.wait_ready(left())
            seed = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", seed.nodename)
                node.ctl("start_app")
                node.wait_ready(left())
            self.wait_formed(left())
        except BaseException:
            self.stop(keep_dir=True)
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def running_nodes(self, via: RabbitMQ | None = None) -> list[str]:
        """The running members as one node (default: the first alive) sees them."""
        via = via or next(n for n in self.nodes if n.beam_pid() is not None)
        res = via.ctl("cluster_status", "--formatter", "json")
        return sorted(json.loads(res.stdout).get("running_nodes", []))

    def wait_formed(self, timeout: float = 60.0) -> None:
        """Every node running, in the cluster, its MQTT plugin answering."""
        want = sorted(n.nodename for n in self.nodes)
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = self.running_nodes()
            except RuntimeError as e:
                seen = [str(e)]
            if seen == want:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not formed within {timeout:.0f} s: running {seen}, "
                                   f"want {want}; folder {self.dir}")
            time.sleep(0.5)
        for node in self.nodes:
            node.wait_mqtt(max(5.0, deadline - time.monotonic()))

    def kill(self, i: int) -> None:
        """SIGKILL node i's Erlang VM."""
        self.nodes[i].kill()

    def restart(self, i: int, timeout: float = 120.0) -> float:
        """Boots a killed node from its folder: it rejoins the cluster by
        itself (its Mnesia knows the members). Returns the seconds until it
        was back in the cluster with MQTT answering."""
        began = time.monotonic()
        node = self.nodes[i]
        node.launch()
        node.wait_ready(timeout)
        self.wait_formed(max(5.0, timeout - (time.monotonic() - began)))
        return time.monotonic() - began

    def log(self, i: int) -> str:
        return self.nodes[i].log()

    def stop(self, keep_dir: bool = False) -> None:
        for node in self.nodes:  # all at once: no node waits for the others to go
            node.terminate()
        for node in self.nodes:
            node.stop(keep_dir=True)
        if self.epmd is not None:
            stop_epmd(self.epmd)
            self.epmd = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
