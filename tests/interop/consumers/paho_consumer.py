#!/usr/bin/env python3
"""Consume tidegate events from any MQTT 3.1.1 broker (paho-mqtt 1.6), exactly once.

- A persistent session: a fixed client id and clean_session=False, QoS 1
  subscriptions. While this program is down the broker keeps its session and
  queues the events for it; a message delivered but not acknowledged is sent
  again (DUP) on the next connect.
- Acknowledge only after processing: paho 1.6 sends the PUBACK of a QoS 1
  message when on_message returns, so the processing (here: appending the
  event to an output file, flushed and fsynced) happens inside on_message. A
  crash inside it means no PUBACK, and the broker delivers the message again.
- Deduplication on the envelope's `id` per topic, with the output file as its
  memory, so that redelivered message is recognised and skipped: every event
  is processed exactly once.
- Gap and reordering checks on `seq` per gateway (log lines `gap:`, `late:`,
  `reordered:`), and a summary line at the end. The default subscriptions
  cover every topic that carries envelopes (events, rules, outputs,
  deadletter), so every seq a gateway creates is seen.

    paho_consumer.py --port 1883 --gateway greenhouse-pi --output events.jsonl
    paho_consumer.py --topic 'site1/+/events/#' --client-id billing-1 --count 500

Exit status: 0 when --count events were processed (or on SIGINT/SIGTERM, or at
--timeout without --count), 2 when --timeout passed first, 1 on errors.
Needs python3-paho-mqtt (Debian 12: 1.6.1) or `pip install "paho-mqtt<2"`.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracker import (InvalidEnvelope, ProcessedLog, Tracker, parse_envelope,  # noqa: E402
                     parse_processing_args, summary)

import paho.mqtt.client as mqtt  # noqa: E402

log = logging.getLogger("consumer")
CRASH_STATUS = 3


def default_topics(prefix: str, gateway: str) -> list[str]:
    base = f"{prefix}/{gateway}"
    return [f"{base}/events/#", f"{base}/rules/#", f"{base}/outputs/#", f"{base}/deadletter"]


class Consumer:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tracker = Tracker()
        self.out = ProcessedLog(args.output, self.tracker, fsync=not args.no_fsync)
        self.total = self.out.replayed
        self.processed_this_run = 0
        self.topics = args.topic or default_topics(args.topic_prefix, args.gateway)
        self.done = threading.Event()
        self.status = 0
        self.client = mqtt.Client(client_id=args.client_id, clean_session=args.clean,
                                  protocol=mqtt.MQTTv311)
        if args.username:
            password = Path(args.password_file).read_text().strip() if args.password_file \
                else None
            self.client.username_pw_set(args.username, password)
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message
        self.client.on_disconnect = self.on_disconnect

    def on_connect(self, client, _userdata, flags, rc):
        if rc != 0:
            log.error("broker refused the connection: %s", mqtt.connack_string(rc))
            self.status = 1
            self.done.set()
            return
        if flags.get("session present"):
            # The broker kept our subscriptions and queued what came meanwhile.
            log.info("ready: session of %s resumed", self.args.client_id)
        else:
            client.subscribe([(t, self.args.qos) for t in self.topics])

    def on_subscribe(self, _client, _userdata, _mid, granted):
        if any(q == 0x80 for q in granted):
            log.error("subscription refused: %s", list(zip(self.topics, granted)))
            self.status = 1
            self.done.set()
            return
        log.info("ready: subscribed to %s as %s", ", ".join(self.topics), self.args.client_id)

    def on_disconnect(self, _client, _userdata, rc):
        if rc != 0 and not self.done.is_set():
            log.warning("connection lost (%s); paho reconnects", mqtt.error_string(rc))

    def on_message(self, _client, _userdata, msg):
        # Runs on paho's network thread; the PUBACK goes out when this returns.
        if msg.dup:
            self.tracker.counters["redelivered"] += 1
        try:
            env = parse_envelope(msg.payload)
        except InvalidEnvelope as e:
            if msg.retain and not msg.payload:
                return  # a retained topic being cleared (a removed rule)
            self.tracker.counters["invalid"] += 1
            log.warning("not an envelope on %s (%s): skipped", msg.topic, e)
            return
        if self.tracker.is_duplicate(msg.topic, env):
            log.info(self.tracker.duplicate(msg.topic, env))
            return
        try:
            self.out.append(msg.topic, env, bool(msg.retain))  # the processing
        except OSError as e:
            # Returning would acknowledge an event we could not process: leave
            # without the PUBACK instead, so the broker keeps it for the next run.
            log.error("cannot write %s: %s; exiting without acknowledging %s",
                      self.args.output, e, env["id"])
            logging.shutdown()
            os._exit(1)
        for note in self.tracker.record(msg.topic, env, bool(msg.retain)):
            log.warning(note)
        self.total += 1
        self.processed_this_run += 1
        log.debug("processed %s on %s", env["id"], msg.topic)
        if self.args.crash_after and self.processed_this_run >= self.args.crash_after:
            log.warning("crash-after %d: exiting before the acknowledgement of %s",
                        self.args.crash_after, env["id"])
            logging.shutdown()
            os._exit(CRASH_STATUS)
        if self.args.count and self.total >= self.args.count and not self.done.is_set():
            log.info("%d event(s) processed: done", self.total)
            self.done.set()

    def run(self) -> int:
        args = self.args
        if self.out.replayed:
            log.info("%d event(s) already processed in %s", self.out.replayed, args.output)
        if args.count and self.total >= args.count:
            log.info("the output already holds %d event(s): nothing to do", self.total)
            return 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _f: (log.info("%s: stopping",
                                                            signal.Signals(signum).name),
                                                   self.done.set()))
        try:
            self.client.connect(args.host, args.port, keepalive=args.keepalive)
        except OSError as e:
            log.error("cannot connect to %s:%d: %s", args.host, args.port, e)
            return 1
        self.client.loop_start()
        finished = self.done.wait(args.timeout or None)
        if not finished:
            log.warning("timeout after %.0f s with %d event(s)", args.timeout, self.total)
            self.status = 2 if args.count else 0
        # A message arriving meanwhile is still processed by on_message before
        # its PUBACK: nothing is acknowledged unprocessed.
        self.client.disconnect()
        self.client.loop_stop()
        log.info(summary(self.tracker))
        for name, gaps in self.tracker.open_gaps().items():
            log.warning("open gaps of %s: %s", name, gaps)
        self.out.close()
        return self.status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="broker host (default %(default)s)")
    ap.add_argument("--port", type=int, default=1883, help="broker port (default %(default)s)")
    ap.add_argument("--client-id", default="tidegate-consumer",
                    help="fixed client id: the broker keeps the session under it "
                         "(default %(default)s); one per consumer process")
    ap.add_argument("--clean", action="store_true",
                    help="start with a clean session (drops what the broker kept for us)")
    ap.add_argument("--username")
    ap.add_argument("--password-file", help="file holding the password")
    ap.add_argument("--topic-prefix", default="tidegate", help="tidegate's mqtt.topic_prefix")
    ap.add_argument("--gateway", default="+",
                    help="gateway id to follow; '+' (default) follows every gateway")
    ap.add_argument("--topic", action="append", default=[], metavar="FILTER",
                    help="subscribe to this filter instead of the gateway's topics (repeatable)")
    ap.add_argument("--qos", type=int, default=1, choices=(1, 2))
    ap.add_argument("--keepalive", type=int, default=30)
    args = parse_processing_args(ap, argv)
    return Consumer(args).run()


if __name__ == "__main__":
    sys.exit(main())
