"""A fleet of gateways on a real 3-node RabbitMQ cluster, one node SIGKILLed
mid-run (issue #18, "Cluster").

TIDEGATE_FLEET_GATEWAYS (default 21) gateways, each with two simulated
sensors at 5 readings/s (10 events/s a gateway, every reading published, no
deadband), list all three nodes' MQTT listeners in `mqtt.uri` (SPEC §13),
rotated so that gateway i tries node i % 3 first: the fleet is spread over
the cluster. A quorum queue bound to `amq.topic` with `tidegate.#` collects
everything (MQTT `tidegate/<gw>/events/...` is routing key
`tidegate.<gw>.events...`); it is declared through the node that is then
killed, so that node leads the queue and the kill takes the queue's leader,
the MQTT connections of a third of the fleet, and one member of the plugin's
client-id Raft cluster with it. A pika consumer on another node reads the
queue and deduplicates on the envelope `id`.

After the node is back and the fleet has caught up, the gateways are stopped
with SIGTERM; any that kept undelivered events in its outbox is started once
more with its sensors kept local (`publish: none`, so no new envelope) until
its metrics show an empty outbox. Then the consumer must have every seq of
every gateway, from 1, without a gap (SPEC §7; duplicates allowed, counted).

The figures (events/s through the cluster, duplicates, the longest delivery
gap of a gateway around the node loss, the fleet's RSS and CPU seconds) are
printed and written as JSON to TIDEGATE_FLEET_FIGURES (default
build-host/fleet-figures.json) for the README."""
from __future__ import annotations

import json
import os
import re
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pika

from tidegate_testkit.core import REPO, Gateway, GatewayConfig, run_cli, to_yaml, wait_until

N_GATEWAYS = int(os.environ.get("TIDEGATE_FLEET_GATEWAYS", "21"))
READING_INTERVAL = "200ms"  # per sensor; two sensors: 10 events/s a gateway
EVENTS_PER_GATEWAY_S = 10
QUEUE = "tidegate-fleet"
WARMUP_S = 10   # the fleet running before the kill
DOWN_S = 12     # the node dead
AFTER_S = 10    # after the node is back, before SIGTERM
VICTIM = 1      # rabbit-b: the queue's leader, and first in a third of the URI lists
FIGURES = Path(os.environ.get("TIDEGATE_FLEET_FIGURES",
                              REPO / "build-host" / "fleet-figures.json"))
COMMAND = "/usr/bin/python3 -m pytest -s tests/fleet"

KEPT_RE = re.compile(r"(\d+) undelivered event\(s\) kept in the outbox")
CONNECTED_RE = re.compile(r"connected to (\S+) as ")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# the AMQP side


def amqp_params(port: int) -> pika.ConnectionParameters:
    return pika.ConnectionParameters("127.0.0.1", port, heartbeat=10,
                                     connection_attempts=3, retry_delay=1)


def declare_queue(port: int) -> None:
    """The quorum queue, bound to amq.topic for every tidegate topic. The
    default leader locator of 3.10 (client-local) puts its leader on the
    node of this connection."""
    conn = pika.BlockingConnection(amqp_params(port))
    try:
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(QUEUE, "amq.topic", routing_key="tidegate.#")
    finally:
        conn.close()


def queue_ready(port: int) -> int:
    """Messages ready in the queue (not yet delivered to a consumer)."""
    conn = pika.BlockingConnection(amqp_params(port))
    try:
        return conn.channel().queue_declare(QUEUE, passive=True).method.message_count
    finally:
        conn.close()


def queue_leader(cluster) -> str | None:
    res = cluster.nodes[0].ctl("list_queues", "name", "leader", "--formatter", "json")
    for row in json.loads(res.stdout):
        if row.get("name") == QUEUE:
            return row.get("leader")
    return None


class QueueConsumer:
    """Reads the queue on its own thread (pika connections are not thread
    safe) with manual acks, so a lost connection loses nothing: what was
    not acknowledged is delivered again (and counted as a duplicate). Goes
    to the next node of `ports` when its connection fails."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.lock = threading.Lock()
        self.first_seen: dict[str, dict[int, float]] = defaultdict(dict)  # gw -> seq -> time
        self.order: dict[str, list[int]] = defaultdict(list)  # gw -> seqs as delivered
        self.deliveries = 0          # event deliveries, duplicates included
        self.kinds: Counter = Counter()
        self.metrics: dict[str, tuple[float, dict]] = {}  # gw -> (time, latest metrics)
        self.deadletters: list[dict] = []
        self.bad: list[str] = []     # envelopes whose id is not <gateway>:<seq>
        self.last_delivery = time.monotonic()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"AMQP consumer not ready: {self.errors}")

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            port = self.ports[attempt % len(self.ports)]
            try:
                conn = pika.BlockingConnection(amqp_params(port))
                ch = conn.channel()
                ch.basic_qos(prefetch_count=2000)
                ch.basic_consume(QUEUE, self._on_message)
                self._ready.set()
                while not self._stop.is_set():
                    conn.process_data_events(time_limit=0.1)
                conn.close()
                return
            except pika.exceptions.AMQPError as e:
                self.errors.append(f"port {port}: {e!r}")
                attempt += 1
                time.sleep(0.5)

    def _on_message(self, ch, method, _props, body) -> None:
        now = time.monotonic()
        parts = method.routing_key.split(".")
        gw, kind = (parts[1], parts[2]) if len(parts) > 2 else (parts[-1], "?")
        with self.lock:
            self.last_delivery = now
            self.kinds[kind] += 1
            if kind == "events":
                env = json.loads(body)
                seq = env["seq"]
                if env.get("id") != f"{gw}:{seq}" or env.get("gateway") != gw:
                    self.bad.append(body.decode(errors="replace"))
                self.deliveries += 1
                self.order[gw].append(seq)
                self.first_seen[gw].setdefault(seq, now)
            elif kind == "metrics":
                self.metrics[gw] = (now, json.loads(body))
            elif kind == "deadletter":
                self.deadletters.append(json.loads(body))
        ch.basic_ack(method.delivery_tag)

    def distinct(self, gw: str | None = None) -> int:
        with self.lock:
            if gw is not None:
                return len(self.first_seen.get(gw, {}))
            return sum(len(s) for s in self.first_seen.values())

    def idle_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last_delivery

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


# --------------------------------------------------------------------------
# the fleet


def gateway_id(i: int) -> str:
    return f"fleet-{i:02d}"


def knows_http(tidegate_bin: str, tmp_path: Path) -> bool:
    """Whether this build has the local HTTP server (SPEC §9): then the fleet
    turns it off, or its gateways would all ask for the default port."""
    probe = tmp_path / "http-probe.yaml"
    probe.write_text(to_yaml({"gateway": {"id": "probe", "data_dir": str(tmp_path / "probe")},
                              "http": {"listen": ""},
                              "sensors": [{"name": "p.v", "driver": "simulated"}]}))
    return run_cli(tidegate_bin, "check", "-c", str(probe)).returncode == 0


def fleet_config(tmp_path: Path, i: int, mqtt_ports: list[int], publish: str = "events",
                 name: str = "cfg.yaml", http: bool = False) -> GatewayConfig:
    """Gateway i: its URI list starts at node i % 3 (SPEC §13: the first that
    accepts is taken). Two simulated sensors, every reading an event on
    <p>/events/... (`publish: events`: no retained state/ copy, which would
    double the broker's load for nothing this test reads); `publish: none`
    keeps them local for a run that only empties the outbox."""
    gw = gateway_id(i)
    folder = tmp_path / gw
    (folder / "rules.d").mkdir(parents=True, exist_ok=True)
    n = len(mqtt_ports)
    sensors = [
        {"name": "fleet.temp", "driver": "simulated", "interval": READING_INTERVAL,
         "unit": "°C", "publish": publish,
         "options": {"profile": "sine", "min": 15, "max": 25, "period": "30s"}},
        {"name": "fleet.level", "driver": "simulated", "interval": READING_INTERVAL,
         "publish": publish,
         "options": {"profile": "random_walk", "min": 0, "max": 100, "step": 2,
                     "seed": i + 1}},
    ]
    doc = {
        "gateway": {"id": gw, "data_dir": str(folder / "data")},
        "mqtt": {"uri": [f"tcp://127.0.0.1:{mqtt_ports[(i + k) % n]}" for k in range(n)],
                 "keepalive": "5s"},
        "rules": {"paths": [str(folder / "rules.d")]},
        "metrics": {"interval": "2s"},
        "sensors": sensors,
    }
    if http:
        doc["http"] = {"listen": ""}
    path = folder / name
    path.write_text(to_yaml(doc))
    return GatewayConfig(path=path, gateway_id=gw, data_dir=folder / "data",
                         prefix="tidegate", sensors=sensors)


def connected_uri(gw: Gateway) -> str | None:
    found = CONNECTED_RE.findall(gw.log())
    return found[-1] if found else None


def proc_figures(pid: int) -> dict:
    """RSS now, peak RSS and CPU seconds (user + system) of a live process."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = {k: int(v.split()[0]) for k, v in
           (line.split(":", 1) for line in status.splitlines() if line.startswith("Vm"))}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return {"rss_kib": kib.get("VmRSS", 0), "hwm_kib": kib.get("VmHWM", 0), "cpu_s": cpu}


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a new event between start and end."""
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(points, points[1:]))


def first_disorder(seqs: list[int]) -> int | None:
    """A seq delivered for the first time after a higher one had been (SPEC §7:
    in seq order per gateway), or None."""
    seen, top = set(), 0
    for s in seqs:
        if s not in seen:
            if s < top:
                return s
            seen.add(s)
            top = s
    return None


# --------------------------------------------------------------------------


def test_fleet_on_a_rabbitmq_cluster_loses_nothing_when_a_node_is_killed(
        cluster, tidegate_bin, tmp_path):
    nodes = cluster.nodes
    victim = nodes[VICTIM]
    mqtt_ports = [n.mqtt_port for n in nodes]
    victim_uri = f"tcp://127.0.0.1:{victim.mqtt_port}"

    declare_queue(victim.amqp_port)
    leader = queue_leader(cluster)
    print(f"quorum queue {QUEUE}: leader {leader}")
    http = knows_http(tidegate_bin, tmp_path)
    consumer = QueueConsumer([n.amqp_port for i, n in enumerate(nodes) if i != VICTIM])
    gateways: list[Gateway] = []
    drains: list[Gateway] = []
    try:
        for i in range(N_GATEWAYS):
            gateways.append(Gateway(tidegate_bin, fleet_config(tmp_path, i, mqtt_ports,
                                                               http=http), log_level="info"))
        run_start = time.monotonic()
        wait_until(lambda: all(consumer.distinct(g.config.gateway_id) >= 20 for g in gateways),
                   timeout=40, interval=0.2, what="20 events from every gateway")
        time.sleep(WARMUP_S)
        for gw in gateways:
            assert gw.running(), f"{gw.config.gateway_id} exited{gw.exit_note()}:\n{gw.log()}"
        on_victim = [g for g in gateways if connected_uri(g) == victim_uri]
        spread = Counter(connected_uri(g) for g in gateways)
        print(f"fleet spread over the nodes: {dict(spread)}")
        assert len(on_victim) >= N_GATEWAYS // 3, spread

        # The kill: SIGKILL the Erlang VM of the node that leads the queue.
        t_kill = time.monotonic()
        cluster.kill(VICTIM)
        time.sleep(DOWN_S)
        t_restart = time.monotonic()
        back_s = cluster.restart(VICTIM)
        t_back = time.monotonic()
        print(f"{victim.nodename} SIGKILLed, down {t_restart - t_kill:.1f} s, "
              f"back in the cluster {back_s:.1f} s after its restart")
        time.sleep(AFTER_S)

        # Caught up: every gateway's metrics, sent after the node came back,
        # show a near-empty outbox.
        def caught_up():
            with consumer.lock:
                latest = {gw: m for gw, m in consumer.metrics.items() if m[0] > t_back}
            return all(g.config.gateway_id in latest and
                       latest[g.config.gateway_id][1].get("outbox_depth", 1 << 30) <= 20
                       for g in gateways)
        wait_until(caught_up, timeout=40, interval=0.5, what="every outbox nearly empty")
        for gw in gateways:
            assert gw.running(), f"{gw.config.gateway_id} exited{gw.exit_note()}:\n{gw.log()}"
        moved = [g.config.gateway_id for g in on_victim if connected_uri(g) != victim_uri]
        # Every gateway of the killed node lost its connection and made a new one.
        stayed = [g.config.gateway_id for g in on_victim
                  if len(CONNECTED_RE.findall(g.log())) < 2]
        assert not stayed, f"gateways of the killed node that never reconnected: {stayed}"

        # The fleet's own cost, just before it stops.
        t_stop = time.monotonic()
        per_gw = [proc_figures(g.pid) for g in gateways]
        beams = [n.beam_pid() for n in nodes]
        cluster_rss = sum(proc_figures(p)["rss_kib"] for p in beams if p) / 1024

        for gw in gateways:
            gw.signal(signal.SIGTERM)
        for gw in gateways:
            rc = gw.terminate(timeout=20)
            assert rc == 0, f"{gw.config.gateway_id} exited {rc}:\n{gw.log()}"

        # Whatever a gateway kept in its outbox at SIGTERM goes out in a run
        # that creates no new envelope, until its metrics show an empty outbox.
        kept = {g.config.gateway_id: int(m.group(1)) for g in gateways
                if (m := KEPT_RE.search(g.log()))}
        for gid in kept:
            i = int(gid.rsplit("-", 1)[1])
            t0 = time.monotonic()
            drain = Gateway(tidegate_bin, fleet_config(tmp_path, i, mqtt_ports, publish="none",
                                                       name="drain.yaml", http=http),
                            log_level="info")
            drains.append(drain)
            drain.wait_until(lambda: (m := consumer.metrics.get(gid)) and m[0] > t0 and
                             m[1].get("outbox_depth") == 0, timeout=30,
                             what=f"{gid}: an empty outbox")
            assert drain.terminate(timeout=20) == 0
            assert not KEPT_RE.search(drain.log()), drain.log()

        # The queue drained: nothing ready, and the consumer idle for a while.
        wait_until(lambda: queue_ready(nodes[0].amqp_port) == 0 and consumer.idle_for() > 2.0,
                   timeout=60, interval=0.5, what="the queue to be drained")
    finally:
        consumer.close()
        for gw in gateways + drains:
            gw.close()

    # ---- every seq of every gateway, from 1, no gap
    assert not consumer.bad, f"envelopes whose id is not <gateway>:<seq>: {consumer.bad[:5]}"
    problems = []
    for gw in gateways:
        gid = gw.config.gateway_id
        seqs = sorted(consumer.first_seen.get(gid, {}))
        if not seqs:
            problems.append(f"{gid}: no event at all")
            continue
        missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
        if missing:
            problems.append(f"{gid}: {len(missing)} seq(s) missing of 1..{seqs[-1]}, "
                            f"first {missing[:10]}")
    assert not problems, "\n".join(problems) + f"\nconsumer errors: {consumer.errors}"
    assert not consumer.deadletters, consumer.deadletters[:5]

    # ---- figures
    distinct = consumer.distinct()
    duplicates = consumer.deliveries - distinct
    times = [t for s in consumer.first_seen.values() for t in s.values()]
    in_run = [t for t in times if run_start <= t <= t_stop]
    run_s = max(in_run) - min(in_run)
    buckets = Counter(int(t - run_start) for t in in_run)
    gaps = {gid: longest_gap(list(s.values()), t_kill, t_stop) for gid, s in
            consumer.first_seen.items()}
    victims = {g.config.gateway_id for g in on_victim}
    worst = max(gaps, key=gaps.get)
    disorder = {gid: d for gid, seqs in consumer.order.items() if (d := first_disorder(seqs))}
    figures = {
        "command": COMMAND,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rabbitmq_nodes": len(nodes),
        "gateways": N_GATEWAYS,
        "events_per_gateway_per_s_configured": EVENTS_PER_GATEWAY_S,
        "killed_node": victim.nodename,
        "queue_leader_before_kill": leader,
        "gateways_on_killed_node": len(victims),
        "gateways_moved_off_it": len(moved),
        "node_down_s": round(t_restart - t_kill, 1),
        "node_back_in_cluster_s": round(back_s, 1),
        "events": distinct,
        "event_deliveries": consumer.deliveries,
        "duplicates": duplicates,
        "events_per_s": round(len(in_run) / run_s, 1),
        "peak_events_per_s": max(buckets.values()),
        "longest_gap_s": round(gaps[worst], 2),
        "longest_gap_gateway": worst,
        "longest_gap_s_killed_node_gateways_median": round(
            statistics.median(gaps[g] for g in victims), 2),
        "longest_gap_s_other_gateways_max": round(
            max((v for g, v in gaps.items() if g not in victims), default=0.0), 2),
        "seq_order_violations": len(disorder),
        "kept_in_outbox_at_sigterm": sum(kept.values()),
        "gateways_drained_after_sigterm": len(kept),
        "fleet_rss_mib": round(sum(p["rss_kib"] for p in per_gw) / 1024, 1),
        "fleet_peak_rss_mib": round(sum(p["hwm_kib"] for p in per_gw) / 1024, 1),
        "rss_mib_per_gateway": round(statistics.mean(p["rss_kib"] for p in per_gw) / 1024, 1),
        "fleet_cpu_s": round(sum(p["cpu_s"] for p in per_gw), 1),
        "fleet_run_s": round(t_stop - run_start, 1),
        "cluster_rss_mib": round(cluster_rss, 1),
        "cluster_start_s": round(cluster.startup_seconds, 1),
        "consumer_reconnects": len(consumer.errors),
        "message_kinds": dict(consumer.kinds),
        "test_wall_s": round(time.monotonic() - cluster.began, 1),
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"fleet figures ({FIGURES}):\n{json.dumps(figures, indent=2)}")
    if disorder:
        print(f"first seq delivered out of order, per gateway: {disorder}")
    # The gateways of the killed node went on through the other nodes of
    # their lists (SPEC §13) instead of waiting for theirs to come back.
    assert gaps[worst] < DOWN_S, \
        f"{worst} delivered nothing for {gaps[worst]:.1f} s while a node was down {DOWN_S} s"
