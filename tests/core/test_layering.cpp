// The folders' layering (ARCHITECTURE.md): core/ is the vocabulary every
// folder may use and uses nothing else; rules/ is a pure library over core/;
// drivers/ use core/ only. Checked on the sources' #include lines, each
// resolved the way the compiler would (next to the including file first,
// then from the include roots), so a relative path cannot sneak past it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = TIDEGATE_SOURCE_DIR;
const fs::path kCore = kRoot / "firmware-gateway" / "core";

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

std::string resolve(const fs::path& including, const std::string& target) {
    const std::vector<fs::path> candidates = {
        including.parent_path() / target,     // next to the including file
        kRoot / "firmware-gateway" / target,  // "core/…" (tidegate_core's root)
        kRoot / target,                       // "rules/…", "drivers/…"
    };
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
}
