// sd_notify without libsystemd; see sd_notify.h.
#include "sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace tg::sd {
namespace {

template <typename T>
std::optional<T> env_number(const char* name) {
    const char* s = std::getenv(name);
    if (!s || !*s) return std::nullopt;
    T v{};
    const char* end = s + std::strlen(s);
    auto [p, ec] = std::from_chars(s, end, v);
    if (ec != std::errc() || p != end) return std::nullopt;
    return v;
}

}  // namespace

bool notify(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return false;
    const std::size_t len = std::strlen(path);
    // '@' or a leading '/' only: anything else is not a socket systemd made.
    if (path[0] != '@' && path[0] != '/') return false;

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (len > sizeof(addr.sun_path)) return false;
    std::memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
    // An abstract name is exactly its length (no terminator); a path ends at its NUL.
    socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    if (path[0] == '/') {
        if (len == sizeof(addr.sun_path)) return false;  // no room for the NUL
        ++addr_len;
    }

    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t n;
    do {
        n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), addr_len);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    return n == static_cast<ssize_t>(state.size());
}

std::optional<std::chrono::microseconds> watchdog_timeout() {
    const auto usec = env_number<unsigned long long>("WATCHDOG_USEC");
    if (!usec || *usec == 0) return std::nullopt;
    if (std::getenv("WATCHDOG_PID")) {
        // Meant for another process (systemd sets it for the main PID only).
        const auto pid = env_number<long long>("WATCHDOG_PID");
        if (!pid || *pid != static_cast<long long>(::getpid())) return std::nullopt;
    }
    return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(*usec));
}

bool Watchdog::kick(MonoTime now) {
    if (!interval_) return false;
    if (next_ && now < *next_) return false;
    notify("WATCHDOG=1");
    next_ = now + *interval_;
    return true;
}

std::optional<MonoTime> Watchdog::deadline() const {
    if (!interval_) return std::nullopt;
    return next_ ? *next_ : MonoTime::min();
}

}  // namespace tg::sd
