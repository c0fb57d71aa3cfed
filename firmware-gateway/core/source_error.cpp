#include "source_error.h"

#include <algorithm>
#include <numeric>

namespace tg {

namespace {
std::string format_pos(const SourcePos& pos, Severity sev, const std::string& message) {
    std::string out = pos.file.empty() ? std::string("<input>") : pos.file;
    if (pos.line > 0) {
        out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col > 0 ? pos.col : 1);
    }
    out += sev == Severity::Error ? ": error: " : ": warning: ";
    out += message;
    return out;
}

// Optimal string alignment distance, ignoring case: an insertion, deletion,
// substitution or swap of two neighbours costs one ("tikc" -> "tick",
// "Interval" -> "interval").
std::size_t edit_distance(const std::string& a, const std::string& b) {
    const auto low = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    std::vector<std::size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    std::iota(prev.begin(), prev.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const bool same = low(a[i - 1]) == low(b[j - 1]);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
            if (i > 1 && j > 1 && low(a[i - 1]) == low(b[j - 2]) && low(a[i - 2]) == low(b[j - 1]))
                cur[j] = std::min(cur[j], before[j - 2] + 1);
        }
        std::swap(before, prev);
        std::swap(prev, cur);
    }
    return prev[b.size()];
}
}  // namespace

SourceError::SourceError(SourcePos pos, std::string message, Severity severity)
    : std::runtime_error(format_pos(pos, severity, message)),
      pos_(std::move(pos)),
      message_(std::move(message)),
      severity_(severity) {}

std::string SourceError::format() const {
    return what();
}

void Diagnostics::error(SourcePos pos, std::string message) {
    items_.emplace_back(std::move(pos), std::move(message), Severity::Error);
}

void Diagnostics::warning(SourcePos pos, std::string message) {
    items_.emplace_back(std::move(pos), std::move(message), Severity::Warning);
}

bool Diagnostics::has_errors() const {
    return std::any_of(items_.begin(), items_.end(),
                       [](const SourceError& e) { return e.severity() == Severity::Error; });
}

LoadError::LoadError(Diagnostics d)
    : std::runtime_error(d.items().empty() ? std::string("invalid input")
                                           : d.items().front().format()),
      diagnostics_(std::move(d)) {}

std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const std::string& w : words) {
        if (!out.empty()) out += ", ";
        out += w;
    }
    return out;
}

std::string check_map_key(const std::string& name, const std::vector<std::string>& allowed,
                          const std::string& what, const std::string& where, int line,
                          std::map<std::string, int>& first_line) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        const std::string hint = closest_match(name, allowed);
        std::string msg = "unknown " + what + " '" + name + "'" + where;
        if (!hint.empty()) {
            msg += " (did you mean '" + hint + "'?)";
        } else if (allowed.empty()) {
            msg += " (none are accepted)";
        } else {
            msg += " (expected one of: " + join_words(allowed) + ")";
        }
        return msg;
    }
    const auto [it, inserted] = first_line.try_emplace(name, line);
    if (!inserted) {
        return "duplicate " + what + " '" + name + "' (first at line " +
               std::to_string(it->second) + ")";
    }
    return {};
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_d = std::string::npos;
    for (const std::string& c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    // Allow about one typo per three characters, at least one.
    const std::size_t limit = std::max<std::size_t>(1, std::max(word.size(), best.size()) / 3);
    return best_d <= limit ? best : std::string();
}

}  // namespace tg
