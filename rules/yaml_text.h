// Where things are in a YAML file: line and column of a node, of a byte
// inside a scalar's value (so an error in an expression points at its exact
// column), and the raw text a value was written as, to explain the YAML
// symptom of SPEC §5 ("quote an expression that starts with ! { [ * & | > % @
// or contains ': '").
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/source_error.h"

namespace tg::rules {

class SourceText {
  public:
    // `text` without a byte-order mark (see strip_bom).
    SourceText(std::string file, std::string_view text);

    const std::string& file() const { return file_; }
    std::string_view text() const { return text_; }

    SourcePos at_byte(std::size_t byte) const;
    SourcePos at_mark(const YAML::Mark& m) const;
    // A node's position; null nodes (which yaml-cpp places oddly) report at
    // `fallback`.
    SourcePos at_node(const YAML::Node& n, const SourcePos& fallback) const;
    // The position of byte `offset` of a scalar's value, mapped through the
    // scalar's style (plain, quoted, block); best effort across escapes and
    // folded lines.
    SourcePos in_scalar(const YAML::Node& scalar, std::size_t offset) const;

    // The text a value was written as, from `key`'s line after "key:", up to
    // the end of that line without a trailing comment; empty when not found.
    std::string raw_value_after_key(const YAML::Node& key) const;
    // The text of the 0-based line `line`.
    std::string_view line(int line) const;

    // First byte of the scalar's content in the file (after any tag or
    // anchor), and its style: 'p' plain, '"', '\'', '|' or '>'.
    std::size_t scalar_start(const YAML::Node& scalar, char& style) const;

  private:
    std::string file_;
    std::string_view text_;
    std::vector<std::size_t> line_starts_;
};

// Drops a UTF-8 byte-order mark; yaml-cpp's marks do not count it.
std::string_view strip_bom(std::string_view text);

// Characters that make YAML read a value as something other than plain text.
bool starts_yaml_symptom(std::string_view raw);

// `raw` quoted so that YAML reads it back as the same text.
std::string yaml_quote(std::string_view raw);

// For an expression or template value that YAML did not read as plain text:
// an explanation and the quoted form, e.g.
//   "YAML read this as a map because it starts with '{'; quote it: log: \"{{x}}\""
// `key` may be empty (list items).
std::string quote_hint(std::string_view key, std::string_view raw);

// A hint to append to a YAML syntax error at `mark`, when the line (or the one
// before) holds `key: value` whose value shows the symptom; empty otherwise.
std::string syntax_error_hint(const SourceText& src, const YAML::Mark& mark);

// Deepest flow/indentation nesting in `text`, estimated without parsing:
// yaml-cpp recurses per level, so absurd nesting is refused before it.
int estimated_yaml_depth(std::string_view text);

// Deepest nesting a config or rule file may have (see estimated_yaml_depth).
inline constexpr int kMaxYamlDepth = 64;

// The one document of a config or rule file.
struct YamlDocument {
    YAML::Node root;  // the first document; null when the file holds none
    std::vector<SourceError> errors;
    // False: the text was refused before or while parsing and `root` means
    // nothing. True with errors: a second document was found; the first is
    // in `root`, so its own problems can be reported too.
    bool parsed = false;
};

// Parses the first YAML document of `src` (text without a byte-order mark),
// with every guard yaml-cpp 0.7 needs: C0 control characters other than tab
// and line breaks are refused before parsing (it loops forever on a NUL
// byte), so is nesting deeper than kMaxYamlDepth (it recurses per level);
// documents are counted with a bounded event pass instead of YAML::LoadAll,
// which never returns when a ',' stands outside any flow collection (it
// yields empty documents forever, growing memory, without consuming it).
// A syntax error is one error at its place, with syntax_error_hint.
// `kind` names the file in messages: "rule file", "config file".
YamlDocument parse_yaml_document(const SourceText& src, std::string_view kind);

}  // namespace tg::rules
