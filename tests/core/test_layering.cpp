// The folders' layering (ARCHITECTURE.md): core/ is the vocabulary every
// folder may use and uses nothing else; rules/ is a pure library over core/;
// drivers/ use core/ only. The build enforces it with one include root per
// library (tidegate_include_root in CMakeLists.txt; tests/CMakeLists.txt
// compiles a violation of each kind and expects the header not found). This
// checks the sources' #include lines too, each resolved the way the compiler
// would (next to the including file first, then from the include roots), so
// a relative path, which no include root can refuse, cannot sneak past.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = TIDEGATE_SOURCE_DIR;
const fs::path kCore = kRoot / "firmware-gateway" / "core";
// The libraries' include roots in the build tree: <name>/<name> -> the folder.
const fs::path kIncludeRoots = TIDEGATE_INCLUDE_ROOTS;

// The project folder an include lands in ("core", "rules", "drivers",
// "firmware-gateway"), or "" when it is no project header.
std::string folder_of(const fs::path& file) {
    const std::string rel = fs::relative(fs::weakly_canonical(file), kRoot).generic_string();
    if (rel.rfind("firmware-gateway/core/", 0) == 0) return "core";
    for (const char* f : {"rules/", "drivers/", "firmware-gateway/"}) {
        if (rel.rfind(f, 0) == 0) return std::string(f, std::string(f).size() - 1);
    }
    return "";
}

// Every library's root at once (a library sees only its own and those of the
// libraries it links): "core/…", "rules/…", "drivers/…" land in their folder
// whoever includes them, and which folder that is decides. The gateway's root
// (firmware-gateway/, "config.h") is no library's: such an include resolves
// to nothing here, as it does for the compiler.
std::string resolve(const fs::path& including, const std::string& target) {
    std::vector<fs::path> candidates = {including.parent_path() / target};
    for (const auto& root : fs::directory_iterator(kIncludeRoots)) {
        candidates.push_back(root.path() / target);
    }
    for (const fs::path& c : candidates) {
        if (fs::is_regular_file(c)) return folder_of(c);
    }
    return "?" + target;
}

// Every (file, include, folder it resolves to) of a source folder.
std::vector<std::string> violations(const fs::path& dir, const std::set<std::string>& allowed) {
    static const std::regex include_re(R"re(^\s*#\s*include\s*"([^"]+)")re");
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        const std::string ext = e.path().extension().string();
        if (!e.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
        // Fuzz targets are programs of their own, not part of the library.
        if (e.path().generic_string().find("/fuzz/") != std::string::npos) continue;
        std::ifstream in(e.path());
        std::string line;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_search(line, m, include_re)) continue;
            const std::string folder = resolve(e.path(), m[1].str());
            if (!allowed.count(folder)) {
                out.push_back(fs::relative(e.path(), kRoot).generic_string() + " includes \"" +
                              m[1].str() + "\" (" + folder + ")");
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE("core/ includes only core/", "[layering]") {
    CHECK(violations(kCore, {"core"}) == std::vector<std::string>{});
}

TEST_CASE("rules/ includes only core/ and rules/", "[layering]") {
    CHECK(violations(kRoot / "rules", {"core", "rules"}) == std::vector<std::string>{});
}

TEST_CASE("drivers/ include only core/ and drivers/", "[layering]") {
    CHECK(violations(kRoot / "drivers", {"core", "drivers"}) == std::vector<std::string>{});
}

TEST_CASE("the layering check sees a violation", "[layering]") {
    // Its own resolution, on a file of each folder.
    CHECK(resolve(kRoot / "rules" / "engine.cpp", "rules/engine.h") == "rules");
    CHECK(resolve(kRoot / "rules" / "engine.cpp", "core/clock.h") == "core");
    CHECK(resolve(kRoot / "rules" / "engine.cpp", "../firmware-gateway/config.h") ==
          "firmware-gateway");
    CHECK(resolve(kRoot / "drivers" / "mqtt" / "mqtt_input.cpp", "drivers/driver.h") == "drivers");
    CHECK(resolve(kRoot / "drivers" / "driver.cpp", "rules/engine.h") == "rules");
    // The gateway's own headers are on no library's include path, and a path
    // through a root's link lands where the link's target says.
    CHECK(resolve(kRoot / "rules" / "engine.cpp", "config.h") == "?config.h");
    CHECK(resolve(kRoot / "rules" / "engine.cpp", "core/../config.h") == "firmware-gateway");
}

TEST_CASE("each library's include root holds only its own folder", "[layering]") {
    const std::map<std::string, fs::path> expected = {
        {"core", kCore}, {"rules", kRoot / "rules"}, {"drivers", kRoot / "drivers"}};
    std::map<std::string, fs::path> seen;
    for (const auto& root : fs::directory_iterator(kIncludeRoots)) {
        const std::string name = root.path().filename().string();
        std::vector<fs::path> entries;
        for (const auto& e : fs::directory_iterator(root.path()))
            entries.push_back(e.path());
        INFO(root.path().string());
        REQUIRE(entries.size() == 1);
        CHECK(entries[0].filename() == name);
        CHECK(fs::is_symlink(entries[0]));
        seen[name] = fs::canonical(entries[0]);
    }
    std::map<std::string, fs::path> wanted;
    for (const auto& [name, dir] : expected)
        wanted[name] = fs::canonical(dir);
    CHECK(seen == wanted);
}
