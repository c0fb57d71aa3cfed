"""Shared pieces of the fault tests: a loopback TCP proxy that can cut the
network, a broker that can be SIGKILLed and restarted, a subscriber with a
persistent session, and checks on the seqs a subscriber received."""

import socket
import threading
import uuid

from .core import Subscriber, free_port


def seqs_of(messages, topic_part="/events/"):
    return [m.json()["seq"] for m in messages if topic_part in m.topic]


def contiguous(seqs):
    """The distinct seqs form one run with no gap."""
    s = sorted(set(seqs))
    return bool(s) and s == list(range(s[0], s[-1] + 1))


class CuttableProxy:
    """A loopback TCP proxy whose link can be cut (every connection closed,
    new ones refused) and restored: a network outage without touching the
    broker, so a subscriber on the broker itself sees every message."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.up = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.up = False
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def restore(self):
        self.up = True

    def close(self):
        self.stopped = True
        self.cut()
        self.server.close()


def kill_broker(broker):
    """SIGKILLs a Mosquitto of conftest's mosquitto_factory (no clean
    shutdown, so no final save of its persistence file) and waits for it to
    be gone. Its folder stays, for restart_broker."""
    broker.proc.kill()
    broker.proc.wait(10)
    broker._log.close()


def restart_broker(broker, timeout=10.0):
    """Starts a killed broker again with the same config, port and folder
    (hence the same persistence file); its earlier log is kept beside it."""
    old = broker.log_path.with_suffix(".log.1")
    if broker.log_path.exists():
        broker.log_path.replace(old)
    broker.start(timeout)
    return broker


class SessionSubscriber(Subscriber):
    """A QoS 1 subscriber with a persistent session: a fixed client id and
    clean_session False, so a broker that keeps its sessions (persistence)
    queues what arrives while this client is away and sends it on reconnect.
    Reconnects by itself every second while the broker is down."""

    def __init__(self, port, topics, client_id=None, timeout=10.0):
        super().__init__(port, topics, timeout=timeout, keepalive=5, clean_session=False,
                         client_id=client_id or f"it-session-{uuid.uuid4().hex[:10]}")
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)

    def pause(self):
        """Stops the network loop: the client stays away until resume()."""
        self.client.loop_stop()

    def resume(self):
        self.client.reconnect()
        self.client.loop_start()
