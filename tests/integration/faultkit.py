"""Shared pieces of the fault tests: a loopback TCP proxy that can cut the
network, and checks on the seqs a subscriber received."""

import socket
import threading

from conftest import free_port


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
