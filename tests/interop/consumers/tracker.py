"""What a consumer of tidegate events needs besides a client library:
deduplication on `id`, gap and reordering checks on `seq` per gateway, and a
processed-events file that survives a crash. Shared by pika_consumer.py and
paho_consumer.py; plain Python 3, no dependencies.

The contract these rely on (SPEC §4, §7):
- every envelope carries `id` = `<gateway>:<seq>`, identical on every
  redelivery: a repeated (topic, id) is a duplicate. `state/...` repeats the
  latest event on purpose, so deduplication is per topic;
- `seq` grows by one per envelope a gateway creates (readings, rule events,
  output events, dead letters), and the gateway delivers in seq order. A
  consumer that subscribes to every topic carrying envelopes (events/, rules/,
  outputs/, deadletter) therefore sees every seq: a missing one is a gap, an
  older one arriving after a newer one is reordering. Subscribe to less (only
  events/, say) and the seqs of the rest show up as gaps;
- after an unclean reboot of the gateway (power cut) `seq` may jump forward:
  that gap is legitimate, nothing was created in it; a gap during normal
  operation means events were dropped (outbox bound, `outbox_full` dead
  letter) or lost in the transport.

Retained messages (a late subscriber's copy of `state/`, `rules/`,
`outputs/`) are older snapshots: they are deduplicated but not taken into the
seq checks.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


class InvalidEnvelope(ValueError):
    """The payload is not a tidegate envelope (not JSON, or id/gateway/seq
    missing or inconsistent)."""


def parse_envelope(payload: bytes) -> dict:
    try:
        env = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidEnvelope(f"not JSON: {e}") from None
    if not isinstance(env, dict):
        raise InvalidEnvelope("not a JSON object")
    gateway, seq, ident = env.get("gateway"), env.get("seq"), env.get("id")
    if not isinstance(gateway, str) or not gateway:
        raise InvalidEnvelope("no gateway")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise InvalidEnvelope("no seq")
    if ident != f"{gateway}:{seq}":
        raise InvalidEnvelope(f"id {ident!r} is not {gateway}:{seq}")
    return env


@dataclass
class _Gateway:
    max_seq: int | None = None          # highest live seq recorded
    floor: int = 0                      # seqs below were pruned: treated as seen
    seen: dict[int, set[str]] = field(default_factory=dict)  # seq -> topics processed on
    missing: list[list[int]] = field(default_factory=list)   # open gaps, [first, last]


class Tracker:
    """Remembers, per gateway, which (topic, seq) were processed and which seqs
    are still missing. Memory is bounded: seqs more than `window` below the
    newest are forgotten and any later copy of them is taken for a duplicate
    (the gateway delivers in order, so such a copy is a very late
    redelivery)."""

    def __init__(self, window: int = 100_000):
        self.window = window
        self.gateways: dict[str, _Gateway] = {}
        self.counters: Counter[str] = Counter()

    def is_duplicate(self, topic: str, env: dict) -> bool:
        gw = self.gateways.get(env["gateway"])
        if gw is None:
            return False
        seq = env["seq"]
        return seq < gw.floor or topic in gw.seen.get(seq, ())

    def duplicate(self, topic: str, env: dict) -> str:
        """Counts a duplicate; returns its log line."""
        self.counters["duplicates"] += 1
        return f"duplicate {env['id']} on {topic}: already processed, skipped"

    def record(self, topic: str, env: dict, retained: bool = False) -> list[str]:
        """Marks (topic, id) processed - call it after processing, before
        acknowledging - and checks the seq. Returns log lines for gaps,
        late arrivals and reordering (empty when all is in order)."""
        name, seq = env["gateway"], env["seq"]
        gw = self.gateways.setdefault(name, _Gateway())
        copy_of_known_seq = seq in gw.seen
        gw.seen.setdefault(seq, set()).add(topic)
        self.counters["processed"] += 1
        if retained:
            self.counters["retained"] += 1
            return []
        if copy_of_known_seq:
            return []  # the same event on another topic (state/ beside events/)
        notes: list[str] = []
        if gw.max_seq is None:
            gw.max_seq = seq  # the first one seen: where this consumer joined
        elif seq == gw.max_seq + 1:
            gw.max_seq = seq
        elif seq > gw.max_seq + 1:
            first, last = gw.max_seq + 1, seq - 1
            count = last - first + 1
            self.counters["gaps"] += 1
            self.counters["missing"] += count
            gw.missing.append([first, last])
            span = f"seq {first}" if count == 1 else f"seq {first}..{last}"
            notes.append(f"gap: gateway {name}: {span} missing ({count}) before seq {seq} "
                         f"(legitimate after an unclean reboot of the gateway, SPEC §4)")
            gw.max_seq = seq
        else:
            self.counters["reordered"] += 1
            if self._fill(gw, seq):
                self.counters["late"] += 1
                notes.append(f"late: gateway {name}: seq {seq} arrived after seq "
                             f"{gw.max_seq}, filling a gap reported before")
            else:
                notes.append(f"reordered: gateway {name}: seq {seq} arrived after seq "
                             f"{gw.max_seq}")
        self._prune(gw)
        return notes

    def open_gaps(self) -> dict[str, list[list[int]]]:
        """Gaps reported and not filled since, per gateway."""
        return {name: [list(r) for r in gw.missing]
                for name, gw in self.gateways.items() if gw.missing}

    @staticmethod
    def _fill(gw: _Gateway, seq: int) -> bool:
        for i, (first, last) in enumerate(gw.missing):
            if first <= seq <= last:
                pieces = [[first, seq - 1]] if seq > first else []
                pieces += [[seq + 1, last]] if seq < last else []
                gw.missing[i:i + 1] = pieces
                return True
        return False

    def _prune(self, gw: _Gateway) -> None:
        assert gw.max_seq is not None
        floor = gw.max_seq - self.window
        if floor > gw.floor + self.window // 10:  # in batches, not per event
            for seq in [s for s in gw.seen if s < floor]:
                del gw.seen[seq]
            gw.missing = [[max(a, floor), b] for a, b in gw.missing if b >= floor]
            gw.floor = floor


class ProcessedLog:
    """The consumer's output: one JSON line per processed event,
    {"topic":…,"retained":…,"event":{envelope}}, flushed (and fsynced) before
    the message is acknowledged. It doubles as the deduplication memory: on
    start the lines already there are replayed into the tracker, so a message
    that was processed but not acknowledged before a crash is recognised when
    the broker delivers it again. A torn last line (a crash mid-write) is cut
    off: its message was not acknowledged and comes again."""

    def __init__(self, path: str, tracker: Tracker, fsync: bool = True):
        self.path = path
        self.fsync = fsync and path != "-"
        self.replayed = 0
        if path == "-":
            self.file = os.fdopen(os.dup(1), "w", encoding="utf-8")
            return
        self._replay(Path(path), tracker)
        self.file = open(path, "a", encoding="utf-8")

    def _replay(self, path: Path, tracker: Tracker) -> None:
        if not path.exists():
            return
        data = path.read_bytes()
        good = data.rfind(b"\n") + 1
        if good < len(data):
            with open(path, "r+b") as f:
                f.truncate(good)
        for rec in read_processed(path):
            tracker.record(rec["topic"], rec["event"], rec.get("retained", False))
            self.replayed += 1
        tracker.counters.clear()  # counters describe this run

    def append(self, topic: str, env: dict, retained: bool) -> None:
        line = json.dumps({"topic": topic, "retained": retained, "event": env},
                          ensure_ascii=False, separators=(",", ":"))
        self.file.write(line + "\n")
        self.file.flush()
        if self.fsync:
            os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def read_processed(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def summary(tracker: Tracker) -> str:
    """One JSON line with this run's counters, for logs and tests."""
    keys = ("processed", "duplicates", "gaps", "missing", "late", "reordered", "retained",
            "invalid", "redelivered")
    return "summary " + json.dumps({k: tracker.counters.get(k, 0) for k in keys})


def parse_processing_args(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Adds the options every consumer example shares (when to stop, where
    processed events go, the crash testing aid, verbosity), parses argv and
    sets up logging on standard error."""
    ap.add_argument("--count", type=int, default=0,
                    help="stop once the output holds this many events (0: no limit)")
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop after this many seconds (0: run until SIGINT/SIGTERM)")
    ap.add_argument("--output", default="-",
                    help="file to append processed events to, JSON lines (default: stdout; "
                         "only a file remembers processed ids across restarts)")
    ap.add_argument("--no-fsync", action="store_true", help="do not fsync each processed event")
    ap.add_argument("--crash-after", type=int, default=0, metavar="N",
                    help="testing aid: exit abruptly (status 3) right after processing the "
                         "N-th event of this run, before acknowledging it")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every message")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return args
