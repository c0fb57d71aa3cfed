// Filesystem helpers used for everything kept in data_dir.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "fs_util.h"

using namespace tg;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tidegate-fs-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};
}  // namespace

TEST_CASE("write_file_atomic replaces the whole file and leaves no temp file", "[fs]") {
    TempDir d;
    write_file_atomic(d.path + "/f", "one");
    write_file_atomic(d.path + "/f", "two");
    std::ifstream in(d.path + "/f");
    std::string s;
    in >> s;
    CHECK(s == "two");
    CHECK_FALSE(fs::exists(d.path + "/f.tmp"));
    CHECK_THROWS_AS(write_file_atomic(d.path + "/missing/f", "x"), std::runtime_error);
}

TEST_CASE("make_dirs creates parents and rejects a file in the way", "[fs]") {
    TempDir d;
    make_dirs(d.path + "/a/b/c");
    CHECK(fs::is_directory(d.path + "/a/b/c"));
    make_dirs(d.path + "/a/b/c");  // existing: fine
    std::ofstream(d.path + "/file") << "x";
    CHECK_THROWS_AS(make_dirs(d.path + "/file"), std::runtime_error);
}
