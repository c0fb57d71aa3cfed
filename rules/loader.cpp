// Rule paths -> sources -> compiled set; see loader.h.
#include "rules/loader.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "core/file_read.h"

namespace tg::rules {
namespace {

namespace fs = std::filesystem;

bool is_rule_file_name(const fs::path& p) {
    const std::string name = p.filename().string();
    if (name.empty() || name.front() == '.') return false;
    const std::string ext = p.extension().string();
    return ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::vector<RuleSource> read_rule_sources(const std::vector<std::string>& paths,
                                          Diagnostics& diagnostics) {
    std::vector<std::string> files;
    for (const std::string& p : paths) {
        std::error_code ec;
        const fs::file_status st = fs::status(p, ec);
        if (ec || !fs::exists(st)) {
            diagnostics.error(
                SourcePos{p, 0, 0},
                "cannot read: " + (ec ? ec.message() : std::generic_category().message(ENOENT)));
            continue;
        }
        if (!fs::is_directory(st)) {
            files.push_back(p);
            continue;
        }
        std::vector<std::string> found;
        for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
            std::error_code fec;
            if (it->is_directory(fec) || !is_rule_file_name(it->path())) continue;
            found.push_back(it->path().string());
        }
        if (ec) {
            diagnostics.error(SourcePos{p, 0, 0}, "cannot list folder: " + ec.message());
            continue;
        }
        files.insert(files.end(), found.begin(), found.end());
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());

    std::vector<RuleSource> out;
    for (const std::string& f : files) {
        RuleSource s;
        s.path = f;
        std::string why;
        // A FIFO or device named *.yaml (or a symlink to /dev/zero) is refused
        // here, never waited on: a reload must not hang the event loop.
        if (!read_regular_file(f, kMaxConfigFileBytes, s.text, why)) {
            diagnostics.error(SourcePos{f, 0, 0}, "cannot read: " + why);
            continue;
        }
        out.push_back(std::move(s));
    }
    return out;
}

CompileResult load_rules(const std::vector<std::string>& paths, const CheckOptions& options) {
    Diagnostics read_problems;
    std::vector<RuleSource> sources = read_rule_sources(paths, read_problems);
    CompileResult result = compile_rules(std::move(sources), options);
    if (read_problems.items().empty()) return result;
    Diagnostics all = std::move(read_problems);
    for (const SourceError& e : result.diagnostics.items())
        all.add(e);
    result.diagnostics = std::move(all);
    if (result.diagnostics.has_errors()) result.rules.reset();
    return result;
}

Diagnostics check_rule_paths(const std::vector<std::string>& paths, const CheckOptions& options) {
    return load_rules(paths, options).diagnostics;
}

}  // namespace tg::rules
