#include "seq_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/log.h"

namespace tg {
namespace {

std::runtime_error sys_error(const std::string& what, const std::string& path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

constexpr std::size_t kLastWidth = 21;  // 20 digits + '\n'

bool parse_u64(const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.size() > 20) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

}  // namespace

void make_dirs(const std::string& dir) {
    if (dir.empty()) return;
    std::string partial;
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        partial = dir.substr(0, pos);
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0750) != 0 && errno != EEXIST) {
            throw sys_error("cannot create folder", partial);
        }
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw std::runtime_error("not a folder: " + dir);
    }
}

void write_file_atomic(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) throw sys_error("cannot create", tmp);
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const auto err = sys_error("cannot write", tmp);
            ::close(fd);
            throw err;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const auto err = sys_error("cannot fsync", tmp);
        ::close(fd);
        throw err;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw sys_error("cannot rename to", path);
    const auto slash = path.rfind('/');
    fsync_dir(slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash));
}

SeqStore::SeqStore(std::string dir, std::string boot_id, std::uint64_t reserve_block)
    : dir_(std::move(dir)),
      boot_id_(std::move(boot_id)),
      block_(reserve_block ? reserve_block : 1) {}

SeqStore::~SeqStore() {
    if (last_fd_ >= 0) ::close(last_fd_);
}

std::string SeqStore::read_boot_id() {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    return id;
}

void SeqStore::open() {
    make_dirs(dir_);
    const std::string state_path = dir_ + "/seq";
    std::ifstream in(state_path);
    std::string stored_boot;
    std::uint64_t reserved = 0, clean_last = 0;
    bool clean = false, have_state = false;
    if (in) {
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string key, val;
            ls >> key >> val;
            if (key == "boot_id")
                stored_boot = val;
            else if (key == "reserved")
                have_state = parse_u64(val, reserved);
            else if (key == "clean")
                clean = parse_u64(val, clean_last);
        }
    }

    last_fd_ = ::open((dir_ + "/seq.last").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (last_fd_ < 0) throw sys_error("cannot open", dir_ + "/seq.last");
    char buf[kLastWidth] = {};
    const ssize_t n = ::pread(last_fd_, buf, kLastWidth, 0);
    std::uint64_t crash_last = 0;
    const bool have_last = n == static_cast<ssize_t>(kLastWidth) && buf[kLastWidth - 1] == '\n' &&
                           parse_u64(std::string(buf, kLastWidth - 1), crash_last);

    if (!have_state) {
        resume_ = Resume::Fresh;
        last_ = 0;
    } else if (clean) {
        resume_ = Resume::Clean;
        last_ = clean_last;
    } else if (stored_boot == boot_id_ && !boot_id_.empty() && have_last &&
               crash_last <= reserved) {
        resume_ = Resume::Crash;
        last_ = crash_last;
    } else {
        resume_ = Resume::Reboot;
        last_ = reserved;
    }
    reserved_ = last_ + block_;
    write_state(false);
    write_last();
}

std::uint64_t SeqStore::next() {
    if (last_fd_ < 0) throw std::logic_error("SeqStore used before open()");
    ++last_;
    if (last_ > reserved_) {
        reserved_ = last_ + block_;
        write_state(false);
    }
    write_last();
    return last_;
}

void SeqStore::close() {
    if (last_fd_ < 0) return;
    write_last();
    write_state(true);
    ::close(last_fd_);
    last_fd_ = -1;
}

void SeqStore::write_state(bool clean) {
    std::string s = "boot_id " + (boot_id_.empty() ? std::string("-") : boot_id_) + "\n" +
                    "reserved " + std::to_string(reserved_) + "\n";
    if (clean) s += "clean " + std::to_string(last_) + "\n";
    write_file_atomic(dir_ + "/seq", s);
}

void SeqStore::write_last() {
    char buf[kLastWidth + 1];
    std::snprintf(buf, sizeof buf, "%020llu\n", static_cast<unsigned long long>(last_));
    if (::pwrite(last_fd_, buf, kLastWidth, 0) != static_cast<ssize_t>(kLastWidth)) {
        log_error("seq", "cannot write " + dir_ + "/seq.last: " + std::strerror(errno));
    }
}

}  // namespace tg
