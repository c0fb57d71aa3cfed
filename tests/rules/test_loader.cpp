// Reading rule files from disk (rules/loader.h) when the files are not what
// they claim: a FIFO, a device or a socket named *.yaml in a rules folder, or
// named directly, is one error naming it, reported at once; the good files
// around it are still read and checked.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../core/finishes_within.h"
#include "../core/temp_dir.h"
#include "rules/loader.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

using tg::test::TempDir;

namespace {

tg::rules::CheckOptions door_options() {
    tg::rules::CheckOptions o;
    o.sensors = tg::rules::SensorCatalogue{{"door.open", tg::ValueType::Boolean}};
    return o;
}

// check_rule_paths on its own thread: a read blocked on a FIFO fails the test
// after 5 s (and the FIFOs' other ends are opened so the reader returns).
Lines check_within_5s(const std::vector<std::string>& paths,
                      const std::vector<std::string>& fifos = {}) {
    const tg::Diagnostics d = tg::test::finishes_within(
        5s, [paths] { return tg::rules::check_rule_paths(paths, door_options()); },
        [fifos] {
            for (const std::string& f : fifos) {
                const int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0) ::close(fd);
            }
        });
    Lines out;
    for (const tg::SourceError& e : d.items())
        out.push_back(e.format());
    return out;
}

}  // namespace

TEST_CASE("a FIFO and a /dev/zero symlink in a rules folder are errors, never waited on",
          "[rules][loader]") {
    TempDir dir;
    fs::create_directory(dir / "rules.d");
    std::ofstream(dir / "rules.d/a.yaml") << "rules:\n  - name: a\n    when: door.open\n";
    REQUIRE(::mkfifo((dir / "rules.d/x.yaml").c_str(), 0644) == 0);
    REQUIRE(::symlink("/dev/zero", (dir / "rules.d/z.yaml").c_str()) == 0);
    // Not a rule file name: not read at all, so not an error either.
    REQUIRE(::mkfifo((dir / "rules.d/notes.fifo").c_str(), 0644) == 0);

    CHECK(check_within_5s({dir / "rules.d"}, {dir / "rules.d/x.yaml"}) ==
          Lines{(dir / "rules.d/x.yaml") + ": error: cannot read: not a regular file but a FIFO "
                                           "(named pipe)",
                (dir / "rules.d/z.yaml") + ": error: cannot read: not a regular file but a "
                                           "character device"});

    SECTION("the set is rejected whole, the good file still checked") {
        std::ofstream(dir / "rules.d/b.yaml") << "rules:\n  - name: b\n    when: nope\n";
        const Lines lines = check_within_5s({dir / "rules.d"}, {dir / "rules.d/x.yaml"});
        CHECK(lines.size() == 3);
        CHECK(lines.back() ==
              (dir / "rules.d/b.yaml") + ":3:11: error: when: unknown sensor 'nope'");
        const auto result = tg::test::finishes_within(
            5s, [d = dir / "rules.d"] { return tg::rules::load_rules({d}, door_options()); });
        CHECK(result.rules == nullptr);
    }
}

TEST_CASE("a FIFO or device named directly as a rule path is an error", "[rules][loader]") {
    TempDir dir;
    REQUIRE(::mkfifo((dir / "p.yaml").c_str(), 0644) == 0);
    CHECK(check_within_5s({dir / "p.yaml", "/dev/null"}, {dir / "p.yaml"}) ==
          Lines{"/dev/null: error: cannot read: not a regular file but a character device",
                (dir / "p.yaml") + ": error: cannot read: not a regular file but a FIFO (named "
                                   "pipe)"});
}

TEST_CASE("a rule file over 4 MiB is an error naming the limit", "[rules][loader]") {
    TempDir dir;
    {
        std::ofstream out(dir / "huge.yaml", std::ios::binary);
        out << "rules: []\n" << std::string(4u << 20, '#');
    }
    CHECK(check_within_5s({dir / "huge.yaml"}) ==
          Lines{(dir / "huge.yaml") + ": error: cannot read: too large: more than 4 MiB"});
}
