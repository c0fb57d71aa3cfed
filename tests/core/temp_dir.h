// A fresh, empty folder under /tmp for one test, removed with everything in
// it when the test ends. Shared by the unit tests that need real files.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace tg::test {

class TempDir {
  public:
    explicit TempDir(const std::string& tag = "test") {
        std::string tmpl = "/tmp/tidegate-" + tag + "-XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }
    // Writes `text` to `name` inside (creating folders); returns its path.
    std::string write(const std::string& name, const std::string& text) const {
        const std::string p = (path_ / name).string();
        std::filesystem::create_directories(std::filesystem::path(p).parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }

  private:
    std::filesystem::path path_;
};

}  // namespace tg::test
