// The outbox's group commit (outbox.h, "Durability"): which segments owe an
// fdatasync, when it is due, and the state file's cursor writes and syncs,
// all driven by the event loop's timer through next_sync_deadline and
// sync_if_due.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "outbox.h"

namespace tg {

bool Outbox::sync_fd(int fd) {
    int r;
    do {
        r = io_.fdatasync(fd);
    } while (r != 0 && errno == EINTR);
    ++stats_.fsyncs;
    return r == 0;
}

void Outbox::sync_dir() {
    const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ++stats_.fsyncs;
    ::close(fd);
}

bool Outbox::needs_commit(const Segment& s) const {
    // Delivered records are safe at the broker; the journal keeps them too.
    return s.dirty && (opts_.retain_bytes > 0 || s.last_seq > cursor_seq_);
}

bool Outbox::needs_commit() const {
    // Only the newest segments can hold undelivered records.
    for (auto it = segs_.rbegin(); it != segs_.rend(); ++it) {
        if (needs_commit(*it)) return true;
        if (it->last_seq != 0 && it->last_seq <= cursor_seq_ && opts_.retain_bytes == 0) break;
    }
    return false;
}

bool Outbox::commit_log(std::vector<DropReport>& drops, bool all) {
    bool ok = true;
    // Full segments first (left unsynced by a roll when all was delivered);
    // then the active one, which may free disk space on ENOSPC.
    for (std::size_t i = 0; i + 1 < segs_.size(); ++i) {
        Segment& s = segs_[i];
        if (!(all ? s.dirty : needs_commit(s))) continue;
        if (sync_fd(s.fd)) {
            s.dirty = false;
        } else {
            io_failure("cannot fsync " + s.path, errno);
            ok = false;
        }
    }
    Segment* a = active();
    if (a && (all ? a->dirty : needs_commit(*a))) {
        if (sync_fd(a->fd)) {
            a->dirty = false;
        } else {
            const int err = errno;
            if (is_space_error(err) && free_disk_space(drops) && (a = active()) && sync_fd(a->fd)) {
                a->dirty = false;
            } else {
                io_failure("cannot fsync " + (a ? a->path : dir_), err);
                ok = false;  // stays dirty: retried at the next deadline
            }
        }
    }
    if (dir_dirty_) {
        sync_dir();
        dir_dirty_ = false;
    }
    return ok;
}

std::optional<MonoTime> Outbox::next_sync_deadline() const {
    if (!open_) return std::nullopt;
    std::optional<MonoTime> d;
    auto consider = [&](MonoTime t) {
        if (!d || t < *d) d = t;
    };
    if (pending_since_) {
        consider(*pending_since_ + opts_.sync);
    } else if (needs_commit()) {
        consider(MonoTime::min());  // sync_if_due starts its interval
    }
    if (cursor_seq_ != cursor_written_) consider(cursor_retry_at_);  // at once, unless it failed
    if (cursor_unsynced_) consider(last_state_sync_ + opts_.cursor_sync);
    return d;
}

std::vector<DropReport> Outbox::sync_if_due(MonoTime now) {
    std::vector<DropReport> drops;
    if (!open_) return drops;
    // The interval starts when a record needing the commit is first seen and
    // ends with the commit, or early when the broker acknowledged it all.
    if (!needs_commit()) {
        pending_since_.reset();
    } else if (!pending_since_) {
        pending_since_ = now;
    }
    if (pending_since_ && now >= *pending_since_ + opts_.sync) {
        // A failed commit stays pending: tried again one interval later.
        pending_since_ = commit_log(drops) ? std::nullopt : std::optional<MonoTime>(now);
    }
    if (cursor_seq_ != cursor_written_ && now >= cursor_retry_at_) {
        // Written at once, one small pwrite per loop turn that moved it, and
        // without fsync: a process crash then resends only what was not
        // acknowledged; the kernel keeps the page for the next fsync. A
        // failed write is tried again one interval later.
        if (write_state(false, false)) {
            cursor_retry_at_ = MonoTime::min();
        } else {
            io_failure("cannot write the cursor to " + dir_ + "/state", errno);
            cursor_retry_at_ = now + opts_.sync;
        }
    }
    if (cursor_unsynced_ && now >= last_state_sync_ + opts_.cursor_sync) {
        if (sync_fd(state_fd_)) {
            durable_slot_ = 1 - durable_slot_;
            cursor_unsynced_ = false;
        } else {
            io_failure("cannot fsync " + dir_ + "/state", errno);
        }
        last_state_sync_ = now;
    }
    return drops;
}

std::vector<DropReport> Outbox::sync_now() {
    std::vector<DropReport> drops;
    if (!open_) return drops;
    if (commit_log(drops, true)) pending_since_.reset();
    if (cursor_seq_ != cursor_written_ || cursor_unsynced_) {
        if (!write_state(true, false))
            io_failure("cannot write the cursor to " + dir_ + "/state", errno);
    }
    return drops;
}

}  // namespace tg
