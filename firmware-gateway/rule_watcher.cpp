#include "rule_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace tg {
namespace {

bool is_rule_file(const std::string& name) {
    auto ends = [&](const char* suffix) {
        const std::size_t n = std::strlen(suffix);
        return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
    };
    return !name.empty() && name[0] != '.' && (ends(".yaml") || ends(".yml"));
}

}  // namespace

RuleWatcher::RuleWatcher(std::vector<std::string> paths, std::function<void()> changed,
                         std::chrono::milliseconds quiet)
    : paths_(std::move(paths)), changed_(std::move(changed)), quiet_(quiet) {}

RuleWatcher::~RuleWatcher() {
    stop();
}

bool RuleWatcher::start() {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (inotify_fd_ < 0 || stop_fd_ < 0) {
        log_warn("rules", std::string("cannot watch rule files (") + std::strerror(errno) +
                              "): reload with SIGHUP");
        return false;
    }
    constexpr std::uint32_t kMask =
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE;
    for (const std::string& p : paths_) {
        struct stat st {};
        std::string folder = p, file;
        if (::stat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            // A file (or a path not there yet): watch its folder for that name.
            const auto slash = p.rfind('/');
            folder = slash == std::string::npos ? "." : p.substr(0, slash == 0 ? 1 : slash);
            file = slash == std::string::npos ? p : p.substr(slash + 1);
        }
        const int wd = ::inotify_add_watch(inotify_fd_, folder.c_str(), kMask);
        if (wd < 0) {
            log_warn("rules", "cannot watch " + folder + ": " + std::strerror(errno));
            continue;
        }
        watches_.push_back(Watch{wd, file});
    }
    thread_ = std::thread([this] { run(); });
    return true;
}

void RuleWatcher::stop() {
    if (thread_.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(stop_fd_, &one, sizeof one);
        thread_.join();
    }
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    inotify_fd_ = stop_fd_ = -1;
}

bool RuleWatcher::relevant(int wd, const std::string& name) const {
    for (const Watch& w : watches_) {
        if (w.wd != wd) continue;
        if (w.file.empty() ? is_rule_file(name) : name == w.file) return true;
    }
    return false;
}

void RuleWatcher::run() {
    alignas(inotify_event) char buf[8192];
    bool pending = false;
    for (;;) {
        pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
        // Waits for changes; once one came, until the files stay quiet.
        const int timeout = pending ? static_cast<int>(quiet_.count()) : -1;
        const int n = ::poll(fds, 2, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || fds[1].revents) return;
        if (n == 0) {
            pending = false;
            changed_();
            continue;
        }
        for (;;) {
            const ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
            if (len <= 0) break;
            for (ssize_t off = 0; off < len;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
                const std::string name = ev->len ? std::string(ev->name) : std::string();
                if (relevant(ev->wd, name)) pending = true;
                off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
            }
        }
    }
}

}  // namespace tg
