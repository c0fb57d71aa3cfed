// SourceError: a problem in a user's file, with the place it was found, in the
// compiler convention editors jump to: FILE:LINE:COL: error: MESSAGE (1-based).
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg {

struct SourcePos {
    std::string file;
    int line = 0;  // 1-based; 0 = the file as a whole
    int col = 0;   // 1-based
};

enum class Severity { Error, Warning };

class SourceError : public std::runtime_error {
  public:
    SourceError(SourcePos pos, std::string message, Severity severity = Severity::Error);

    const SourcePos& pos() const { return pos_; }
    const std::string& message() const { return message_; }
    Severity severity() const { return severity_; }

    // "FILE:LINE:COL: error: MESSAGE", or "FILE: error: MESSAGE" without a line.
    std::string format() const;

  private:
    SourcePos pos_;
    std::string message_;
    Severity severity_;
};

// Every problem found in one pass over one or more files.
class Diagnostics {
  public:
    void error(SourcePos pos, std::string message);
    void warning(SourcePos pos, std::string message);
    void add(SourceError e) { items_.push_back(std::move(e)); }

    bool has_errors() const;
    const std::vector<SourceError>& items() const { return items_; }

  private:
    std::vector<SourceError> items_;
};

// Thrown when loading fails; carries every problem found.
class LoadError : public std::runtime_error {
  public:
    explicit LoadError(Diagnostics d);
    const Diagnostics& diagnostics() const { return diagnostics_; }

  private:
    Diagnostics diagnostics_;
};

// "a, b, c": for lists of accepted words in messages.
std::string join_words(const std::vector<std::string>& words);

// Strict maps of config and rule files: the problem with key `name`, or an
// empty string when it is fine. Unknown keys get closest_match among
// `allowed` as "did you mean", else the accepted keys; a key seen before (recorded in `first_line`
// with its line) is a duplicate. `what` names the kind of key ("key", "option"), `where` says where
// it stands (" in sensors[0]").
std::string check_map_key(const std::string& name, const std::vector<std::string>& allowed,
                          const std::string& what, const std::string& where, int line,
                          std::map<std::string, int>& first_line);

// Closest candidate by edit distance (case ignored, a swap of two neighbouring
// letters counts as one typo), for "did you mean …?" hints; empty when nothing
// is close enough to be a plausible typo.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tg
