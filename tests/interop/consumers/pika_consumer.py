#!/usr/bin/env python3
"""Consume tidegate events from RabbitMQ over AMQP 0-9-1 (pika), exactly once.

tidegate publishes over MQTT; RabbitMQ's MQTT plugin routes each publish to
the `amq.topic` exchange with the topic as routing key, `/` turned into `.`
(`tidegate/greenhouse-pi/events/greenhouse/temp` ->
`tidegate.greenhouse-pi.events.greenhouse.temp`). This program:

- declares a durable queue (it survives a broker restart, and keeps
  collecting while this program is down) bound to every topic of a gateway
  (or of all gateways) that carries envelopes: events, rules, outputs,
  deadletter - so the seq checks see every seq;
- processes each message (here: appends it to an output file, flushed and
  fsynced), and only then acknowledges it (manual basic_ack): a crash before
  the ack makes RabbitMQ deliver the message again;
- deduplicates on the envelope's `id` per topic, using the output file as its
  memory, so a message delivered again after a crash is recognised and
  skipped - every event is processed exactly once;
- reports gaps and reordering of `seq` per gateway (log lines `gap:`,
  `late:`, `reordered:`), and a summary line at the end.

    pika_consumer.py --port 5672 --gateway greenhouse-pi --output events.jsonl
    pika_consumer.py --queue all-gateways --count 1000 --timeout 60 --output -

Exit status: 0 when --count events were processed (or on SIGINT/SIGTERM, or at
--timeout without --count), 2 when --timeout passed first, 1 on errors.
Needs python3-pika (Debian) or `pip install pika`.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracker import (InvalidEnvelope, ProcessedLog, Tracker, parse_envelope,  # noqa: E402
                     parse_processing_args, summary)

import pika  # noqa: E402

log = logging.getLogger("consumer")
CRASH_STATUS = 3


def binding_keys(prefix: str, gateway: str) -> list[str]:
    base = f"{prefix}.{gateway}"
    return [f"{base}.events.#", f"{base}.rules.#", f"{base}.outputs.#", f"{base}.deadletter"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="RabbitMQ host (default %(default)s)")
    ap.add_argument("--port", type=int, default=5672, help="AMQP port (default %(default)s)")
    ap.add_argument("--vhost", default="/", help="virtual host (default %(default)s)")
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password-file", help="file holding the password (default: guest)")
    ap.add_argument("--exchange", default="amq.topic",
                    help="exchange the MQTT plugin publishes to (default %(default)s)")
    ap.add_argument("--queue", default="tidegate-events",
                    help="durable queue to declare, bind and consume (default %(default)s)")
    ap.add_argument("--topic-prefix", default="tidegate", help="tidegate's mqtt.topic_prefix")
    ap.add_argument("--gateway", default="*",
                    help="gateway id to follow; '*' (default) follows every gateway")
    ap.add_argument("--binding", action="append", default=[], metavar="KEY",
                    help="bind this routing key instead of the gateway's topics (repeatable)")
    ap.add_argument("--prefetch", type=int, default=100,
                    help="unacknowledged messages RabbitMQ may hand over at once")
    args = parse_processing_args(ap, argv)
    logging.getLogger("pika").setLevel(logging.WARNING)  # its INFO is per connection step

    tracker = Tracker()
    out = ProcessedLog(args.output, tracker, fsync=not args.no_fsync)
    if out.replayed:
        log.info("%d event(s) already processed in %s", out.replayed, args.output)
    password = "guest"
    if args.password_file:
        password = Path(args.password_file).read_text().strip()

    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    params = pika.ConnectionParameters(args.host, args.port, args.vhost,
                                       pika.PlainCredentials(args.user, password),
                                       heartbeat=30)
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as e:
        log.error("cannot connect to %s:%d: %r", args.host, args.port, e)
        return 1
    ch = conn.channel()
    ch.queue_declare(args.queue, durable=True)
    keys = args.binding or binding_keys(args.topic_prefix, args.gateway)
    for key in keys:
        ch.queue_bind(args.queue, args.exchange, routing_key=key)
    ch.basic_qos(prefetch_count=args.prefetch)
    log.info("ready: queue %s bound to %s on %s", args.queue, ", ".join(keys), args.exchange)

    deadline = time.monotonic() + args.timeout if args.timeout else None
    total = out.replayed
    processed_this_run = 0
    status = 0
    if args.count and total >= args.count:
        log.info("the output already holds %d event(s): nothing to do", total)
        out.close()
        conn.close()
        return 0
    try:
        # consume() yields (None, None, None) after a second without messages,
        # so the stop conditions are checked while the queue is idle.
        for method, props, body in ch.consume(args.queue, inactivity_timeout=1.0):
            if stop["why"]:
                log.info("%s: stopping", stop["why"])
                break
            if deadline and time.monotonic() >= deadline:
                log.warning("timeout after %.0f s with %d event(s)", args.timeout, total)
                status = 2 if args.count else 0
                break
            if method is None:
                continue
            # The MQTT topic, for the output and per-topic deduplication.
            topic = method.routing_key.replace(".", "/")
            if method.redelivered:
                tracker.counters["redelivered"] += 1
            try:
                env = parse_envelope(body)
            except InvalidEnvelope as e:
                tracker.counters["invalid"] += 1
                log.warning("not an envelope on %s (%s): rejected", topic, e)
                # Not requeued: with a dead-letter exchange on the queue it goes there.
                ch.basic_reject(method.delivery_tag, requeue=False)
                continue
            if tracker.is_duplicate(topic, env):
                log.info(tracker.duplicate(topic, env))
                ch.basic_ack(method.delivery_tag)
                continue
            out.append(topic, env, retained=False)  # the processing
            for note in tracker.record(topic, env):
                log.warning(note)
            total += 1
            processed_this_run += 1
            log.debug("processed %s on %s", env["id"], topic)
            if args.crash_after and processed_this_run >= args.crash_after:
                log.warning("crash-after %d: exiting before the acknowledgement of %s",
                            args.crash_after, env["id"])
                logging.shutdown()
                os._exit(CRASH_STATUS)
            ch.basic_ack(method.delivery_tag)  # only now may RabbitMQ forget it
            if args.count and total >= args.count:
                log.info("%d event(s) processed: done", total)
                break
    except pika.exceptions.AMQPError as e:
        log.error("connection failed: %r", e)
        status = 1
    finally:
        log.info(summary(tracker))
        for name, gaps in tracker.open_gaps().items():
            log.warning("open gaps of %s: %s", name, gaps)
        out.close()
        try:
            ch.cancel()  # unacknowledged prefetched messages go back to the queue
            conn.close()
        except pika.exceptions.AMQPError:
            pass
    return status


if __name__ == "__main__":
    sys.exit(main())
