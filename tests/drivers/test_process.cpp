// run_process with real processes: the parts the command driver's tests do
// not reach (discarded output, an empty argv, a stop that came first).
#include <sys/eventfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <filesystem>

#include "driver_test_util.h"
#include "drivers/process.h"

using namespace tg;
using namespace tg::test;
using namespace std::chrono_literals;
using Kind = drivers::ProcessOutcome::Kind;

TEST_CASE("process: output beyond the cap is read and dropped, never blocking the program",
          "[process]") {
    // A megabyte is far more than a pipe holds: the program would block
    // forever if the excess were not read.
    const auto o = drivers::run_process(
        {"/bin/sh", "-c", "head -c 1000000 /dev/zero; echo done >&2"}, 20s, -1, 0, 16);
    CHECK(o.kind == Kind::Exited);
    CHECK(o.code == 0);
    CHECK(o.out.empty());
    CHECK(o.out_truncated);
    CHECK(o.err == "done\n");
    CHECK_FALSE(o.err_truncated);
}

TEST_CASE("process: an empty argv is refused", "[process]") {
    const auto o = drivers::run_process({}, 1s, -1, 64, 64);
    CHECK(o.kind == Kind::SpawnFailed);
    CHECK(o.code == EINVAL);
}

TEST_CASE("process: a stop requested before the start runs nothing", "[process]") {
    TempDir dir("process");
    const auto marker = dir.path() / "ran";
    const int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    REQUIRE(stop >= 0);
    const std::uint64_t one = 1;
    REQUIRE(::write(stop, &one, sizeof one) == static_cast<ssize_t>(sizeof one));
    const auto o = drivers::run_process({"touch", marker.string()}, 5s, stop, 64, 64);
    ::close(stop);
    CHECK(o.kind == Kind::Stopped);
    CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("process: first_line is the first non-blank line, excerpted", "[process]") {
    CHECK(drivers::first_line("\n  \n  oops: bad \r\nsecond\n") == "oops: bad");
    CHECK(drivers::first_line("") == "");
    CHECK(drivers::first_line("tab\there") == "tab?here");
    CHECK(drivers::first_line(std::string(100, 'x')).size() < 100);
}
