// sd_notify: datagrams really arrive on an AF_UNIX socket named by
// NOTIFY_SOCKET (path and abstract forms), and the watchdog follows
// WATCHDOG_USEC/WATCHDOG_PID and pings at half the timeout.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

#include "sd_notify.h"

using namespace tg;
using namespace std::chrono_literals;

namespace {

// A bound datagram socket standing in for systemd's notification socket.
class FakeSystemd {
  public:
    // abstract: bind in the abstract namespace and export "@name".
    explicit FakeSystemd(bool abstract) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        const std::string name = "tidegate-notify-test-" + std::to_string(::getpid());
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        socklen_t len;
        if (abstract) {
            addr.sun_path[0] = '\0';
            std::memcpy(addr.sun_path + 1, name.data(), name.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
            env_ = "@" + name;
        } else {
            char tmpl[] = "/tmp/tidegate-sd-XXXXXX";
            REQUIRE(::mkdtemp(tmpl) != nullptr);
            dir_ = tmpl;
            path_ = dir_ + "/notify";
            std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() + 1);
            env_ = path_;
        }
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0);
        ::setenv("NOTIFY_SOCKET", env_.c_str(), 1);
    }
    ~FakeSystemd() {
        ::unsetenv("NOTIFY_SOCKET");
        ::close(fd_);
        if (!path_.empty()) ::unlink(path_.c_str());
        if (!dir_.empty()) ::rmdir(dir_.c_str());
    }
    // The next datagram, or "" if none arrives within timeout_ms.
    std::string receive(int timeout_ms = 2000) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return "";
        char buf[512];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }

  private:
    int fd_ = -1;
    std::string dir_, path_, env_;
};

struct WatchdogEnv {
    WatchdogEnv(const char* usec, const char* pid) {
        if (usec) ::setenv("WATCHDOG_USEC", usec, 1);
        if (pid) ::setenv("WATCHDOG_PID", pid, 1);
    }
    ~WatchdogEnv() {
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
    }
};

}  // namespace

TEST_CASE("notify sends READY=1 and STOPPING=1 to a filesystem socket", "[sd_notify]") {
    FakeSystemd systemd(false);
    REQUIRE(sd::notify("READY=1"));
    CHECK(systemd.receive() == "READY=1");
    REQUIRE(sd::notify("STOPPING=1\nSTATUS=shutting down"));
    CHECK(systemd.receive() == "STOPPING=1\nSTATUS=shutting down");
}

TEST_CASE("notify reaches an abstract socket named with a leading @", "[sd_notify]") {
    FakeSystemd systemd(true);
    REQUIRE(sd::notify("READY=1"));
    CHECK(systemd.receive() == "READY=1");
}

TEST_CASE("notify without NOTIFY_SOCKET or with a bad one is a quiet no-op", "[sd_notify]") {
    ::unsetenv("NOTIFY_SOCKET");
    CHECK_FALSE(sd::notify("READY=1"));
    ::setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_FALSE(sd::notify("READY=1"));
    ::setenv("NOTIFY_SOCKET", "/nonexistent/tidegate/notify", 1);
    CHECK_FALSE(sd::notify("READY=1"));
    ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("watchdog timeout comes from WATCHDOG_USEC for this process only", "[sd_notify]") {
    SECTION("unset: off") {
        WatchdogEnv e(nullptr, nullptr);
        CHECK_FALSE(sd::watchdog_timeout());
    }
    SECTION("no WATCHDOG_PID: on") {
        WatchdogEnv e("30000000", nullptr);
        REQUIRE(sd::watchdog_timeout());
        CHECK(*sd::watchdog_timeout() == 30s);
    }
    SECTION("WATCHDOG_PID of this process: on") {
        const std::string pid = std::to_string(::getpid());
        WatchdogEnv e("2500000", pid.c_str());
        REQUIRE(sd::watchdog_timeout());
        CHECK(*sd::watchdog_timeout() == 2500ms);
    }
    SECTION("WATCHDOG_PID of another process: off") {
        const std::string pid = std::to_string(::getpid() + 1);
        WatchdogEnv e("30000000", pid.c_str());
        CHECK_FALSE(sd::watchdog_timeout());
    }
    SECTION("garbage or zero: off") {
        {
            WatchdogEnv e("30s", nullptr);
            CHECK_FALSE(sd::watchdog_timeout());
        }
        WatchdogEnv e("0", nullptr);
        CHECK_FALSE(sd::watchdog_timeout());
    }
}

TEST_CASE("the watchdog pings WATCHDOG=1 at half the timeout", "[sd_notify]") {
    FakeSystemd systemd(false);
    sd::Watchdog wd(std::chrono::microseconds(30s));
    REQUIRE(wd.enabled());
    const MonoTime t0{std::chrono::seconds(1000)};

    CHECK(wd.kick(t0));  // the first call pings at once
    CHECK(systemd.receive() == "WATCHDOG=1");
    REQUIRE(wd.deadline());
    CHECK(*wd.deadline() == t0 + 15s);

    CHECK_FALSE(wd.kick(t0 + 14s));
    CHECK(systemd.receive(50).empty());
    CHECK(wd.kick(t0 + 15s));
    CHECK(systemd.receive() == "WATCHDOG=1");
    CHECK(*wd.deadline() == t0 + 30s);
}

TEST_CASE("the watchdog is off outside systemd and never wakes the loop", "[sd_notify]") {
    WatchdogEnv e(nullptr, nullptr);
    sd::Watchdog wd;
    CHECK_FALSE(wd.enabled());
    CHECK_FALSE(wd.kick(MonoTime{}));
    CHECK_FALSE(wd.deadline());
}
