#include "outbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include "config.h"
#include "durable_files.h"
#include "outbox_reader.h"

namespace tg {
namespace fs = std::filesystem;
using outbox::bytes_of;
using outbox::DamagedRange;
using outbox::list_segments;
using outbox::max_segment_read;
using outbox::open_regular;
using outbox::read_prefix;
using outbox::Record;
using outbox::RecordSpan;
using outbox::segment_name;
using outbox::SegmentFile;

namespace {

constexpr const char* kComponent = "outbox";

// Damaged bytes kept for inspection: bounded so a disk of garbage cannot fill
// the disk a second time.
constexpr std::size_t kMaxCorruptCopy = 1u << 20;
constexpr std::size_t kMaxCorruptFiles = 32;

std::runtime_error sys_error(const std::string& what, const std::string& path, int err) {
    return std::runtime_error("outbox: " + what + " " + path + ": " + std::strerror(err));
}

// Renames `path` to the first free `path.damaged-N`; the new path, or ""
// (errno set) when it cannot be moved.
std::string move_aside(const std::string& path) {
    for (int n = 1; n <= 1000; ++n) {
        const std::string to = path + ".damaged-" + std::to_string(n);
        struct stat st {};
        if (::lstat(to.c_str(), &st) == 0) continue;
        if (::rename(path.c_str(), to.c_str()) == 0) return to;
        return {};
    }
    errno = EEXIST;
    return {};
}

std::string seq_range(std::uint64_t first, std::uint64_t last) {
    return first == last ? "seq " + std::to_string(first)
                         : "seqs " + std::to_string(first) + ".." + std::to_string(last);
}

// Identifies this kernel boot: tells a process crash (page cache intact) from
// a reboot (the log's unsynced tail may be gone).
std::string read_boot_id_file() {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id;
}

}  // namespace

const char* drop_reason_word(DropReason r) {
    switch (r) {
        case DropReason::OutboxFull:
            return "outbox_full";
        case DropReason::DiskFull:
            return "disk_full";
        case DropReason::IoError:
            return "io_error";
    }
    return "outbox_full";
}

OutboxOptions outbox_options(const Config& cfg) {
    OutboxOptions o;
    o.data_dir = cfg.gateway.data_dir;
    o.max_bytes = cfg.outbox.max_bytes;
    o.sync = cfg.outbox.sync;
    o.sync_always = cfg.outbox.sync_always;
    o.retain_bytes = cfg.journal.retain_bytes;
    return o;
}

// ---------------------------------------------------------------------------
// construction, open, close

Outbox::Outbox(OutboxOptions opts) : opts_(std::move(opts)), io_(opts_.io) {
    if (!io_.pwrite) {
        io_.pwrite = [](int fd, const void* b, std::size_t n, off_t off) {
            return ::pwrite(fd, b, n, off);
        };
    }
    if (!io_.fdatasync) io_.fdatasync = [](int fd) { return ::fdatasync(fd); };
    if (opts_.reserve_block == 0) opts_.reserve_block = 1;
    if (opts_.min_next_seq == 0) opts_.min_next_seq = 1;
    dir_ = opts_.data_dir + "/outbox";
    journal_dir_ = opts_.data_dir + "/journal";
}

Outbox::~Outbox() {
    for (Segment& s : segs_)
        close_segment(s);
    if (state_fd_ >= 0) ::close(state_fd_);
}

void Outbox::open() {
    if (open_) throw std::logic_error("outbox: open() called twice");
    if (opts_.data_dir.empty()) throw std::invalid_argument("outbox: data_dir is empty");
    boot_id_ = opts_.boot_id ? *opts_.boot_id : read_boot_id_file();

    const std::optional<outbox::State> prev = open_state_file();
    // The previous run ended in this kernel boot: the page cache kept every
    // state write, so the cursor and the newest segment's name are exact.
    const bool same_boot = prev && !prev->clean && !boot_id_.empty() && prev->boot_id == boot_id_;
    std::vector<std::vector<RecordSpan>> spans;
    const LogScan scan = recover_segments(prev, same_boot, spans);
    const bool tail_doubt = report_missing_tail(prev, same_boot, scan);
    next_seq_ = std::max(resume_seq(prev, same_boot, scan.next, tail_doubt), opts_.min_next_seq);
    // After a process crash the page cache may still hold what it never
    // synced: the group commit owes it the same as new records.
    if (resume_ == Resume::Crash) {
        for (Segment& s : segs_)
            s.dirty = true;
    }
    if (prev) state_ = *prev;
    cursor_seq_ = prev ? std::min(prev->cursor, next_seq_ - 1) : 0;

    if (segs_.empty()) {
        if (!create_segment(next_seq_))
            throw sys_error("cannot create", dir_ + "/" + segment_name(next_seq_), errno);
        spans.emplace_back();
    }
    place_cursor(spans);
    load_journal();

    // Durable before anything is appended: this boot, not clean, and room
    // for reserve_block seqs.
    state_.reserved = next_seq_ - 1 + opts_.reserve_block;
    if (!write_state(true, false)) throw sys_error("cannot write", dir_ + "/state", errno);
    last_state_sync_ = MonoTime::min();

    open_ = true;
    gc();
    if (dir_dirty_) sync_dir();
    dir_dirty_ = false;

    const Stats st = stats();
    if (st.depth > 0 || resume_ != Resume::Fresh) {
        log_info(kComponent, std::to_string(st.depth) + " undelivered event(s) (" +
                                 std::to_string(st.bytes) + " bytes) in " +
                                 std::to_string(st.segments) + " segment(s); next seq " +
                                 std::to_string(next_seq_));
    }
}

std::optional<outbox::State> Outbox::open_state_file() {
    // The outbox folder itself replaced by something else (a file, a link
    // to one): set aside like a damaged segment; the outbox starts anew,
    // as when the folder was deleted. A link to a folder is a folder.
    struct stat own {
    }, target{};
    if (::lstat(dir_.c_str(), &own) == 0 &&
        !(::stat(dir_.c_str(), &target) == 0 && S_ISDIR(target.st_mode))) {
        if (!set_aside(dir_, "not a folder", "the outbox starts with nothing in it"))
            throw sys_error("cannot move aside", dir_, errno);
    }
    make_dirs(dir_);
    const std::string state_path = dir_ + "/state";
    std::string not_file;
    state_fd_ = open_regular(state_path, O_RDWR | O_CREAT, not_file);
    if (state_fd_ < 0 && !not_file.empty()) {
        if (!set_aside(state_path, not_file, "the state is rebuilt from the segments"))
            throw sys_error("cannot move aside", state_path, errno);
        state_fd_ = open_regular(state_path, O_RDWR | O_CREAT, not_file);
    }
    if (state_fd_ < 0) throw sys_error("cannot open", state_path, errno);
    if (::flock(state_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK)
            throw std::runtime_error("outbox: " + dir_ + " is in use by another tidegate");
        throw sys_error("cannot lock", state_path, err);
    }
    const std::optional<outbox::State> prev = read_state();
    // Both slots allocated now, so that updating them never needs disk space.
    if (const int err = ::posix_fallocate(state_fd_, 0, 2 * outbox::kStateSlotStride);
        err != 0 && err != EOPNOTSUPP)
        throw sys_error("cannot allocate", state_path, err);
    return prev;
}

Outbox::LogScan Outbox::recover_segments(const std::optional<outbox::State>& prev, bool same_boot,
                                         std::vector<std::vector<RecordSpan>>& spans) {
    // Recover every segment, oldest first; each must continue the seq order.
    // Records the previous run delivered need no read-model index.
    const std::uint64_t delivered_floor = prev ? prev->cursor : 0;
    // Segments follow each other without a hole in seq (append keeps a jump
    // inside one segment), and the first starts at or before the cursor + 1
    // (the cursor reaches the state file before a delivered segment is
    // deleted). `expect`: where the next segment must start at the latest;
    // 0 while unknown (a cursor that may be stale).
    std::uint64_t expect = prev && (prev->clean || same_boot) ? prev->cursor + 1 : 0;
    bool after_damage = false;      // the segment before ended in damage cut out now
    std::uint64_t newest_name = 0;  // the newest segment file found (as named)
    std::uint64_t after = 0;
    std::string not_file;
    const std::vector<SegmentFile> files = list_segments(dir_, true);
    for (std::size_t i = 0; i < files.size(); ++i) {
        Segment s;
        s.base = files[i].base;
        s.path = files[i].path;
        s.fd = open_regular(s.path, O_RDWR, not_file);
        if (s.fd < 0) {
            if (!not_file.empty()) {
                // Its seqs are reported by the gap it leaves.
                set_aside(s.path, not_file, "the events it held are lost");
                continue;
            }
            if (errno == ENOENT) continue;  // gone meanwhile: as if deleted
            throw sys_error("cannot open", s.path, errno);
        }
        newest_name = s.base;
        std::vector<RecordSpan> sp;
        bool damaged_end = false;
        try {
            damaged_end = recover_segment(s, after, delivered_floor, sp);
        } catch (...) {
            close_segment(s);
            throw;
        }
        const bool newest = i + 1 == files.size();
        if (s.records == 0 && !newest) {
            // Nothing left in it (empty or all damage): it only costs a file.
            // Its seqs are reported by the gap it leaves, unless damage
            // already counted them.
            close_segment(s);
            ::unlink(s.path.c_str());
            dir_dirty_ = true;
            after_damage = after_damage || damaged_end;
            continue;
        }
        if (expect != 0 && s.base > expect) close_gap(s, expect, delivered_floor, after_damage);
        if (s.records > 0) {
            after = s.last_seq;
            expect = s.last_seq + 1;
        }
        after_damage = damaged_end;
        segs_.push_back(std::move(s));
        spans.push_back(std::move(sp));
    }

    LogScan scan;
    scan.newest_name = newest_name;
    // The next seq from the log: after its last record, or the name of an
    // empty newest segment (created for exactly that seq).
    if (!segs_.empty()) scan.next = std::max(after + 1, segs_.back().base);
    return scan;
}

bool Outbox::report_missing_tail(const std::optional<outbox::State>& prev, bool same_boot,
                                 const LogScan& scan) {
    const std::uint64_t log_end = scan.next == 0 ? 0 : scan.next - 1;
    // The newest segment gone: after a clean close the state knows exactly
    // which seqs it held; after a process crash only that it existed.
    if (prev && prev->clean && prev->tail_exact && log_end < prev->last_seq) {
        const std::uint64_t first = std::max(log_end, prev->cursor) + 1;
        if (first <= prev->last_seq) {
            stats_.lost_records += prev->last_seq - first + 1;
            log_warn(kComponent, seq_range(first, prev->last_seq) +
                                     ", the newest of the log, are missing from " + dir_ +
                                     " (its newest segment deleted or set aside): " +
                                     std::to_string(prev->last_seq - first + 1) + " event(s) lost");
        }
    }
    bool tail_doubt = false;
    if (same_boot && prev->newest_base != 0 && scan.newest_name < prev->newest_base) {
        tail_doubt = true;
        log_warn(kComponent, "the newest segment " + segment_name(prev->newest_base) +
                                 " is missing from " + dir_ +
                                 " (deleted or set aside): the events it held from seq " +
                                 std::to_string(std::max(prev->newest_base, prev->cursor + 1)) +
                                 " on are lost, how many is not known; seq continues past the "
                                 "reservation (" +
                                 std::to_string(prev->reserved) + ")");
    }
    return tail_doubt;
}

std::uint64_t Outbox::resume_seq(const std::optional<outbox::State>& prev, bool same_boot,
                                 std::uint64_t log_next, bool tail_doubt) {
    const std::uint64_t block = opts_.reserve_block;
    std::uint64_t next = 1;
    if (!prev) {
        if (segs_.empty()) {
            resume_ = Resume::Fresh;
        } else {
            resume_ = Resume::Unknown;
            next = log_next + 2 * block;
            log_warn(kComponent, "no readable state in " + dir_ + "/state" +
                                     "; seq continues with a gap at " + std::to_string(next));
        }
    } else if (prev->clean) {
        resume_ = Resume::Clean;
        next = std::max(log_next, prev->last_seq + 1);
    } else if (same_boot) {
        // The process died, the kernel did not: the page cache holds every
        // byte written, so the log's tail is exactly what was appended,
        // unless its newest segment went missing: then it is not known
        // which seqs it held, and none of them may be used again.
        resume_ = Resume::Crash;
        next = log_next != 0 ? log_next : prev->reserved + 1;
        next = std::max(next, prev->cursor + 1);
        if (tail_doubt) next = std::max(next, prev->reserved + 1);
    } else {
        // The machine went down (or the boot is unknown): the unsynced tail
        // may be gone but its seqs may have been published. Skip them all.
        resume_ = Resume::Reboot;
        next = std::max(log_next, prev->reserved + 1);
    }
    return next;
}

void Outbox::close() {
    if (!open_) return;
    std::vector<DropReport> drops;
    if (commit_log(drops, true)) {
        state_.last_seq = next_seq_ - 1;
        // Whether the log ends exactly there (no failed append at its end),
        // so the next open can tell a missing newest segment.
        if (const Segment* a = active()) {
            const std::uint64_t named = a->base > 0 ? a->base - 1 : 0;
            const std::uint64_t end = a->records > 0 ? std::max(a->last_seq, named) : named;
            state_.tail_exact = end == state_.last_seq;
        } else {
            state_.tail_exact = false;
        }
        if (!write_state(true, true))
            io_failure("cannot record the clean shutdown in " + dir_ + "/state", errno);
    } else {
        log_error(kComponent, "the log could not be synced; the next start treats this as a crash");
        write_state(true, false);
    }
    for (Segment& s : segs_)
        close_segment(s);
    if (state_fd_ >= 0) ::close(state_fd_);
    state_fd_ = -1;
    open_ = false;
}

std::optional<outbox::State> Outbox::read_state() {
    int slot = -1;
    std::optional<outbox::State> best = outbox::read_state_file(state_fd_, slot);
    // The next write goes to the other slot, so the one read stays intact
    // until its successor is durable.
    durable_slot_ = slot < 0 ? 1 : slot;
    return best;
}

bool Outbox::write_state(bool durable, bool clean) {
    state_.gen += 1;
    state_.cursor = cursor_seq_;
    state_.clean = clean;
    state_.boot_id = boot_id_;
    state_.newest_base = segs_.empty() ? 0 : segs_.back().base;
    const auto b = outbox::encode_state(state_);

    const int slot = 1 - durable_slot_;
    if (!write_all(state_fd_, reinterpret_cast<const char*>(b.data()), b.size(),
                   static_cast<std::uint64_t>(slot * outbox::kStateSlotStride)))
        return false;
    cursor_written_ = cursor_seq_;
    if (!durable) {
        cursor_unsynced_ = true;
        return true;
    }
    if (!sync_fd(state_fd_)) return false;
    durable_slot_ = slot;
    cursor_unsynced_ = false;
    return true;
}

bool Outbox::recover_segment(Segment& s, std::uint64_t after, std::uint64_t delivered,
                             std::vector<RecordSpan>& spans) {
    std::string data;
    std::uint64_t file_size = 0;
    const std::uint64_t limit = max_segment_read(opts_.segment_bytes);
    if (!read_prefix(s.fd, limit, data, file_size)) throw sys_error("cannot read", s.path, errno);
    outbox::ScanResult res = outbox::scan_records(bytes_of(data), data.size(), after);
    const bool oversized = file_size > data.size();
    if (oversized) {
        // More than the outbox ever writes to one segment: the rest is not
        // read, it is cut like a damaged tail.
        stats_.corrupt_records += 1;
        log_warn(kComponent, segment_name(s.base) + ": " + std::to_string(file_size) +
                                 " bytes, more than a segment can hold; the " +
                                 std::to_string(file_size - data.size()) +
                                 " byte(s) after offset " + std::to_string(data.size()) +
                                 " cut out unread");
    }
    const bool damaged_end =
        oversized || (!res.damaged.empty() &&
                      res.damaged.back().offset + res.damaged.back().size == data.size());

    if (!res.damaged.empty() || oversized) {
        for (const DamagedRange& d : res.damaged) {
            stats_.corrupt_records += d.records;
            save_damaged(s, data, d);
        }
        const bool tail_only =
            res.damaged.empty() ||
            (res.damaged.size() == 1 && res.damaged.back().offset == res.good_end &&
             res.damaged.back().offset + res.damaged.back().size == data.size());
        if (tail_only) {
            if (::ftruncate(s.fd, static_cast<off_t>(res.good_end)) != 0)
                throw sys_error("cannot truncate", s.path, errno);
            if (io_.fdatasync(s.fd) != 0) throw sys_error("cannot fsync", s.path, errno);
            ++stats_.fsyncs;
            data.resize(res.good_end);
        } else {
            // Damage inside: rewrite the segment with the intact records only,
            // so the damage is neither counted nor copied again next time.
            std::string good;
            good.reserve(data.size());
            for (RecordSpan& r : res.records) {
                const std::size_t at = good.size();
                good.append(data, r.offset, r.size);
                r.offset = at;
            }
            write_file_atomic(s.path, good);
            close_segment(s);
            s.fd = ::open(s.path.c_str(), O_RDWR | O_CLOEXEC);
            if (s.fd < 0) throw sys_error("cannot open", s.path, errno);
            data = std::move(good);
        }
    }
    s.bytes = data.size();
    s.records = res.records.size();
    s.first_seq = res.records.empty() ? 0 : res.records.front().seq;
    s.last_seq = res.records.empty() ? 0 : res.records.back().seq;
    Record rec;
    for (const RecordSpan& r : res.records) {
        if (r.seq <= delivered) continue;
        outbox::decode_record(bytes_of(data) + r.offset, r.size, &rec);
        note_latest(rec);
    }
    spans = std::move(res.records);
    return damaged_end;
}

bool Outbox::set_aside(const std::string& path, const std::string& kind,
                       const std::string& consequence) {
    // One damaged stretch of the outbox folder, whatever it held.
    ++stats_.corrupt_records;
    const std::string to = move_aside(path);
    if (to.empty()) {
        const int err = errno;
        log_warn(kComponent, path + " is " + kind +
                                 ", not a file the outbox wrote, and cannot be moved aside (" +
                                 std::strerror(err) + "): left out; " + consequence);
        errno = err;
        return false;
    }
    dir_dirty_ = true;
    log_warn(kComponent, path + " is " + kind + ", not a file the outbox wrote: moved aside to " +
                             to + "; " + consequence);
    return true;
}

void Outbox::close_gap(Segment& s, std::uint64_t expect, std::uint64_t delivered,
                       bool damaged_before) {
    // Seqs up to the cursor were delivered: not lost, whatever became of them.
    const std::uint64_t first = std::max(expect, delivered + 1);
    const std::uint64_t last = s.base - 1;
    if (first <= last) {
        const std::uint64_t n = last - first + 1;
        if (damaged_before) {
            log_warn(kComponent, seq_range(first, last) + " before " + segment_name(s.base) +
                                     " went with the damage cut out before it");
        } else {
            stats_.lost_records += n;
            log_warn(kComponent, seq_range(first, last) + " missing from " + dir_ + " before " +
                                     segment_name(s.base) + " (a segment deleted or set aside): " +
                                     std::to_string(n) + " event(s) lost");
        }
    }
    // Renamed for the seq it now follows, so that the next open finds no gap
    // to report again. Not an empty segment: its name gives the next seq.
    if (s.records == 0) return;
    const std::string to = dir_ + "/" + segment_name(expect);
    struct stat st {};
    if (::lstat(to.c_str(), &st) == 0) return;
    if (::rename(s.path.c_str(), to.c_str()) != 0) {
        io_failure("cannot rename " + s.path + " to " + to, errno);
        return;
    }
    s.base = expect;
    s.path = to;
    dir_dirty_ = true;
}

void Outbox::save_damaged(const Segment& s, const std::string& data, const DamagedRange& d) {
    const std::string name = segment_name(s.base);
    log_warn(kComponent, name + ": " + std::to_string(d.size) + " damaged byte(s) at offset " +
                             std::to_string(d.offset) + " (about " + std::to_string(d.records) +
                             " record(s)) cut out");
    try {
        const std::string folder = dir_ + "/corrupt";
        make_dirs(folder);
        char prefix[32];
        std::snprintf(prefix, sizeof prefix, "%012lld-",
                      static_cast<long long>(std::time(nullptr)));
        const std::string path =
            folder + "/" + prefix + name.substr(0, 20) + "-" + std::to_string(d.offset) + ".bad";
        write_file_atomic(path, data.substr(d.offset, std::min(d.size, kMaxCorruptCopy)));
        std::vector<std::string> kept;
        for (const auto& e : fs::directory_iterator(folder)) {
            if (e.path().extension() == ".bad") kept.push_back(e.path().string());
        }
        std::sort(kept.begin(), kept.end());
        for (std::size_t i = 0; i + kMaxCorruptFiles < kept.size(); ++i)
            ::unlink(kept[i].c_str());
    } catch (const std::exception& e) {
        log_warn(kComponent, std::string("could not keep the damaged bytes: ") + e.what());
    }
}

void Outbox::place_cursor(const std::vector<std::vector<RecordSpan>>& spans) {
    for (std::size_t i = 0; i < segs_.size(); ++i) {
        const auto& sp = spans[i];
        for (std::size_t k = 0; k < sp.size(); ++k) {
            if (sp[k].seq > cursor_seq_) {
                cursor_pos_ = {segs_[i].base, sp[k].offset};
                cursor_delivered_ = k;
                read_pos_ = cursor_pos_;
                read_last_seq_ = cursor_seq_;
                return;
            }
        }
    }
    // Everything on disk is delivered.
    const Segment& last = segs_.back();
    cursor_pos_ = {last.base, last.bytes};
    cursor_delivered_ = last.records;
    read_pos_ = cursor_pos_;
    read_last_seq_ = cursor_seq_;
}

void Outbox::load_journal() {
    std::error_code ec;
    if (opts_.retain_bytes > 0) make_dirs(journal_dir_);
    if (!fs::is_directory(journal_dir_, ec)) return;
    for (const SegmentFile& f : list_segments(journal_dir_, true)) {
        struct stat st {};
        if (::stat(f.path.c_str(), &st) != 0) continue;
        journal_.push_back({f.base, f.path, static_cast<std::uint64_t>(st.st_size)});
        journal_bytes_ += static_cast<std::uint64_t>(st.st_size);
    }
}

// ---------------------------------------------------------------------------
// segments

Outbox::Segment* Outbox::find_segment(std::uint64_t base) {
    auto it = std::lower_bound(segs_.begin(), segs_.end(), base,
                               [](const Segment& s, std::uint64_t b) { return s.base < b; });
    return it != segs_.end() && it->base == base ? &*it : nullptr;
}

std::uint64_t Outbox::segment_limit() const {
    return std::max<std::uint64_t>(1, std::min(opts_.segment_bytes, opts_.max_bytes / 4));
}

bool Outbox::create_segment(std::uint64_t base) {
    // What the group commit protects in the full segment is made durable now,
    // with the roll.
    if (Segment* a = active(); a && needs_commit(*a)) {
        if (sync_fd(a->fd))
            a->dirty = false;
        else
            io_failure("cannot fsync " + a->path, errno);
    }

    const std::string path = dir_ + "/" + segment_name(base);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 && errno == EEXIST && !find_segment(base)) {
        // Left empty by an earlier attempt: reuse it; never clobber records.
        fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        struct stat st {};
        if (fd >= 0 && (::fstat(fd, &st) != 0 || st.st_size != 0)) {
            ::close(fd);
            errno = EEXIST;
            return false;
        }
    }
    if (fd < 0) return false;
    Segment s;
    s.base = base;
    s.path = path;
    s.fd = fd;
    segs_.push_back(std::move(s));
    if (segs_.size() == 1) {
        cursor_pos_ = read_pos_ = {base, 0};
        cursor_delivered_ = 0;
    }
    dir_dirty_ = true;
    // The state names the newest segment (in the page cache, no fsync), so
    // that after a process crash a missing newest segment is noticed.
    if (open_ && !write_state(false, false)) io_failure("cannot write " + dir_ + "/state", errno);
    return true;
}

void Outbox::close_segment(Segment& s) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    if (rbuf_seg_ == s.base) forget_read_ahead();
}

void Outbox::retire_front() {
    Segment s = std::move(segs_.front());
    segs_.pop_front();
    close_segment(s);
    if (opts_.retain_bytes > 0) {
        const std::string dest = journal_dir_ + "/" + segment_name(s.base);
        if (::rename(s.path.c_str(), dest.c_str()) == 0) {
            journal_.push_back({s.base, dest, s.bytes});
            journal_bytes_ += s.bytes;
            return;
        }
        io_failure("cannot move " + s.path + " to the journal", errno);
    }
    ::unlink(s.path.c_str());
}

void Outbox::write_cursor_now() {
    if (!open_ || cursor_seq_ == cursor_written_) return;
    if (!write_state(false, false))
        io_failure("cannot write the cursor to " + dir_ + "/state", errno);
}

void Outbox::trim_journal(std::uint64_t limit) {
    while (journal_bytes_ > limit && !journal_.empty()) {
        ::unlink(journal_.front().path.c_str());
        journal_bytes_ -= journal_.front().bytes;
        journal_.pop_front();
    }
}

void Outbox::gc() {
    if (segs_.empty()) return;
    // A cursor at the end of a full segment belongs at the start of the next.
    for (;;) {
        auto it = std::lower_bound(segs_.begin(), segs_.end(), cursor_pos_.seg,
                                   [](const Segment& s, std::uint64_t b) { return s.base < b; });
        if (it == segs_.end() || it->base != cursor_pos_.seg) {
            // Its segment is gone (dropped): the first one left is next.
            if (it == segs_.end()) {
                cursor_pos_ = {segs_.back().base, segs_.back().bytes};
                cursor_delivered_ = segs_.back().records;
            } else {
                cursor_pos_ = {it->base, 0};
                cursor_delivered_ = 0;
            }
            continue;
        }
        const auto next = std::next(it);
        if (next == segs_.end() || cursor_pos_.offset < it->bytes) break;
        cursor_pos_ = {next->base, 0};
        cursor_delivered_ = 0;
    }
    // The cursor reaches the state file before a delivered segment goes, so
    // that a segment missing before the cursor is known to be a loss.
    if (segs_.front().base < cursor_pos_.seg) write_cursor_now();
    while (segs_.front().base < cursor_pos_.seg)
        retire_front();
    trim_journal(opts_.retain_bytes);
    if (read_pos_.seg < cursor_pos_.seg ||
        (read_pos_.seg == cursor_pos_.seg && read_pos_.offset < cursor_pos_.offset))
        read_pos_ = cursor_pos_;
}

// ---------------------------------------------------------------------------
// appending and bounds

AppendResult Outbox::append(const Record& r) {
    if (!open_) throw std::logic_error("outbox: append() before open()");
    if (r.seq != next_seq_) {
        throw std::logic_error("outbox: append of seq " + std::to_string(r.seq) + ", expected " +
                               std::to_string(next_seq_));
    }
    AppendResult res;
    res.seq = r.seq;
    const std::uint64_t size = outbox::encoded_size(r);

    // The seq is spent whatever happens below, so a dead letter naming it
    // never names a different event.
    struct Advance {
        std::uint64_t& next;
        std::uint64_t to;
        ~Advance() { next = to; }
    };

    if (size - outbox::kHeaderBytes > outbox::kMaxBodyBytes || size > opts_.max_bytes) {
        next_seq_ = r.seq + 1;
        stats_.dropped += 1;
        note_drop(r.seq, r.seq, 1, DropReason::OutboxFull, res.drops);
        return res;
    }
    const std::string bytes = outbox::encode_record(r);  // throws only on misuse
    Advance advance{next_seq_, r.seq + 1};

    auto give_up = [&](DropReason why) {
        stats_.dropped += 1;
        note_drop(r.seq, r.seq, 1, why, res.drops);
        return res;
    };

    if (r.seq > state_.reserved) {
        const std::uint64_t old = state_.reserved;
        state_.reserved = r.seq - 1 + opts_.reserve_block;
        if (!write_state(true, false)) {
            const int err = errno;
            state_.reserved = old;
            io_failure("cannot reserve seqs in " + dir_ + "/state", err);
            return give_up(is_space_error(err) ? DropReason::DiskFull : DropReason::IoError);
        }
    }

    make_room(size, res.drops);

    for (;;) {
        Segment* a = active();
        // The first record after a seq jump (a reboot, a failed append) goes
        // in the segment before the jump even when that overfills it: a hole
        // in seq between two segments then always means lost events.
        const bool jump = a && a->records > 0 && a->last_seq + 1 != r.seq;
        if (!a || (a->bytes > 0 && a->bytes + size > segment_limit() && !jump)) {
            if (!create_segment(r.seq)) {
                const int err = errno;
                if (is_space_error(err) && free_disk_space(res.drops)) continue;
                io_failure("cannot create a segment in " + dir_, err);
                return give_up(is_space_error(err) ? DropReason::DiskFull : DropReason::IoError);
            }
            a = active();
        }
        if (write_all(a->fd, bytes.data(), bytes.size(), a->bytes)) break;
        const int err = errno;
        // Take back a partial write, so the file ends at a record boundary.
        if (::ftruncate(a->fd, static_cast<off_t>(a->bytes)) != 0)
            io_failure("cannot truncate " + a->path, errno);
        if (is_space_error(err) && free_disk_space(res.drops)) continue;
        io_failure("cannot write " + a->path, err);
        return give_up(is_space_error(err) ? DropReason::DiskFull : DropReason::IoError);
    }

    Segment& a = *active();
    a.bytes += size;
    a.records += 1;
    if (a.first_seq == 0) a.first_seq = r.seq;
    a.last_seq = r.seq;
    a.dirty = true;
    note_latest(r);
    stats_.appended += 1;
    res.stored = true;
    if (opts_.sync_always) commit_log(res.drops);
    return res;
}

std::vector<DropReport> Outbox::enforce() {
    std::vector<DropReport> drops;
    if (!open_) return drops;
    gc();
    make_room(0, drops);
    trim_journal(opts_.retain_bytes);
    return drops;
}

void Outbox::make_room(std::uint64_t need, std::vector<DropReport>& drops) {
    while (undelivered_bytes() + need > opts_.max_bytes) {
        if (!drop_oldest_undelivered(DropReason::OutboxFull, drops)) break;
    }
}

bool Outbox::drop_oldest_undelivered(DropReason why, std::vector<DropReport>& drops) {
    gc();
    if (segs_.empty()) return false;
    // A front segment whose remaining bytes hold no record (damage found
    // since start-up) is as good as delivered.
    while (segs_.size() > 1 && segs_.front().records <= cursor_delivered_) {
        cursor_pos_ = {segs_[1].base, 0};
        cursor_delivered_ = 0;
        gc();
    }
    Segment& s = segs_.front();
    const std::uint64_t delivered = cursor_pos_.seg == s.base ? cursor_delivered_ : 0;
    if (s.records <= delivered) return false;  // only the active one, all delivered

    const std::uint64_t count = s.records - delivered;
    const std::uint64_t first = cursor_seq_ + 1;
    const std::uint64_t last = s.last_seq;
    cursor_seq_ = std::max(cursor_seq_, last);
    write_cursor_now();
    close_segment(s);
    ::unlink(s.path.c_str());
    segs_.pop_front();

    cursor_delivered_ = 0;
    if (!segs_.empty()) cursor_pos_ = {segs_.front().base, 0};
    forget_flights_upto(cursor_seq_);
    read_last_seq_ = std::max(read_last_seq_, cursor_seq_);
    if (segs_.empty()) {
        // Keep the log's anchor for next_seq(); if even this fails the
        // next append tries again.
        create_segment(next_seq_);
    }
    gc();
    stats_.dropped += count;
    note_drop(first, last, count, why, drops);
    return true;
}

bool Outbox::free_disk_space(std::vector<DropReport>& drops) {
    if (!journal_.empty()) {
        trim_journal(journal_bytes_ - journal_.front().bytes);
        return true;
    }
    gc();
    if (segs_.size() == 1 && segs_.front().bytes > 0 &&
        segs_.front().records <= cursor_delivered_ && cursor_pos_.seg == segs_.front().base) {
        // The active segment holds only delivered records: start afresh.
        write_cursor_now();
        Segment& s = segs_.front();
        close_segment(s);
        ::unlink(s.path.c_str());
        segs_.pop_front();
        create_segment(next_seq_);
        return true;
    }
    return drop_oldest_undelivered(DropReason::DiskFull, drops);
}

void Outbox::note_drop(std::uint64_t first, std::uint64_t last, std::uint64_t count, DropReason why,
                       std::vector<DropReport>& drops) {
    if (!drops.empty() && drops.back().reason == why && drops.back().last_seq < first) {
        drops.back().last_seq = last;
        drops.back().count += count;
        return;
    }
    drops.push_back({first, last, count, why});
}

bool Outbox::write_all(int fd, const char* data, std::size_t n, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t w = io_.pwrite(fd, data + done, n - done, static_cast<off_t>(offset + done));
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (w == 0) {
            errno = ENOSPC;
            return false;
        }
        done += static_cast<std::size_t>(w);
    }
    return true;
}

void Outbox::io_failure(const std::string& what, int err) {
    if (auto held = io_log_limiter_.allow(what, std::chrono::steady_clock::now())) {
        log_error(kComponent, what + ": " + std::strerror(err) +
                                  (*held ? " (" + std::to_string(*held) + " more)" : ""));
    }
}

// ---------------------------------------------------------------------------
// delivery

const unsigned char* Outbox::read_window(const Segment& s, std::uint64_t offset, std::size_t len) {
    if (rbuf_seg_ == s.base && offset >= rbuf_off_ && offset + len <= rbuf_off_ + rbuf_.size())
        return rbuf_.data() + (offset - rbuf_off_);
    // Whole records up to the end of what is written: a segment only grows,
    // so what was read stays valid.
    constexpr std::size_t kReadAhead = 64u << 10;
    const auto want = static_cast<std::size_t>(
        std::max<std::uint64_t>(len, std::min<std::uint64_t>(kReadAhead, s.bytes - offset)));
    rbuf_.resize(want);
    rbuf_seg_ = s.base;
    rbuf_off_ = offset;
    std::size_t done = 0;
    while (done < want) {
        const ssize_t n =
            ::pread(s.fd, rbuf_.data() + done, want - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    rbuf_.resize(done);
    return done >= len ? rbuf_.data() : nullptr;
}

bool Outbox::read_at(const Pos& p, Record& out, std::uint64_t& size) {
    Segment* s = find_segment(p.seg);
    if (!s || p.offset + outbox::kHeaderBytes > s->bytes) return false;
    const unsigned char* h = read_window(*s, p.offset, outbox::kHeaderBytes);
    if (!h) return false;
    const std::size_t n = outbox::framed_size(h);
    if (n == 0 || p.offset + n > s->bytes) return false;
    const unsigned char* rec = read_window(*s, p.offset, n);
    if (!rec) return false;
    size = outbox::decode_record(rec, n, &out);
    if (size == 0) return false;
    leave_out_superseded(out);
    return true;
}

void Outbox::note_latest(const Record& r) {
    for (const outbox::Destination& d : r.destinations) {
        if (!d.latest_only) continue;
        auto [it, fresh] = latest_.try_emplace(d.topic, r.seq);
        if (!fresh && it->second < r.seq) it->second = r.seq;
    }
}

void Outbox::leave_out_superseded(Record& r) {
    if (latest_.empty()) return;
    const auto gone = std::erase_if(r.destinations, [&](const outbox::Destination& d) {
        if (!d.latest_only) return false;
        auto it = latest_.find(d.topic);
        return it != latest_.end() && it->second > r.seq;
    });
    stats_.superseded += gone;
}

void Outbox::recount(Segment& s) {
    std::string data;
    std::uint64_t file_size = 0;
    if (!read_prefix(s.fd, s.bytes, data, file_size)) return;
    std::uint64_t after = 0;
    for (const Segment& o : segs_) {
        if (o.base >= s.base) break;
        if (o.records > 0) after = o.last_seq;
    }
    const outbox::ScanResult res = outbox::scan_records(bytes_of(data), data.size(), after);
    s.records = res.records.size();
    s.first_seq = res.records.empty() ? 0 : res.records.front().seq;
    s.last_seq = res.records.empty() ? s.last_seq : res.records.back().seq;
    if (cursor_pos_.seg == s.base) {
        cursor_delivered_ = 0;
        for (const RecordSpan& r : res.records) {
            if (r.offset + r.size <= cursor_pos_.offset) ++cursor_delivered_;
        }
    }
}

void Outbox::skip_damage_at_read_pos() {
    Segment* s = find_segment(read_pos_.seg);
    if (!s) return;
    std::string data;
    std::uint64_t lost = 1;
    std::uint64_t to = s->bytes;
    std::uint64_t file_size = 0;
    if (read_prefix(s->fd, s->bytes, data, file_size)) {
        const auto from = static_cast<std::size_t>(read_pos_.offset);
        const std::size_t found =
            outbox::find_next_record(bytes_of(data), data.size(), from + 1, read_last_seq_);
        if (found < data.size()) to = found;
        lost = 0;
        for (std::size_t i = from; i + 4 <= std::min(data.size(), found); ++i) {
            if (std::memcmp(data.data() + i, outbox::kMarker, 4) == 0) ++lost;
        }
        lost = std::max<std::uint64_t>(lost, 1);
    }
    log_warn(kComponent, segment_name(s->base) + ": record at offset " +
                             std::to_string(read_pos_.offset) +
                             " damaged since start-up; skipped to offset " + std::to_string(to));
    stats_.corrupt_records += lost;
    read_pos_.offset = to;
    recount(*s);
}

bool Outbox::next_unsent(Record& out) {
    if (!open_) return false;
    // First the ones a lost connection left unacknowledged, in order.
    while (resend_ < flights_.size()) {
        Flight& f = flights_[resend_];
        if (!f.sent && !f.acked) {
            std::uint64_t size = 0;
            if (read_at(f.pos, out, size) && out.seq == f.seq) {
                f.sent = true;
                ++sent_unacked_;
                ++resend_;
                return true;
            }
            // Damaged since it was first sent: nothing left to resend.
            ++stats_.corrupt_records;
            log_warn(kComponent, "record " + std::to_string(f.seq) +
                                     " became unreadable before it was acknowledged");
            f.lost = true;
            settle(flights_.begin() + static_cast<std::ptrdiff_t>(resend_));
            continue;  // settle() may have moved resend_
        }
        ++resend_;
    }
    // Then records never handed out.
    for (;;) {
        Segment* s = find_segment(read_pos_.seg);
        if (!s) return false;
        if (read_pos_.offset >= s->bytes) {
            auto it =
                std::upper_bound(segs_.begin(), segs_.end(), read_pos_.seg,
                                 [](std::uint64_t b, const Segment& seg) { return b < seg.base; });
            if (it == segs_.end()) return false;
            read_pos_ = {it->base, 0};
            continue;
        }
        std::uint64_t size = 0;
        errno = 0;
        if (!read_at(read_pos_, out, size) || out.seq <= read_last_seq_) {
            if (errno == EIO) {
                io_failure("cannot read " + s->path, errno);
                return false;  // a read error is tried again later, not skipped
            }
            skip_damage_at_read_pos();
            continue;
        }
        flights_.push_back({out.seq, read_pos_, size, true, false, false});
        ++sent_unacked_;
        resend_ = flights_.size();
        read_pos_.offset += size;
        read_last_seq_ = out.seq;
        return true;
    }
}

bool Outbox::ack(std::uint64_t seq) {
    if (!open_ || seq <= cursor_seq_) return false;
    auto it = std::lower_bound(flights_.begin(), flights_.end(), seq,
                               [](const Flight& f, std::uint64_t s) { return f.seq < s; });
    if (it == flights_.end() || it->seq != seq || it->acked) return false;
    settle(it);
    return true;
}

void Outbox::settle(std::deque<Flight>::iterator it) {
    it->acked = true;
    if (it->sent) --sent_unacked_;
    while (!flights_.empty() && flights_.front().acked) {
        pass(flights_.front());
        flights_.pop_front();
        if (resend_ > 0) --resend_;
    }
    gc();
}

void Outbox::pass(const Flight& f) {
    cursor_seq_ = f.seq;
    if (f.pos.seg == cursor_pos_.seg) {
        ++cursor_delivered_;
    } else {
        cursor_delivered_ = 1;
    }
    cursor_pos_ = {f.pos.seg, f.pos.offset + f.size};
    if (!f.lost) ++stats_.acked;
}

void Outbox::forget_flights_upto(std::uint64_t seq) {
    while (!flights_.empty() && flights_.front().seq <= seq) {
        if (flights_.front().sent && !flights_.front().acked) --sent_unacked_;
        flights_.pop_front();
        if (resend_ > 0) --resend_;
    }
}

void Outbox::rewind_unacked() {
    for (Flight& f : flights_) {
        if (f.sent && !f.acked) f.sent = false;
    }
    sent_unacked_ = 0;
    resend_ = 0;
}

// ---------------------------------------------------------------------------
// figures

std::uint64_t Outbox::undelivered_bytes() const {
    std::uint64_t n = 0;
    for (const Segment& s : segs_) {
        if (s.base > cursor_pos_.seg) {
            n += s.bytes;
        } else if (s.base == cursor_pos_.seg) {
            n += s.bytes - std::min(cursor_pos_.offset, s.bytes);
        }
    }
    return n;
}

std::uint64_t Outbox::undelivered_records() const {
    std::uint64_t n = 0;
    for (const Segment& s : segs_) {
        if (s.base > cursor_pos_.seg) {
            n += s.records;
        } else if (s.base == cursor_pos_.seg) {
            n += s.records - std::min(cursor_delivered_, s.records);
        }
    }
    return n;
}

Outbox::Stats Outbox::stats() const {
    Stats s = stats_;
    s.depth = undelivered_records();
    s.bytes = undelivered_bytes();
    s.in_flight = sent_unacked_;
    s.segments = segs_.size();
    s.journal_bytes = journal_bytes_;
    return s;
}

}  // namespace tg
