// Outbox: the durable, segmented log every event is written to before it is
// published (SPEC §7, ARCHITECTURE "one log, two cursors"). Owned by the event
// loop thread: no threads, no locks, no blocking beyond local disk I/O.
//
// Files under <data_dir>: outbox/NNN.seg, append-only segments named by the
// first seq they were opened for (records as in outbox_record.h); outbox/state
// (outbox_state.h: seq reservation, delivery cursor, boot id, clean mark);
// outbox/corrupt/, damaged bytes kept for inspection; journal/NNN.seg,
// delivered segments kept for `tidegate replay` within journal.retain_bytes.
//
// Durability. append() hands the record to the kernel at once (a process
// crash loses nothing). fdatasync is a group commit for undelivered records:
// at most `sync` after the first one waits (or before append returns with
// sync_always); records the broker acknowledged in the meantime need none.
//
// Seq safety. next_seq() follows the log itself (last record + 1, or an empty
// newest segment's name). No seq above a durably stored reservation R is ever
// written (one fsync per reserve_block seqs). At open: after a clean close, or
// a process crash in the same kernel boot (page cache intact), seq continues
// exactly; after a reboot, without a readable state, or when a crash left the
// newest segment missing (the state names it), seq continues past R: a gap,
// never a reuse of an id consumers may have seen.
//
// Delivery. The link takes records in seq order with next_unsent(), acks them
// (any order) and calls rewind_unacked() when a connection is lost. The cursor
// (the acknowledged prefix) reaches the state file as soon as it moves, fsynced
// every cursor_sync: a restart resends at most what was not acknowledged then.
// Segments wholly behind the cursor are deleted or moved to the journal. A
// latest_only destination (a retained state/ topic) is left out when a newer
// record carries the same topic, so a backlog sends each state once.
//
// Bounds. Undelivered bytes never exceed max_bytes, and a full disk frees
// space: oldest segments first (journal, then undelivered), every drop
// counted exactly and returned as a DropReport for the dead-letter topic.
//
// Recovery. open() never fails because of damage, only on real I/O errors.
// Damage inside segments is cut out (corrupt_records), logged and copied to
// outbox/corrupt/; folder entries that are not regular files are renamed
// NAME.damaged-N unread (corrupt_records); seqs missing between segments,
// before the first or at the end are counted exactly (lost_records).
#pragma once

#include <sys/types.h>

#include <cerrno>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "outbox_reader.h"
#include "outbox_record.h"
#include "outbox_state.h"

namespace tg {

struct Config;

// System calls the outbox writes through; tests replace them to inject faults
// (ENOSPC, EIO). Same contract as ::pwrite and ::fdatasync.
struct OutboxIo {
    std::function<ssize_t(int fd, const void* buf, std::size_t n, off_t offset)> pwrite;
    std::function<int(int fd)> fdatasync;
};

// A write or sync failed because the disk (or the user's quota) is full:
// the outbox frees space by dropping its oldest segments and tries again.
inline bool is_space_error(int err) {
    return err == ENOSPC || err == EDQUOT;
}

struct OutboxOptions {
    std::string data_dir;                           // holds outbox/ and journal/
    std::uint64_t max_bytes = 64ull << 20;          // bound on undelivered bytes
    std::chrono::milliseconds sync{1000};           // group-commit interval
    bool sync_always = false;                       // fdatasync before append returns
    std::uint64_t retain_bytes = 0;                 // journal of delivered segments (0 = off)
    std::uint64_t segment_bytes = 4ull << 20;       // roll size (at most max_bytes / 4)
    std::chrono::milliseconds cursor_sync{10'000};  // fsync of the cursor (power cuts)
    std::uint64_t reserve_block = 4096;             // seqs reserved per state fsync
    std::uint64_t min_next_seq = 1;                 // floor, e.g. from an older seq counter
    std::optional<std::string> boot_id;             // nullopt: the kernel's; "" = unknown
    OutboxIo io;                                    // empty members: the real system calls
};

// The outbox, journal and sync settings of a loaded config (SPEC §2).
OutboxOptions outbox_options(const Config& cfg);

enum class DropReason {
    OutboxFull,  // undelivered bytes reached max_bytes (or one event exceeds it)
    DiskFull,    // ENOSPC/EDQUOT writing or syncing
    IoError,     // another write error: the new event could not be stored
};

// "outbox_full", "disk_full", "io_error": for logs and dead-letter details.
const char* drop_reason_word(DropReason r);

// A batch of undelivered events given up in one go. Every seq in
// [first_seq, last_seq] that was ever appended is gone; `count` is exact
// (the range may include gaps that never held an event).
struct DropReport {
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::uint64_t count = 0;
    DropReason reason = DropReason::OutboxFull;
};

struct AppendResult {
    std::uint64_t seq = 0;
    bool stored = false;            // false: this event itself is in `drops`
    std::vector<DropReport> drops;  // what was dropped to make room, in order
};

class Outbox {
  public:
    enum class Resume {
        Fresh,    // no previous state
        Clean,    // previous run closed cleanly: exact continuation
        Crash,    // same kernel boot, no clean close: exact continuation
        Reboot,   // another boot without a clean close: seq jumps past the reservation
        Unknown,  // segments without a readable state file: seq jumps two blocks ahead
    };

    struct Stats {
        std::uint64_t depth = 0;            // undelivered records
        std::uint64_t bytes = 0;            // undelivered bytes on disk
        std::uint64_t dropped = 0;          // undelivered records given up (bounds, disk full)
        std::uint64_t corrupt_records = 0;  // damaged stretches cut out or skipped, and
                                            // folder entries set aside (not regular files)
        // Events missing from the outbox folder, counted exactly from their
        // seqs: a segment deleted or set aside between others, before the
        // first (past the cursor), or the newest after a clean close.
        std::uint64_t lost_records = 0;
        std::uint64_t appended = 0;
        std::uint64_t acked = 0;
        std::uint64_t in_flight = 0;  // handed out by next_unsent, not yet acked
        std::uint64_t segments = 0;   // in outbox/
        std::uint64_t journal_bytes = 0;
        std::uint64_t fsyncs = 0;      // fdatasync/fsync of segments, state and folders
        std::uint64_t superseded = 0;  // latest-only destinations left out (read models)
    };

    explicit Outbox(OutboxOptions opts);
    // Releases files without a clean close (as a crash would); call close().
    ~Outbox();
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // Creates the folders, recovers the log and durably records this boot and
    // a fresh reservation. Throws std::runtime_error on I/O errors only.
    void open();
    Resume resumed() const { return resume_; }
    const std::string& dir() const { return dir_; }

    // The seq the next append must carry (the caller builds the envelope with it).
    std::uint64_t next_seq() const { return next_seq_; }

    // Appends `r`; r.seq must equal next_seq() (std::logic_error otherwise).
    // next_seq() moves on even when the event could not be stored, so a
    // dead-lettered seq is never shown for a different event.
    AppendResult append(const outbox::Record& r);

    // Applies max_bytes and retain_bytes now (after open, e.g. when the bound
    // was lowered); returns what it dropped.
    std::vector<DropReport> enforce();

    // --- delivery (the MQTT link) ---
    // The next record to publish, oldest first: first the unacknowledged ones
    // after rewind_unacked(), then new ones. False when there is none.
    bool next_unsent(outbox::Record& out);
    // The broker acknowledged `seq` (QoS 1: PUBACK of all its destinations;
    // QoS 0: handed to the client). False when `seq` is not in flight (already
    // acked, dropped, or unknown): harmless.
    bool ack(std::uint64_t seq);
    // The connection was lost: every record in flight and not acked is handed
    // out again by next_unsent, in seq order, before any new one.
    void rewind_unacked();
    std::size_t in_flight() const { return sent_unacked_; }
    // Every seq ≤ cursor() was delivered or dropped.
    std::uint64_t cursor() const { return cursor_seq_; }

    // --- group commit (the loop's timer) ---
    // When sync_if_due must next run; nullopt when nothing waits for a sync.
    std::optional<MonoTime> next_sync_deadline() const;
    // Syncs what is due at `now`. Returns drops caused by ENOSPC on fsync.
    // An undelivered record's interval starts at the first call that sees it:
    // call it after appending (the loop does, at its next turn).
    std::vector<DropReport> sync_if_due(MonoTime now);
    // Makes the log (delivered records too) and the cursor durable now.
    std::vector<DropReport> sync_now();
    // Syncs everything and marks the shutdown clean: the next open continues
    // exactly, even after a reboot. The outbox is unusable afterwards.
    void close();
    bool is_open() const { return open_; }

    Stats stats() const;

  private:
    struct Segment {
        std::uint64_t base = 0;
        std::string path;
        int fd = -1;
        std::uint64_t bytes = 0;
        std::uint64_t records = 0;
        std::uint64_t first_seq = 0;  // 0 when empty
        std::uint64_t last_seq = 0;
        bool dirty = false;  // written since its last fdatasync
    };
    struct Pos {
        std::uint64_t seg = 0;  // segment base
        std::uint64_t offset = 0;
    };
    struct Flight {
        std::uint64_t seq = 0;
        Pos pos;
        std::uint64_t size = 0;
        bool sent = false;
        bool acked = false;  // or settled without the broker (lost)
        bool lost = false;   // unreadable since it was first sent
    };
    struct JournalFile {
        std::uint64_t base = 0;
        std::string path;
        std::uint64_t bytes = 0;
    };

    // open() helpers, in the order open() runs them.
    // Prepares outbox/ and its state file (setting aside what took their
    // place), locks it against a second gateway, and reads the previous state.
    std::optional<outbox::State> open_state_file();
    // What recover_segments learnt of the log: the seq its records continue
    // with (0: no segment) and the name of the newest segment file found.
    struct LogScan {
        std::uint64_t next = 0;
        std::uint64_t newest_name = 0;
    };
    // Recovers every segment, oldest first, into segs_ (their records'
    // spans into `spans`), counting seqs missing between them.
    LogScan recover_segments(const std::optional<outbox::State>& prev, bool same_boot,
                             std::vector<std::vector<outbox::RecordSpan>>& spans);
    // Counts and logs a newest segment that went missing since the previous
    // run; true when which seqs it held is not known.
    bool report_missing_tail(const std::optional<outbox::State>& prev, bool same_boot,
                             const LogScan& scan);
    // How seq continues (sets resume_): exactly after a clean close or a
    // process crash, past every reservation after a reboot or lost state.
    std::uint64_t resume_seq(const std::optional<outbox::State>& prev, bool same_boot,
                             std::uint64_t log_next, bool tail_doubt);
    std::optional<outbox::State> read_state();
    // `delivered`: records up to it need not be indexed as read models.
    // True when the segment ended in damage (cut out now).
    bool recover_segment(Segment& s, std::uint64_t after, std::uint64_t delivered,
                         std::vector<outbox::RecordSpan>& spans);
    // Moves a folder entry that is not a regular file out of the way (to
    // NAME.damaged-N), counted and logged; false (errno) when it cannot.
    bool set_aside(const std::string& path, const std::string& kind,
                   const std::string& consequence);
    // `s` starts after `expect`, the seq its predecessor ends before: counts
    // and logs the seqs missing in between (unless damage cut out just
    // before already counted them), and renames `s` so the gap is reported once.
    void close_gap(Segment& s, std::uint64_t expect, std::uint64_t delivered, bool damaged_before);
    void save_damaged(const Segment& s, const std::string& data, const outbox::DamagedRange& d);
    void load_journal();
    void place_cursor(const std::vector<std::vector<outbox::RecordSpan>>& spans);

    // state file
    bool write_state(bool durable, bool clean);

    // segments
    Segment* find_segment(std::uint64_t base);
    Segment* active() { return segs_.empty() ? nullptr : &segs_.back(); }
    bool create_segment(std::uint64_t base);
    void close_segment(Segment& s);
    void retire_front();
    // Writes a moved cursor to the state file now (no fsync), before the
    // segments behind it are deleted.
    void write_cursor_now();
    void trim_journal(std::uint64_t limit);
    void gc();
    std::uint64_t segment_limit() const;

    // bounds and faults
    bool drop_oldest_undelivered(DropReason why, std::vector<DropReport>& drops);
    bool free_disk_space(std::vector<DropReport>& drops);
    void note_drop(std::uint64_t first, std::uint64_t last, std::uint64_t count, DropReason why,
                   std::vector<DropReport>& drops);
    void make_room(std::uint64_t need, std::vector<DropReport>& drops);
    bool write_all(int fd, const char* data, std::size_t n, std::uint64_t offset);
    // Whether `s` holds unsynced bytes the group commit must protect.
    bool needs_commit(const Segment& s) const;
    bool needs_commit() const;
    // fdatasyncs the segments that need it (`all`: every dirty one).
    bool commit_log(std::vector<DropReport>& drops, bool all = false);
    bool sync_fd(int fd);
    void sync_dir();
    void io_failure(const std::string& what, int err);

    // delivery
    bool read_at(const Pos& p, outbox::Record& out, std::uint64_t& size);
    // `len` bytes of `s` at `offset`, from the read-ahead block; nullptr on a
    // short read or a read error (errno).
    const unsigned char* read_window(const Segment& s, std::uint64_t offset, std::size_t len);
    void forget_read_ahead() { rbuf_.clear(); }
    void note_latest(const outbox::Record& r);
    void leave_out_superseded(outbox::Record& r);
    void skip_damage_at_read_pos();
    void recount(Segment& s);
    void settle(std::deque<Flight>::iterator it);
    void pass(const Flight& f);
    void forget_flights_upto(std::uint64_t seq);

    std::uint64_t undelivered_bytes() const;
    std::uint64_t undelivered_records() const;

    OutboxOptions opts_;
    OutboxIo io_;
    std::string dir_;          // <data_dir>/outbox
    std::string journal_dir_;  // <data_dir>/journal
    std::string boot_id_;
    bool open_ = false;
    Resume resume_ = Resume::Fresh;

    std::deque<Segment> segs_;         // oldest first; back() is the active one
    std::deque<JournalFile> journal_;  // oldest first
    std::uint64_t journal_bytes_ = 0;
    std::uint64_t next_seq_ = 1;

    // state file
    int state_fd_ = -1;
    outbox::State state_;
    int durable_slot_ = 0;

    // delivery
    std::uint64_t cursor_seq_ = 0;
    Pos cursor_pos_;                      // where the first undelivered record starts
    std::uint64_t cursor_delivered_ = 0;  // records of cursor_pos_.seg at or before cursor
    Pos read_pos_;                        // where the next never-sent record starts
    std::uint64_t read_last_seq_ = 0;     // seq of the last record handed out
    std::deque<Flight> flights_;          // handed out, not yet behind the cursor; seq order
    std::size_t resend_ = 0;              // flights_ before this index need no resend
    std::size_t sent_unacked_ = 0;

    // group commit
    bool dir_dirty_ = false;
    std::optional<MonoTime> pending_since_;       // first seen needing a commit
    bool cursor_unsynced_ = false;                // written to the state file, not fsynced
    std::uint64_t cursor_written_ = 0;            // cursor value last written to the state file
    MonoTime cursor_retry_at_ = MonoTime::min();  // after a failed cursor write
    MonoTime last_state_sync_ = MonoTime::min();

    Stats stats_;
    RateLimiter io_log_limiter_{std::chrono::minutes(1)};

    // read-ahead block: bytes [rbuf_off_, rbuf_off_ + rbuf_.size()) of segment rbuf_seg_
    std::vector<unsigned char> rbuf_;
    std::uint64_t rbuf_seg_ = 0;
    std::uint64_t rbuf_off_ = 0;
    // latest-only topic -> seq of the newest record carrying it
    std::unordered_map<std::string, std::uint64_t> latest_;
};

}  // namespace tg
