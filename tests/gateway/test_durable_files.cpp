// Filesystem helpers used for everything kept in data_dir.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "../core/temp_dir.h"
#include "durable_files.h"

using namespace tg;
namespace fs = std::filesystem;

using tg::test::TempDir;

namespace {}  // namespace

TEST_CASE("write_file_atomic replaces the whole file and leaves no temp file", "[fs]") {
    TempDir d;
    write_file_atomic(d.path().string() + "/f", "one");
    write_file_atomic(d.path().string() + "/f", "two");
    std::ifstream in(d.path().string() + "/f");
    std::string s;
    in >> s;
    CHECK(s == "two");
    CHECK_FALSE(fs::exists(d.path().string() + "/f.tmp"));
    CHECK_THROWS_AS(write_file_atomic(d.path().string() + "/missing/f", "x"), std::runtime_error);
}

TEST_CASE("make_dirs creates parents and rejects a file in the way", "[fs]") {
    TempDir d;
    make_dirs(d.path().string() + "/a/b/c");
    CHECK(fs::is_directory(d.path().string() + "/a/b/c"));
    make_dirs(d.path().string() + "/a/b/c");  // existing: fine
    std::ofstream(d.path().string() + "/file") << "x";
    CHECK_THROWS_AS(make_dirs(d.path().string() + "/file"), std::runtime_error);
}
