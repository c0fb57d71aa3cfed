// Positions and raw text of YAML values, for errors that point inside them.
// yaml-cpp gives the mark of a node's first byte but not its style, so the
// style is read from the source text itself.
#include "rules/yaml_text.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <sstream>

namespace tg::rules {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string trim(std::string_view s) {
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\r'))
        s.remove_suffix(1);
    while (!s.empty() && is_blank(s.front()))
        s.remove_prefix(1);
    return std::string(s);
}

// Cuts a trailing " # comment" that is not inside quotes.
std::string_view without_comment(std::string_view s) {
    char quote = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (quote) {
            if (c == quote) quote = 0;
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '#' && (i == 0 || is_blank(s[i - 1]))) {
            return s.substr(0, i);
        }
    }
    return s;
}

// Counts documents (and notes where the second starts) without building them.
class DocumentCounter final : public YAML::EventHandler {
  public:
    void OnDocumentStart(const YAML::Mark& mark) override {
        if (count == 1) second = mark;
        ++count;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    int count = 0;
    YAML::Mark second;
};

constexpr std::array<std::string_view, 5> kExpressionKeys{
    {"when", "clear_when", "log", "topic", "payload"}};

}  // namespace

std::string_view strip_bom(std::string_view text) {
    if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
        static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF) {
        text.remove_prefix(3);
    }
    return text;
}

SourceText::SourceText(std::string file, std::string_view text)
    : file_(std::move(file)), text_(text) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < text_.size(); ++i) {
        if (text_[i] == '\n') line_starts_.push_back(i + 1);
    }
}

SourcePos SourceText::at_byte(std::size_t byte) const {
    byte = std::min(byte, text_.size());
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), byte);
    const auto line = static_cast<std::size_t>(it - line_starts_.begin()) - 1;
    return SourcePos{file_, static_cast<int>(line + 1),
                     static_cast<int>(byte - line_starts_[line] + 1)};
}

SourcePos SourceText::at_mark(const YAML::Mark& m) const {
    if (m.is_null() || m.line < 0 || m.column < 0) return SourcePos{file_, 1, 1};
    return SourcePos{file_, m.line + 1, m.column + 1};
}

SourcePos SourceText::at_node(const YAML::Node& n, const SourcePos& fallback) const {
    if (!n.IsDefined() || n.IsNull() || n.Mark().is_null()) return fallback;
    return at_mark(n.Mark());
}

std::string_view SourceText::line(int line) const {
    if (line < 0 || static_cast<std::size_t>(line) >= line_starts_.size()) return {};
    const std::size_t start = line_starts_[static_cast<std::size_t>(line)];
    std::size_t end = text_.find('\n', start);
    if (end == std::string_view::npos) end = text_.size();
    return text_.substr(start, end - start);
}

std::size_t SourceText::scalar_start(const YAML::Node& scalar, char& style) const {
    style = 'p';
    const YAML::Mark m = scalar.Mark();
    if (m.is_null() || m.pos < 0) return text_.size();
    auto pos = static_cast<std::size_t>(m.pos);
    // Skip a tag (!x) or an anchor (&x) written before the value.
    while (pos < text_.size() && (text_[pos] == '!' || text_[pos] == '&')) {
        while (pos < text_.size() && !is_blank(text_[pos]) && text_[pos] != '\n')
            ++pos;
        while (pos < text_.size() && is_blank(text_[pos]))
            ++pos;
    }
    if (pos < text_.size()) {
        const char c = text_[pos];
        if (c == '"' || c == '\'' || c == '|' || c == '>') style = c;
    }
    return pos;
}

SourcePos SourceText::in_scalar(const YAML::Node& scalar, std::size_t offset) const {
    char style = 'p';
    std::size_t ri = scalar_start(scalar, style);
    if (ri >= text_.size()) return at_node(scalar, SourcePos{file_, 1, 1});
    const std::size_t n = text_.size();
    std::size_t indent = 0;
    if (style == '"' || style == '\'') {
        ++ri;
    } else if (style == '|' || style == '>') {
        // Content starts on the next line, indented by the first non-blank
        // line's indentation.
        while (ri < n && text_[ri] != '\n')
            ++ri;
        if (ri < n) ++ri;
        std::size_t probe = ri;
        while (probe < n) {
            std::size_t k = probe;
            while (k < n && text_[k] == ' ')
                ++k;
            if (k < n && text_[k] != '\n') {
                indent = k - probe;
                break;
            }
            if (k >= n) break;
            probe = k + 1;
        }
        std::size_t k = 0;
        while (k < indent && ri < n && text_[ri] == ' ') {
            ++ri;
            ++k;
        }
    }
    std::size_t vi = 0;
    while (vi < offset && ri < n) {
        const char c = text_[ri];
        if (c == '\n') {
            ++ri;
            if (style == '|' || style == '>') {
                std::size_t k = 0;
                while (k < indent && ri < n && text_[ri] == ' ') {
                    ++ri;
                    ++k;
                }
            } else {
                // Folding: a line break and the next line's indentation are
                // one space (or one newline per blank line) in the value.
                while (ri < n && (is_blank(text_[ri]) || text_[ri] == '\r'))
                    ++ri;
                while (ri < n && text_[ri] == '\n') {
                    ++ri;
                    ++vi;
                    while (ri < n && (is_blank(text_[ri]) || text_[ri] == '\r'))
                        ++ri;
                }
            }
            ++vi;
            continue;
        }
        if (style == '"' && c == '\\' && ri + 1 < n) {
            const char e = text_[ri + 1];
            if (e == 'u') {
                ri += 6;
            } else if (e == 'x') {
                ri += 4;
            } else if (e == 'U') {
                ri += 10;
            } else {
                ri += 2;
            }
            ++vi;
            continue;
        }
        if (style == '\'' && c == '\'' && ri + 1 < n && text_[ri + 1] == '\'') {
            ri += 2;
            ++vi;
            continue;
        }
        ++ri;
        ++vi;
    }
    return at_byte(std::min(ri, n));
}

std::string SourceText::raw_value_after_key(const YAML::Node& key) const {
    const YAML::Mark m = key.Mark();
    if (m.is_null() || m.pos < 0) return {};
    auto pos = static_cast<std::size_t>(m.pos);
    if (pos >= text_.size()) return {};
    if (text_[pos] == '"' || text_[pos] == '\'') {
        const char q = text_[pos];
        ++pos;
        while (pos < text_.size() && text_[pos] != q && text_[pos] != '\n')
            ++pos;
        if (pos < text_.size()) ++pos;
    }
    while (pos < text_.size() && text_[pos] != ':' && text_[pos] != '\n')
        ++pos;
    if (pos >= text_.size() || text_[pos] != ':') return {};
    ++pos;
    std::size_t end = text_.find('\n', pos);
    if (end == std::string_view::npos) end = text_.size();
    std::string raw = trim(without_comment(text_.substr(pos, end - pos)));
    if (!raw.empty() && (raw.front() == '{' || raw.front() == '[')) {
        // Inside a flow map the line goes on after the value: keep the
        // balanced bracket span only.
        int depth = 0;
        char quote = 0;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            const char c = raw[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                raw.resize(i + 1);
                break;
            }
        }
    }
    return raw;
}

bool starts_yaml_symptom(std::string_view raw) {
    if (raw.empty()) return false;
    const std::string_view specials = "!{[*&|>%@`";
    return specials.find(raw.front()) != std::string_view::npos ||
           raw.find(": ") != std::string_view::npos;
}

std::string yaml_quote(std::string_view raw) {
    if (raw.find('"') == std::string_view::npos && raw.find('\\') == std::string_view::npos) {
        return "\"" + std::string(raw) + "\"";
    }
    std::string out = "'";
    for (char c : raw) {
        out += c;
        if (c == '\'') out += '\'';
    }
    out += '\'';
    return out;
}

std::string quote_hint(std::string_view key, std::string_view raw) {
    std::string why;
    if (raw.empty()) {
        return "in YAML, quote an expression or template that starts with ! { [ * & | > % @ "
               "or contains ': '";
    }
    switch (raw.front()) {
        case '{':
            why = "YAML read this as a map because it starts with '{'";
            break;
        case '[':
            why = "YAML read this as a list because it starts with '['";
            break;
        case '!':
            why = "YAML read this as a tag because it starts with '!'";
            break;
        case '&':
            why = "YAML read this as an anchor because it starts with '&'";
            break;
        case '*':
            why = "YAML read this as an alias because it starts with '*'";
            break;
        case '|':
        case '>':
            why = std::string("YAML read this as a block scalar because it starts with '") +
                  raw.front() + "'";
            break;
        case '%':
        case '@':
        case '`':
            why = std::string("YAML does not allow plain text to start with '") + raw.front() + "'";
            break;
        default:
            why = "YAML read this as a map because it contains ': '";
            break;
    }
    std::string out = why + "; quote it: ";
    if (!key.empty()) out += std::string(key) + ": ";
    out += yaml_quote(raw);
    return out;
}

std::string syntax_error_hint(const SourceText& src, const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0) return {};
    for (int l = mark.line; l >= 0 && l >= mark.line - 1; --l) {
        std::string_view s = src.line(l);
        while (!s.empty() && is_blank(s.front()))
            s.remove_prefix(1);
        while (s.size() >= 2 && s[0] == '-' && is_blank(s[1])) {
            s.remove_prefix(2);
            while (!s.empty() && is_blank(s.front()))
                s.remove_prefix(1);
        }
        std::size_t k = 0;
        while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '_'))
            ++k;
        if (k == 0 || k + 1 >= s.size() || s[k] != ':' || !is_blank(s[k + 1])) continue;
        const std::string_view key = s.substr(0, k);
        if (std::find(kExpressionKeys.begin(), kExpressionKeys.end(), key) ==
            kExpressionKeys.end()) {
            continue;
        }
        const std::string rest = trim(without_comment(s.substr(k + 1)));
        if (starts_yaml_symptom(rest)) return quote_hint(key, rest);
        if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
            return "a quoted value must be quoted as a whole: " + std::string(key) + ": " +
                   yaml_quote(rest);
        }
    }
    return {};
}

int estimated_yaml_depth(std::string_view text) {
    int deepest = 0;
    int flow = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        // Leading indentation and block indicators of one line.
        int lead = 0;
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '-' ||
                                   text[i] == '?' || text[i] == ':')) {
            ++lead;
            ++i;
        }
        deepest = std::max(deepest, lead / 2);
        const std::size_t line_start = i;
        char quote = 0;
        while (i < text.size() && text[i] != '\n') {
            const char c = text[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if ((c == '"' || c == '\'') &&
                       (i == line_start || is_blank(text[i - 1]) || text[i - 1] == '[' ||
                        text[i - 1] == '{' || text[i - 1] == ',' || text[i - 1] == ':')) {
                // Only a quote that can open a YAML quoted scalar hides brackets.
                quote = c;
            } else if (c == '#' && (i == 0 || is_blank(text[i - 1]))) {
                while (i < text.size() && text[i] != '\n')
                    ++i;
                break;
            } else if (c == '[' || c == '{') {
                ++flow;
                deepest = std::max(deepest, flow);
            } else if ((c == ']' || c == '}') && flow > 0) {
                --flow;
            }
            ++i;
        }
        if (i < text.size()) ++i;
    }
    return deepest;
}

YamlDocument parse_yaml_document(const SourceText& src, std::string_view kind) {
    YamlDocument doc;
    const std::string_view body = src.text();
    auto refuse = [&](SourcePos at, std::string message) {
        doc.errors.emplace_back(std::move(at), std::move(message));
        doc.root = YAML::Node();
        doc.parsed = false;
        return doc;
    };

    // YAML text has no C0 control characters but tab and line breaks.
    for (std::size_t i = 0; i < body.size(); ++i) {
        const auto c = static_cast<unsigned char>(body[i]);
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            const char* hex = "0123456789abcdef";
            return refuse(src.at_byte(i), std::string("control character (byte 0x") + hex[c >> 4] +
                                              hex[c & 0xF] + ") in a " + std::string(kind) +
                                              "; it must be UTF-8 text");
        }
    }
    if (estimated_yaml_depth(body) > kMaxYamlDepth) {
        return refuse(SourcePos{src.file(), 1, 1}, "the file is nested too deeply (more than " +
                                                       std::to_string(kMaxYamlDepth) +
                                                       " levels) to be a " + std::string(kind));
    }
    try {
        DocumentCounter counter;
        {
            std::istringstream in{std::string(body)};
            YAML::Parser parser(in);
            while (counter.count < 2 && parser.HandleNextDocument(counter)) {
            }
        }
        if (counter.count > 1) {
            const SourcePos at = src.at_mark(counter.second);
            const std::size_t byte = static_cast<std::size_t>(std::max(counter.second.pos, 0));
            if (byte < body.size() && body[byte] == ',') {
                return refuse(at, "unexpected ',' outside a flow collection ([…] or {…})");
            }
            doc.errors.emplace_back(
                at, "a " + std::string(kind) + " holds one YAML document; found a second one here");
        }
        // Only the first document: YAML::Load stops after it.
        doc.root = YAML::Load(std::string(body));
    } catch (const YAML::Exception& e) {
        std::string msg = e.msg;
        const std::string hint = syntax_error_hint(src, e.mark);
        if (!hint.empty()) msg += "; " + hint;
        return refuse(src.at_mark(e.mark), msg);
    }
    doc.parsed = true;
    return doc;
}

}  // namespace tg::rules
