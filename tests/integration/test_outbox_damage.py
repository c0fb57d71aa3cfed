"""Damage to the outbox folder that is not inside a record (SPEC §7: start-up
never fails because of corruption, and nothing vanishes silently): a middle
segment of a backlog replaced by a directory or a FIFO. A real gateway builds
the backlog with its broker down, stops cleanly, the folder is damaged, and the
gateway starts again against the real broker."""

import os
import shutil
import struct

import pytest

from tidegate_testkit import Subscriber, sequence_sensor, wait_until
from tidegate_testkit.faultkit import seqs_of

MARKER = b"\xffTGR"


def segment_seqs(path):
    """The seqs of the records in a segment file (framing of outbox_record.h:
    marker, u32 body length, u32 CRC, body starting with the u64 seq)."""
    data = path.read_bytes()
    seqs, pos = [], 0
    while pos + 20 <= len(data) and data[pos:pos + 4] == MARKER:
        length = struct.unpack_from("<I", data, pos + 4)[0]
        seqs.append(struct.unpack_from("<Q", data, pos + 12)[0])
        pos += 12 + length
    return seqs


@pytest.mark.parametrize("damage", ["directory", "fifo"])
def test_a_damaged_middle_segment_is_set_aside_and_the_rest_delivered(
        damage, mosquitto_factory, make_config, start_gateway):
    broker = mosquitto_factory()  # down while the backlog builds
    # Segments of max_bytes / 4 = 32 KiB: a few hundred readings fill several.
    cfg = make_config(sensors=[sequence_sensor(interval="10ms")],
                      mqtt={"uri": f"tcp://127.0.0.1:{broker.port}"},
                      extra={"outbox": {"max_bytes": 131072},
                             "metrics": {"interval": "1s"}})
    outbox = cfg.data_dir / "outbox"
    first = start_gateway(cfg)
    first.wait_for_log(r"connect to .* failed", timeout=10)
    wait_until(lambda: len(list(outbox.glob("*.seg"))) >= 4, timeout=30,
               what="a backlog of four segments")
    assert first.terminate() == 0

    segments = sorted(outbox.glob("*.seg"))
    held = {seg: segment_seqs(seg) for seg in segments}
    assert all(held[seg] for seg in segments[:-1])
    victim = segments[1]
    lost = set(held[victim])
    intact = sorted(s for seg in segments if seg != victim for s in held[seg])
    last_of_first_run = intact[-1]
    assert lost and min(intact) == 1

    victim.unlink()
    if damage == "directory":
        victim.mkdir()
        (victim / "something").write_text("not a segment")
        found = "a directory"
    else:
        os.mkfifo(victim)
        found = "a FIFO"

    broker.start()
    sub = Subscriber(broker.port, f"{cfg.base}/#")
    second = start_gateway(cfg)
    second.wait_for_log(rf"{victim.name} is {found}, not a file the outbox wrote: moved aside",
                        timeout=10)
    second.wait_for_log(rf"seqs {min(lost)}\.\.{max(lost)} missing from .* "
                        rf"{len(lost)} event\(s\) lost", timeout=10)
    assert second.running(), "start-up must not fail because of a damaged folder entry"

    # Every event of the intact segments arrives, then new readings go on.
    sub.wait_for(lambda ms: set(intact) <= set(s := seqs_of(ms))
                 and max(s) > last_of_first_run + 20,
                 timeout=30, what="the intact backlog and new readings")
    assert not lost & set(seqs_of(sub.snapshot())), "a lost seq cannot be delivered"
    metrics = sub.wait_for(
        lambda ms: [m.json() for m in ms if m.topic == cfg.topic("metrics")
                    and m.json()["corrupt_records"] >= 1],
        timeout=15, what="metrics counting the damage")
    assert metrics
    aside = victim.with_name(victim.name + ".damaged-1")
    assert os.path.lexists(aside) and not aside.is_file()
    assert second.terminate() == 0

    # The next start has nothing more to report.
    if aside.is_dir():
        shutil.rmtree(aside)
    else:
        aside.unlink()
    third = start_gateway(cfg)
    third.wait_for_log(r"connected to .*", timeout=10)
    assert third.terminate() == 0
    assert "event(s) lost" not in third.log()
    assert "not a file the outbox wrote" not in third.log()
