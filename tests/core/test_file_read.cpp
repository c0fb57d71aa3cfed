// Reading config and rule files (core/file_read.h): regular files only, and
// bounded. A FIFO, a device or a socket under a file's name is refused at once,
// never waited on; a symlink is followed to what it points at.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/file_read.h"
#include "finishes_within.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using tg::test::TempDir;

namespace {

struct Outcome {
    bool ok = false;
    std::string text;
    std::string why;
};

// read_regular_file on its own thread; a read still blocked after 5 s fails
// the test. A FIFO's other end is opened then, so that the reader returns.
Outcome read_within_5s(const std::string& path, std::size_t max = tg::kMaxConfigFileBytes) {
    return tg::test::finishes_within(
        5s,
        [path, max] {
            Outcome o;
            o.ok = tg::read_regular_file(path, max, o.text, o.why);
            return o;
        },
        [path] {
            const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) ::close(fd);
        });
}

}  // namespace

TEST_CASE("a regular file is read whole", "[core][file_read]") {
    TempDir dir;
    const std::string path = dir / "a.yaml";
    std::string text(200'000, 'x');
    text += "\nend\n";
    std::ofstream(path, std::ios::binary) << text;
    const Outcome o = read_within_5s(path);
    CHECK(o.ok);
    CHECK(o.why.empty());
    CHECK(o.text == text);

    SECTION("through a symlink, too") {
        REQUIRE(::symlink(path.c_str(), (dir / "link.yaml").c_str()) == 0);
        const Outcome l = read_within_5s(dir / "link.yaml");
        CHECK(l.ok);
        CHECK(l.text == text);
    }
    SECTION("an empty file is empty text") {
        std::ofstream(dir / "empty.yaml").close();
        const Outcome e = read_within_5s(dir / "empty.yaml");
        CHECK(e.ok);
        CHECK(e.text.empty());
    }
}

TEST_CASE("a FIFO is refused at once, not waited on", "[core][file_read]") {
    TempDir dir;
    const std::string fifo = dir / "x.yaml";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    const Outcome o = read_within_5s(fifo);
    CHECK_FALSE(o.ok);
    CHECK(o.why == "not a regular file but a FIFO (named pipe)");

    SECTION("also behind a symlink") {
        REQUIRE(::symlink(fifo.c_str(), (dir / "y.yaml").c_str()) == 0);
        const Outcome l = read_within_5s(dir / "y.yaml");
        CHECK_FALSE(l.ok);
        CHECK(l.why == "not a regular file but a FIFO (named pipe)");
    }
}

TEST_CASE("a symlink to /dev/zero is refused, not read until memory runs out",
          "[core][file_read]") {
    TempDir dir;
    const std::string link = dir / "z.yaml";
    REQUIRE(::symlink("/dev/zero", link.c_str()) == 0);
    const Outcome o = read_within_5s(link);
    CHECK_FALSE(o.ok);
    CHECK(o.why == "not a regular file but a character device");
    CHECK(o.text.empty());
}

TEST_CASE("a folder and a socket are refused", "[core][file_read]") {
    TempDir dir;
    fs::create_directory(dir / "d.yaml");
    const Outcome d = read_within_5s(dir / "d.yaml");
    CHECK_FALSE(d.ok);
    CHECK(d.why == "Is a directory");

    const std::string sock_path = dir / "s.yaml";
    const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(sock >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(sock_path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size() + 1);
    REQUIRE(::bind(sock, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const Outcome s = read_within_5s(sock_path);
    ::close(sock);
    CHECK_FALSE(s.ok);
    CHECK(s.why == "not a regular file but a socket");
}

TEST_CASE("a file over the limit is refused, naming the limit", "[core][file_read]") {
    TempDir dir;
    const std::string big = dir / "big.yaml";
    {
        std::ofstream out(big, std::ios::binary);
        out << std::string(tg::kMaxConfigFileBytes + 1, '#');
    }
    const Outcome o = read_within_5s(big);
    CHECK_FALSE(o.ok);
    CHECK(o.why == "too large: more than 4 MiB");
    CHECK(o.text.empty());

    SECTION("a file of exactly the limit is read") {
        fs::resize_file(big, tg::kMaxConfigFileBytes);
        const Outcome at = read_within_5s(big);
        CHECK(at.ok);
        CHECK(at.text.size() == tg::kMaxConfigFileBytes);
    }
    SECTION("a small limit") {
        std::ofstream(dir / "s", std::ios::binary) << "12345";
        CHECK(read_within_5s(dir / "s", 4).why == "too large: more than 4 bytes");
        CHECK(read_within_5s(dir / "s", 5).text == "12345");
    }
}

TEST_CASE("a missing or unreadable file gives the system's reason", "[core][file_read]") {
    TempDir dir;
    CHECK(read_within_5s(dir / "nope.yaml").why == "No such file or directory");
    REQUIRE(::symlink((dir / "gone").c_str(), (dir / "dangling.yaml").c_str()) == 0);
    CHECK(read_within_5s(dir / "dangling.yaml").why == "No such file or directory");
}

TEST_CASE("byte limits as messages show them", "[core][file_read]") {
    CHECK(tg::describe_byte_limit(4u << 20) == "4 MiB");
    CHECK(tg::describe_byte_limit(512u << 10) == "512 KiB");
    CHECK(tg::describe_byte_limit(1000) == "1000 bytes");
    CHECK(tg::describe_byte_limit(1) == "1 byte");
}
