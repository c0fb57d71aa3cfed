"""Unit tests of consumers/tracker.py: deduplication on id per topic, gap,
late-arrival and reordering reports per gateway, the processed-events file as
the consumer's memory across restarts."""
from __future__ import annotations

import json

import pytest

from tracker import InvalidEnvelope, ProcessedLog, Tracker, parse_envelope, read_processed

T = "tidegate/gw/events/a"


def env(seq: int, gateway: str = "gw") -> dict:
    return {"v": 1, "id": f"{gateway}:{seq}", "type": "reading", "gateway": gateway,
            "seq": seq, "source": "a", "ts": "2026-11-26T17:15:53.123Z", "value": seq}


def feed(tracker: Tracker, seqs, topic: str = T, gateway: str = "gw") -> list[str]:
    notes = []
    for s in seqs:
        e = env(s, gateway)
        if tracker.is_duplicate(topic, e):
            notes.append(tracker.duplicate(topic, e))
        else:
            notes += tracker.record(topic, e)
    return notes


def test_in_order_stream_has_no_notes():
    t = Tracker()
    assert feed(t, range(10, 20)) == []  # joining mid-stream is no gap
    assert t.counters["processed"] == 10 and not t.counters["gaps"]
    assert t.open_gaps() == {}


def test_duplicates_are_per_topic():
    t = Tracker()
    feed(t, [1, 2])
    assert t.is_duplicate(T, env(2))
    # state/ repeats the latest event on purpose: not a duplicate there.
    assert not t.is_duplicate("tidegate/gw/state/a", env(2))
    assert t.record("tidegate/gw/state/a", env(2)) == []  # nor a reordering
    notes = feed(t, [2, 3])
    assert notes == [f"duplicate gw:2 on {T}: already processed, skipped"]
    assert t.counters["duplicates"] == 1 and t.counters["reordered"] == 0


def test_gap_then_late_arrival_fills_it():
    t = Tracker()
    notes = feed(t, [1, 2, 5])
    assert notes == ["gap: gateway gw: seq 3..4 missing (2) before seq 5 "
                     "(legitimate after an unclean reboot of the gateway, SPEC §4)"]
    assert t.open_gaps() == {"gw": [[3, 4]]}
    notes = feed(t, [4])
    assert notes == ["late: gateway gw: seq 4 arrived after seq 5, filling a gap reported before"]
    assert t.open_gaps() == {"gw": [[3, 3]]}
    feed(t, [3])
    assert t.open_gaps() == {}
    assert (t.counters["gaps"], t.counters["missing"], t.counters["late"],
            t.counters["reordered"]) == (1, 2, 2, 2)


def test_a_fill_in_the_middle_splits_the_gap():
    t = Tracker()
    feed(t, [1, 10, 5])
    assert t.open_gaps() == {"gw": [[2, 4], [6, 9]]}


def test_reordering_without_a_reported_gap():
    t = Tracker()
    feed(t, [7])  # joined at 7: 5 was before our time
    assert feed(t, [5]) == ["reordered: gateway gw: seq 5 arrived after seq 7"]


def test_gateways_are_tracked_apart():
    t = Tracker()
    feed(t, [1, 2, 3], gateway="a")
    assert feed(t, [1, 2], gateway="b") == []
    assert not t.is_duplicate(T, env(3, "b"))


def test_retained_copies_are_deduplicated_but_not_sequence_checked():
    t = Tracker()
    feed(t, [100, 101])
    # A late subscriber's retained rule state from long ago.
    assert t.record("tidegate/gw/rules/hot", env(7), retained=True) == []
    assert t.counters["retained"] == 1 and t.counters["reordered"] == 0
    assert t.is_duplicate("tidegate/gw/rules/hot", env(7))


def test_forward_jump_after_an_unclean_reboot_is_reported_as_a_gap():
    t = Tracker()
    notes = feed(t, [41, 42, 1042])
    assert len(notes) == 1 and notes[0].startswith("gap: gateway gw: seq 43..1041 missing (999)")


def test_memory_is_bounded_and_old_copies_count_as_duplicates():
    t = Tracker(window=100)
    feed(t, range(1, 1001))
    assert len(t.gateways["gw"].seen) <= 111
    assert t.is_duplicate(T, env(3))   # forgotten: taken for a very late redelivery
    assert t.is_duplicate(T, env(999))
    assert not t.is_duplicate(T, env(1001))


@pytest.mark.parametrize("payload,why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"gateway": "gw", "seq": 1}', "id None"),
    (b'{"id": "gw:2", "gateway": "gw", "seq": 1}', "id 'gw:2' is not gw:1"),
    (b'{"id": "gw:1", "gateway": "gw", "seq": true}', "no seq"),
    (b'{"id": "gw:1", "seq": 1}', "no gateway"),
    (b"\xff\xfe", "not JSON"),
])
def test_invalid_envelopes_are_rejected(payload, why):
    with pytest.raises(InvalidEnvelope, match=why.replace("(", r"\(")):
        parse_envelope(payload)


def test_parse_envelope_keeps_unknown_fields():
    e = parse_envelope(json.dumps({**env(3), "new_field": [1]}).encode())
    assert e["seq"] == 3 and e["new_field"] == [1]


def test_processed_log_is_the_memory_across_restarts(tmp_path):
    path = tmp_path / "out.jsonl"
    t1 = Tracker()
    log1 = ProcessedLog(str(path), t1, fsync=True)
    for s in (1, 2, 3):
        log1.append(T, env(s), retained=False)
        t1.record(T, env(s))
    log1.close()
    # A crash mid-write leaves a torn line: it is cut off on the next start.
    with open(path, "a") as f:
        f.write('{"topic": "tidegate/gw/events/a", "retained": false, "ev')

    t2 = Tracker()
    log2 = ProcessedLog(str(path), t2)
    assert log2.replayed == 3
    assert t2.counters == {}  # counters describe the new run only
    assert t2.is_duplicate(T, env(3)) and not t2.is_duplicate(T, env(4))
    assert feed(t2, [4]) == []  # the seq check goes on where it was
    assert feed(t2, [6])[0].startswith("gap: gateway gw: seq 5 missing (1)")
    log2.append(T, env(4), retained=False)
    log2.close()
    assert [r["event"]["seq"] for r in read_processed(path)] == [1, 2, 3, 4]
