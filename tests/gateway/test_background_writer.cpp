// BackgroundWriter: rules.state written off the event loop thread.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "../core/temp_dir.h"
#include "background_writer.h"

using namespace tg;
namespace fs = std::filesystem;

using tg::test::TempDir;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("background writer: the newest content reaches the file", "[fs]") {
    TempDir d;
    const std::string path = d.path().string() + "/rules.state";
    BackgroundWriter w(path, "rules", "rule state");
    CHECK(w.flush());  // nothing handed over: nothing to wait for
    for (int i = 0; i < 200; ++i)
        w.write("version " + std::to_string(i));
    CHECK(w.flush());
    CHECK(read_text(path) == "version 199");
    CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("background writer: what is waiting is written when it is destroyed", "[fs]") {
    TempDir d;
    const std::string path = d.path().string() + "/rules.state";
    {
        BackgroundWriter w(path, "rules", "rule state");
        w.write("one");
        w.write("two");
    }
    CHECK(read_text(path) == "two");
}

TEST_CASE("background writer: a failed write is reported and tried again", "[fs]") {
    TempDir d;
    const std::string path =
        d.path().string() + "/later/rules.state";  // its folder is not there yet
    BackgroundWriter w(path, "rules", "rule state");
    w.write("kept");
    CHECK_FALSE(w.flush());
    CHECK_FALSE(w.flush());  // each flush tries again, and says it failed
    fs::create_directories(d.path().string() + "/later");
    CHECK(w.flush());
    CHECK(read_text(path) == "kept");
    w.write("newer");
    CHECK(w.flush());
    CHECK(read_text(path) == "newer");
}
