// See file_read.h. The type is checked twice: once by stat() before open(), so
// that a device is never even opened (opening a serial port or a tape drive
// has effects of its own), and again by fstat() on the opened descriptor,
// which is what is actually read.
#include "core/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace tg {
namespace {

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

// Empty for a regular file; otherwise why it cannot be read as one.
std::string not_regular(const struct stat& st) {
    const mode_t m = st.st_mode;
    if (S_ISREG(m)) return {};
    if (S_ISDIR(m)) return errno_text(EISDIR);
    std::string what = "an unknown kind of file";
    if (S_ISFIFO(m))
        what = "a FIFO (named pipe)";
    else if (S_ISCHR(m))
        what = "a character device";
    else if (S_ISBLK(m))
        what = "a block device";
    else if (S_ISSOCK(m))
        what = "a socket";
    return "not a regular file but " + what;
}

std::string too_large(std::size_t max_bytes) {
    return "too large: more than " + describe_byte_limit(max_bytes);
}

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

}  // namespace

std::string describe_byte_limit(std::size_t bytes) {
    constexpr std::size_t kKiB = 1024, kMiB = kKiB * 1024;
    if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
    if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
    return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

bool read_regular_file(const std::string& path, std::size_t max_bytes, std::string& out,
                       std::string& why) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        why = errno_text(errno);
        return false;
    }
    if (why = not_regular(st); !why.empty()) return false;
    if (static_cast<unsigned long long>(st.st_size) > max_bytes) {
        why = too_large(max_bytes);
        return false;
    }

    // O_NONBLOCK: should the path have become a FIFO since stat(), open()
    // returns at once instead of waiting for a writer.
    const Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        why = errno_text(errno);
        return false;
    }
    if (::fstat(fd.get(), &st) != 0) {
        why = errno_text(errno);
        return false;
    }
    if (why = not_regular(st); !why.empty()) return false;
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
        why = errno_text(errno);
        return false;
    }

    // The size from fstat is a hint only: a file may grow while it is read,
    // and some (in /proc) report 0. The bound is enforced on what is read.
    out.clear();
    const std::size_t hint = static_cast<std::size_t>(st.st_size);
    out.reserve(hint < max_bytes ? hint : max_bytes);
    constexpr std::size_t kChunk = 64 * 1024;
    for (;;) {
        const std::size_t have = out.size();
        const std::size_t want = kChunk < max_bytes + 1 - have ? kChunk : max_bytes + 1 - have;
        out.resize(have + want);
        const ssize_t n = ::read(fd.get(), out.data() + have, want);
        if (n < 0) {
            out.resize(have);
            if (errno == EINTR) continue;
            why = errno_text(errno);
            return false;
        }
        out.resize(have + static_cast<std::size_t>(n));
        if (n == 0) break;
        if (out.size() > max_bytes) {
            out.clear();
            why = too_large(max_bytes);
            return false;
        }
    }
    return true;
}

}  // namespace tg
