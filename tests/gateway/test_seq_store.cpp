// SeqStore: consecutive across clean restarts and process crashes, a forward
// gap (never a reuse) after a reboot that lost the page cache.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "seq_store.h"

using namespace tg;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tidegate-seq-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("first run starts at 1 and numbers are consecutive", "[seq]") {
    TempDir d;
    SeqStore s(d.path + "/data", "boot-a", 16);
    s.open();
    CHECK(s.resumed() == SeqStore::Resume::Fresh);
    CHECK(s.next() == 1);
    CHECK(s.next() == 2);
    CHECK(s.next() == 3);
    s.close();
}

TEST_CASE("a clean restart continues exactly, even after a reboot", "[seq]") {
    TempDir d;
    {
        SeqStore s(d.path, "boot-a", 16);
        s.open();
        for (int i = 0; i < 40; ++i)
            s.next();  // crosses two reservations
        s.close();
    }
    SeqStore again(d.path, "boot-b", 16);
    again.open();
    CHECK(again.resumed() == SeqStore::Resume::Clean);
    CHECK(again.next() == 41);
}

TEST_CASE("a process crash in the same boot continues exactly", "[seq]") {
    TempDir d;
    {
        SeqStore s(d.path, "boot-a", 16);
        s.open();
        for (int i = 0; i < 20; ++i)
            s.next();
        // no close(): the destructor stands in for SIGKILL (only the fd closes)
    }
    SeqStore again(d.path, "boot-a", 16);
    again.open();
    CHECK(again.resumed() == SeqStore::Resume::Crash);
    CHECK(again.next() == 21);
}

TEST_CASE("after an unclean reboot seq jumps past every number that may have been used", "[seq]") {
    TempDir d;
    std::uint64_t used_max = 0;
    {
        SeqStore s(d.path, "boot-a", 16);
        s.open();
        for (int i = 0; i < 20; ++i)
            used_max = s.next();
    }
    // A power cut loses the page cache: seq.last may hold anything older.
    {
        std::ofstream trunc(d.path + "/seq.last", std::ios::trunc);
        trunc << "00000000000000000003\n";
    }
    SeqStore again(d.path, "boot-b", 16);
    again.open();
    CHECK(again.resumed() == SeqStore::Resume::Reboot);
    const std::uint64_t first = again.next();
    CHECK(first > used_max);
    CHECK(first <= used_max + 2 * 16 + 1);
}

TEST_CASE("a torn or missing seq.last in the same boot is treated as a reboot", "[seq]") {
    TempDir d;
    {
        SeqStore s(d.path, "boot-a", 8);
        s.open();
        for (int i = 0; i < 5; ++i)
            s.next();
    }
    fs::remove(d.path + "/seq.last");
    SeqStore again(d.path, "boot-a", 8);
    again.open();
    CHECK(again.resumed() == SeqStore::Resume::Reboot);
    CHECK(again.next() > 5);
}

TEST_CASE("the state file is replaced atomically", "[seq]") {
    TempDir d;
    write_file_atomic(d.path + "/f", "one");
    write_file_atomic(d.path + "/f", "two");
    std::ifstream in(d.path + "/f");
    std::string s;
    in >> s;
    CHECK(s == "two");
    CHECK_FALSE(fs::exists(d.path + "/f.tmp"));
}

TEST_CASE("make_dirs creates parents and rejects a file in the way", "[seq]") {
    TempDir d;
    make_dirs(d.path + "/a/b/c");
    CHECK(fs::is_directory(d.path + "/a/b/c"));
    std::ofstream(d.path + "/file") << "x";
    CHECK_THROWS_AS(make_dirs(d.path + "/file"), std::runtime_error);
}
