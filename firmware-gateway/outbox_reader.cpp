#include "outbox_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace tg {
namespace fs = std::filesystem;
using outbox::bytes_of;
using outbox::list_segments;
using outbox::open_regular;
using outbox::parse_segment_name;
using outbox::read_prefix;
using outbox::Record;
using outbox::RecordSpan;
using outbox::SegmentFile;

namespace outbox {
namespace {

// The most a segment written by the outbox can hold: the roll size, one
// record of the largest size started just below it and one more written
// after a seq jump (see append). A file named like a segment but larger is
// not all the outbox's: only this much of it is read.
constexpr std::uint64_t kMaxSegmentRead =
    (4ull << 20) + 2 * (outbox::kHeaderBytes + outbox::kMaxBodyBytes);

std::runtime_error sys_error(const std::string& what, const std::string& path, int err) {
    return std::runtime_error("outbox: " + what + " " + path + ": " + std::strerror(err));
}

// What a folder entry is when it is not a regular file, for the log.
std::string kind_of(const std::string& path, mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISLNK(mode)) {
        char target[512];
        const ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
        if (n < 0) return "a symbolic link";
        return "a symbolic link to " + std::string(target, static_cast<std::size_t>(n));
    }
    return "not a regular file";
}

}  // namespace

std::uint64_t max_segment_read(std::uint64_t segment_bytes) {
    return std::max(kMaxSegmentRead,
                    segment_bytes + 2 * (outbox::kHeaderBytes + outbox::kMaxBodyBytes));
}

std::string segment_name(std::uint64_t base) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(base));
    return buf;
}

std::optional<std::uint64_t> parse_segment_name(const std::string& name) {
    if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) return std::nullopt;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 20; ++i) {
        const char c = name[i];
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
        v = v * 10 + digit;
    }
    return v;
}

std::vector<SegmentFile> list_segments(const std::string& dir, bool clean_tmp) {
    std::vector<SegmentFile> out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw std::runtime_error("outbox: cannot read folder " + dir + ": " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw std::runtime_error("outbox: cannot read folder " + dir + ": " + ec.message());
        const std::string name = it->path().filename().string();
        if (clean_tmp && name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
            std::error_code rm;
            fs::remove(it->path(), rm);
            continue;
        }
        if (auto base = parse_segment_name(name)) out.push_back({*base, it->path().string()});
    }
    std::sort(out.begin(), out.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.base < b.base; });
    return out;
}

bool read_prefix(int fd, std::uint64_t limit, std::string& out, std::uint64_t& size) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    size = static_cast<std::uint64_t>(st.st_size);
    constexpr std::size_t kBlock = 64u << 10;
    out.clear();
    while (out.size() < limit) {
        const std::size_t at = out.size();
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(kBlock, limit - at));
        out.resize(at + want);
        const ssize_t n = ::pread(fd, out.data() + at, want, static_cast<off_t>(at));
        if (n < 0) {
            if (errno == EINTR) {
                out.resize(at);
                continue;
            }
            return false;
        }
        out.resize(at + static_cast<std::size_t>(n));
        if (n == 0) break;
    }
    size = std::max<std::uint64_t>(size, out.size());
    return true;
}

int open_regular(const std::string& path, int flags, std::string& not_file) {
    not_file.clear();
    const int fd =
        ::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0640);
    struct stat st {};
    if (fd >= 0) {
        if (::fstat(fd, &st) != 0) {
            const int err = errno;
            ::close(fd);
            errno = err;
            return -1;
        }
        if (S_ISREG(st.st_mode)) return fd;
        ::close(fd);
        not_file = kind_of(path, st.st_mode);
        errno = EINVAL;
        return -1;
    }
    const int err = errno;
    if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        not_file = kind_of(path, st.st_mode);
    errno = err;
    return -1;
}

}  // namespace outbox

bool is_log_folder(const std::string& path) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return false;
    if (fs::is_directory(path + "/journal", ec) || fs::is_directory(path + "/outbox", ec))
        return true;
    for (fs::directory_iterator it(path, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        if (parse_segment_name(it->path().filename().string())) return true;
    }
    return false;
}

LogReadStats read_log(const std::string& folder, const std::function<void(const Record&)>& fn) {
    std::vector<SegmentFile> files = list_segments(folder, false);
    for (const char* sub : {"/journal", "/outbox"}) {
        std::error_code ec;
        if (!fs::is_directory(folder + sub, ec)) continue;
        for (SegmentFile& f : list_segments(folder + sub, false))
            files.push_back(std::move(f));
    }
    std::stable_sort(files.begin(), files.end(),
                     [](const SegmentFile& a, const SegmentFile& b) { return a.base < b.base; });

    LogReadStats st;
    std::uint64_t last = 0;
    Record rec;
    for (const SegmentFile& f : files) {
        std::string not_file;
        const int fd = open_regular(f.path, O_RDONLY, not_file);
        if (fd < 0) {
            if (!not_file.empty()) {
                // Not a segment the outbox wrote (never followed nor read).
                ++st.corrupt_records;
                continue;
            }
            if (errno == ENOENT) continue;  // delivered and removed meanwhile
            throw outbox::sys_error("cannot open", f.path, errno);
        }
        std::string data;
        std::uint64_t file_size = 0;
        const bool ok = read_prefix(fd, outbox::max_segment_read(0), data, file_size);
        const int err = errno;
        ::close(fd);
        if (!ok) throw outbox::sys_error("cannot read", f.path, err);
        ++st.segments;
        const outbox::ScanResult res = outbox::scan_records(bytes_of(data), data.size(), last);
        st.corrupt_records += res.damaged_records();
        if (file_size > data.size()) ++st.corrupt_records;  // the rest, not read
        for (const RecordSpan& r : res.records) {
            outbox::decode_record(bytes_of(data) + r.offset, r.size, &rec);
            fn(rec);
            ++st.records;
            last = r.seq;
        }
    }
    return st;
}

}  // namespace tg
