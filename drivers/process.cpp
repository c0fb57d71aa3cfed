#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "drivers/sensor_parse.h"

extern char** environ;

namespace tg::drivers {
namespace {

// How long a wait lasts before looking at the clock and the child again: a
// child can exit while something it started still holds the pipes open.
constexpr std::chrono::milliseconds kSlice{50};

// Closes an fd when it goes out of scope.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

// Reads what is available, keeping up to `cap` bytes; false at end of file
// or on error.
bool drain(int fd, std::string& into, std::size_t cap, bool& truncated) {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            const std::size_t room = cap > into.size() ? cap - into.size() : 0;
            const auto take = std::min(room, static_cast<std::size_t>(n));
            into.append(buf, take);
            if (take < static_cast<std::size_t>(n)) truncated = true;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        return false;
    }
}

bool readable(int fd) {
    if (fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

ProcessOutcome spawn_failed(int err) {
    ProcessOutcome o;
    o.kind = ProcessOutcome::Kind::SpawnFailed;
    o.code = err;
    return o;
}

}  // namespace

std::string first_line(const std::string& text) {
    const std::string t = trim(text);
    return excerpt(trim(std::string_view(t).substr(0, t.find('\n'))));
}

ProcessOutcome run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           int stop_fd, std::size_t max_out, std::size_t max_err) {
    if (argv.empty()) return spawn_failed(EINVAL);
    // A stop that came first: nothing to start.
    if (readable(stop_fd)) {
        ProcessOutcome o;
        o.kind = ProcessOutcome::Kind::Stopped;
        return o;
    }
    int out_pipe[2], err_pipe[2];
    // Close-on-exec, so programs that other threads start meanwhile do not
    // inherit our pipe ends (which would keep them open past this child).
    if (::pipe2(out_pipe, O_CLOEXEC) < 0) return spawn_failed(errno);
    Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) < 0) return spawn_failed(errno);
    Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // The pipes first: should the gateway run with fd 0 closed, a pipe may
    // be fd 0, and /dev/null must not replace it before it is copied.
    posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group, so a timeout kills what it started too; and a
    // clean signal state whatever the gateway's threads block or ignore.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
        sigaddset(&defaults, sig);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);

    // posix_spawnp wants char* const[]; the strings are not modified.
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return spawn_failed(rc);
    out_w.reset();
    err_w.reset();
    ::fcntl(out_r.fd, F_SETFL, O_NONBLOCK);
    ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);

    ProcessOutcome o;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool out_open = true, err_open = true, reaped = false, stopped = false;
    int status = 0;
    while (out_open || err_open) {
        const auto now = std::chrono::steady_clock::now();
        if (stopped || now >= deadline) {
            o.kind = stopped ? ProcessOutcome::Kind::Stopped : ProcessOutcome::Kind::Timeout;
            ::kill(-pid, SIGKILL);
            break;
        }
        pollfd fds[3] = {{out_open ? out_r.fd : -1, POLLIN, 0},
                         {err_open ? err_r.fd : -1, POLLIN, 0},
                         {stop_fd, POLLIN, 0}};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        const int wait = static_cast<int>(std::min(left, kSlice).count());
        if (::poll(fds, 3, wait) < 0 && errno != EINTR) {
            // Cannot watch it any longer (ENOMEM): end it rather than wait blind.
            ::kill(-pid, SIGKILL);
            break;
        }
        if (fds[2].revents) {
            stopped = true;
            continue;
        }
        if (fds[0].revents) out_open = drain(out_r.fd, o.out, max_out, o.out_truncated);
        if (fds[1].revents) err_open = drain(err_r.fd, o.err, max_err, o.err_truncated);
        // A child that exited while something it started still holds the
        // pipes open: take what is there and stop waiting for the end.
        if ((out_open || err_open) && ::waitpid(pid, &status, WNOHANG) == pid) {
            reaped = true;
            if (out_open) drain(out_r.fd, o.out, max_out, o.out_truncated);
            if (err_open) drain(err_r.fd, o.err, max_err, o.err_truncated);
            break;
        }
    }
    if (!reaped) {
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (o.kind == ProcessOutcome::Kind::Exited) {
        if (WIFSIGNALED(status)) {
            o.kind = ProcessOutcome::Kind::Signaled;
            o.code = WTERMSIG(status);
        } else {
            o.code = WEXITSTATUS(status);
        }
    }
    return o;
}

}  // namespace tg::drivers
