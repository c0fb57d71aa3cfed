#include "command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace tg::drivers {
namespace {

// How long a read waits before looking at the clock, the child and the stop flag.
constexpr std::chrono::milliseconds kSlice{50};
constexpr std::size_t kMaxStderr = 4096;

constexpr std::array<OptionSpec, 4> kOptions{{
    {"argv", OptType::StringList, "",
     "program and arguments, e.g. [vcgencmd, measure_temp]; no shell", true},
    {"format", OptType::String, "number", "number | json | kv: what the output holds"},
    {"field", OptType::String, "", "json: a key or a JSON pointer (/a/b); kv: the key"},
    {"timeout", OptType::Duration, "10s", "longest run; then the process group is killed"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    static const RealClock real_clock;
    return std::make_unique<CommandDriver>(sensors, real_clock);
}

std::string share_key(const SensorSpec& s) {
    std::string key;
    for (const std::string& a : s.options.strings("argv")) {
        key += a;
        key += '\0';
    }
    return key;
}

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

std::string first_line(const std::string& text) {
    const std::string t = trim(text);
    return excerpt(t.substr(0, t.find('\n')));
}

// Reads what is available; false at end of file or on error.
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

}  // namespace

const DriverInfo kCommandDriver{"command",         "stdout of a program run every interval",
                                kOptions,          false,
                                ValueType::Number, &create,
                                &share_key};

CommandDriver::CommandDriver(std::span<const SensorSpec> sensors, const Clock& clock)
    : interval_(0), timeout_(0), clock_(clock) {
    if (sensors.empty()) throw std::logic_error("command driver without sensors");
    argv_ = sensors.front().options.strings("argv");
    if (argv_.empty() || argv_.front().empty()) {
        throw OptionError("argv",
                          "expected the program and its arguments, e.g. [/usr/bin/vcgencmd, "
                          "measure_temp]");
    }
    interval_ = sensors.front().interval;
    for (const SensorSpec& s : sensors) {
        if (s.options.strings("argv") != argv_) {
            throw std::logic_error("command sensors of one reader have different argv");
        }
        const std::chrono::milliseconds t = s.options.duration("timeout");
        if (t.count() <= 0) throw OptionError("timeout", "must be greater than 0");
        // Sharing one run, the sensors get the most patient timeout.
        timeout_ = std::max(timeout_, t);
        interval_ = std::min(interval_, s.interval);
        targets_.push_back(Target{
            s.name, FieldParser(s.options.string("format"), s.options.string("field"), s.type)});
    }
    if (interval_.count() <= 0) throw std::logic_error("command interval must be positive");
}

CommandDriver::~CommandDriver() {
    worker_.stop();
}

void CommandDriver::start(Sink& sink) {
    worker_.start([this, &sink] { run(sink); });
}

void CommandDriver::stop() {
    worker_.stop();
}

void CommandDriver::run(Sink& sink) {
    // The first run at start, then one per interval; a run longer than the
    // interval delays the next instead of piling up.
    auto next = std::chrono::steady_clock::now();
    while (!worker_.stopping()) {
        const Outcome o = run_once();
        if (o.kind == Outcome::Kind::Stopped) return;
        report(o, sink);
        next += interval_;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now + interval_;
        if (!worker_.sleep_for(next - now)) return;
    }
}

CommandDriver::Outcome CommandDriver::run_once() {
    Outcome o;
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) < 0) {
        o.kind = Outcome::Kind::SpawnFailed;
        o.code = errno;
        return o;
    }
    Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) < 0) {
        o.kind = Outcome::Kind::SpawnFailed;
        o.code = errno;
        return o;
    }
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

    std::vector<char*> args;
    for (std::string& a : argv_)
        args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        o.kind = Outcome::Kind::SpawnFailed;
        o.code = rc;
        return o;
    }
    out_w.reset();
    err_w.reset();
    ::fcntl(out_r.fd, F_SETFL, O_NONBLOCK);
    ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);

    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    bool out_open = true, err_open = true, err_truncated = false, reaped = false;
    int status = 0;
    while (out_open || err_open) {
        const auto now = std::chrono::steady_clock::now();
        if (worker_.stopping() || now >= deadline) {
            o.kind = worker_.stopping() ? Outcome::Kind::Stopped : Outcome::Kind::Timeout;
            ::kill(-pid, SIGKILL);
            break;
        }
        pollfd fds[3] = {{out_open ? out_r.fd : -1, POLLIN, 0},
                         {err_open ? err_r.fd : -1, POLLIN, 0},
                         {worker_.wake_fd(), POLLIN, 0}};
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        const int wait = static_cast<int>(std::min(left, kSlice).count());
        if (::poll(fds, 3, wait) < 0 && errno != EINTR) break;
        if (fds[0].revents) out_open = drain(out_r.fd, o.out, kMaxOutput, o.out_truncated);
        if (fds[1].revents) err_open = drain(err_r.fd, o.err, kMaxStderr, err_truncated);
        // A child that exited while something it started still holds the
        // pipes open: take what is there and stop waiting for the end.
        if ((out_open || err_open) && ::waitpid(pid, &status, WNOHANG) == pid) {
            reaped = true;
            if (out_open) drain(out_r.fd, o.out, kMaxOutput, o.out_truncated);
            if (err_open) drain(err_r.fd, o.err, kMaxStderr, err_truncated);
            break;
        }
    }
    if (!reaped) {
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (o.kind == Outcome::Kind::Exited) {
        if (WIFSIGNALED(status)) {
            o.kind = Outcome::Kind::Signaled;
            o.code = WTERMSIG(status);
        } else {
            o.code = WEXITSTATUS(status);
        }
    }
    return o;
}

void CommandDriver::bad_for_all(Sink& sink, const std::string& reason, const std::string& detail) {
    for (const Target& t : targets_)
        sink.bad_reading(t.sensor, reason, detail);
}

void CommandDriver::report(const Outcome& o, Sink& sink) {
    const std::string& prog = argv_.front();
    switch (o.kind) {
        case Outcome::Kind::Stopped:
            return;
        case Outcome::Kind::SpawnFailed:
            bad_for_all(sink, "exec_failed", "cannot run " + prog + ": " + std::strerror(o.code));
            return;
        case Outcome::Kind::Timeout:
            bad_for_all(sink, "timeout",
                        prog + " did not finish within " + std::to_string(timeout_.count()) +
                            "ms; its process group was killed");
            return;
        case Outcome::Kind::Signaled:
            bad_for_all(sink, "exec_failed",
                        prog + " was killed by signal " + std::to_string(o.code) + " (" +
                            ::strsignal(o.code) + ")");
            return;
        case Outcome::Kind::Exited:
            break;
    }
    if (o.code != 0) {
        const std::string why = first_line(o.err);
        bad_for_all(sink, "exec_failed",
                    prog + " exited with status " + std::to_string(o.code) +
                        (why.empty() ? std::string() : ": " + why));
        return;
    }
    if (o.out_truncated) {
        bad_for_all(sink, "parse",
                    prog + " printed more than " + std::to_string(kMaxOutput / 1024) + " KiB");
        return;
    }
    const WallTime ts = clock_.wall();
    const MonoTime mono = clock_.monotonic();
    for (const Target& t : targets_) {
        Parsed p = t.parser.parse(o.out);
        if (p) {
            sink.reading(Reading{t.sensor, std::move(*p.value), ts, mono});
        } else {
            sink.bad_reading(t.sensor, p.reason, prog + ": " + p.detail);
        }
    }
}

}  // namespace tg::drivers
