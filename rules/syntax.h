// The expression language of SPEC §5.1, front half: lexer and precedence
// parser producing a syntax tree with byte offsets, so every later error can
// point at the exact column. No names are resolved here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tg::rules {

enum class Op : std::uint8_t {
    Neg,  // unary -
    Not,  // not, !
    Mul,
    Div,
    Mod,
    Add,
    Sub,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,  // and, &&
    Or,   // or, ||
};

// The operator as the canonical form prints it ("and", not "&&").
std::string_view op_text(Op op);

struct SyntaxNode {
    enum class Kind : std::uint8_t { Number, Boolean, String, Name, Unary, Binary, Call };
    Kind kind = Kind::Number;
    // Where the node is reported: a literal's or name's first byte, an
    // operator's own position for unary and binary nodes, a call's name.
    std::size_t offset = 0;
    double number = 0;      // Number (durations already converted to seconds)
    bool duration = false;  // Number written as a duration literal (5m, 1m30s)
    bool boolean = false;   // Boolean
    std::string text;       // String value, Name, Call's function name, literal spelling
    Op op = Op::Neg;        // Unary, Binary
    int height = 1;         // levels of nodes below and including this one
    std::vector<std::unique_ptr<SyntaxNode>> args;  // operands or call arguments
};

struct SyntaxError {
    std::size_t offset = 0;
    std::string message;
};

// Parses one expression; on failure returns null and sets `error`. `text` is
// the whole expression (a rule's `when`, or the inside of a template's {{ }}).
std::unique_ptr<SyntaxNode> parse_expression(std::string_view text, SyntaxError& error);

// Fully parenthesised text with canonical spellings, e.g. "(a.b > (1 + (2 * 3)))".
// Two expressions that differ only in spacing or spelling (&& vs and) print
// the same, which is what rule reloads compare.
std::string canonical(const SyntaxNode& node);

// Deepest nesting the parser accepts; deeper input is an error, not a crash.
inline constexpr int kMaxExpressionDepth = 128;

}  // namespace tg::rules
