// Lexer and Pratt parser for rule expressions. The binding powers follow the
// precedence table of SPEC §5.1 (comparison binds tighter than equality, both
// looser than arithmetic; unary operators bind tighter than any binary one).
#include "rules/syntax.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <system_error>

#include "core/json_writer.h"
#include "core/units.h"
#include "core/utf8.h"
#include "core/value.h"

namespace tg::rules {
namespace {

enum class Tok : std::uint8_t {
    End,
    Number,
    String,
    Name,
    True,
    False,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    And,
    Or,
    Not,
};

struct Token {
    Tok kind = Tok::End;
    std::size_t offset = 0;
    std::string text;  // Name spelling, decoded String, or the literal's source text
    double number = 0;
    bool duration = false;
};

bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
    return is_name_char(c);
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Lexer {
  public:
    explicit Lexer(std::string_view text) : text_(text) {}

    // Reads the next token; false with `error` set on a lexical error.
    bool next(Token& t, SyntaxError& error) {
        skip_space();
        t = Token{};
        t.offset = i_;
        if (i_ >= text_.size()) {
            t.kind = Tok::End;
            return true;
        }
        const char c = text_[i_];
        if (is_digit(c)) return number(t, error);
        if (is_name_start(c)) return name(t, error);
        if (c == '"') return string(t, error);
        const char n = i_ + 1 < text_.size() ? text_[i_ + 1] : '\0';
        auto one = [&](Tok k) {
            t.kind = k;
            ++i_;
            return true;
        };
        auto two = [&](Tok k) {
            t.kind = k;
            i_ += 2;
            return true;
        };
        switch (c) {
            case '(':
                return one(Tok::LParen);
            case ')':
                return one(Tok::RParen);
            case ',':
                return one(Tok::Comma);
            case '+':
                return one(Tok::Plus);
            case '-':
                return one(Tok::Minus);
            case '*':
                return one(Tok::Star);
            case '/':
                return one(Tok::Slash);
            case '%':
                return one(Tok::Percent);
            case '<':
                return n == '=' ? two(Tok::Le) : one(Tok::Lt);
            case '>':
                return n == '=' ? two(Tok::Ge) : one(Tok::Gt);
            case '=':
                if (n == '=') return two(Tok::EqEq);
                return fail(error, "unexpected '=' (use '==' to compare)");
            case '!':
                return n == '=' ? two(Tok::Ne) : one(Tok::Not);
            case '&':
                if (n == '&') return two(Tok::And);
                return fail(error, "unexpected '&' (use '&&' or 'and')");
            case '|':
                if (n == '|') return two(Tok::Or);
                return fail(error, "unexpected '|' (use '||' or 'or')");
            case '\'':
                return fail(error, "strings use double quotes, e.g. \"open\"");
            case '.':
                if (is_digit(n)) return fail(error, "a number needs a digit before '.' (e.g. 0.5)");
                return fail(error, "unexpected '.'");
            default:
                break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7F) {
            return fail(error, std::string("unexpected character '") + c + "'");
        }
        return fail(error, "unexpected character (byte 0x" + hex(u) + ")");
    }

  private:
    static std::string hex(unsigned v) {
        const char* digits = "0123456789abcdef";
        return {digits[(v >> 4) & 0xF], digits[v & 0xF]};
    }

    bool fail(SyntaxError& error, std::string message) {
        error.offset = i_;
        error.message = std::move(message);
        return false;
    }

    void skip_space() {
        while (i_ < text_.size() &&
               (text_[i_] == ' ' || text_[i_] == '\t' || text_[i_] == '\n' || text_[i_] == '\r')) {
            ++i_;
        }
    }

    bool number(Token& t, SyntaxError& error) {
        const std::size_t start = i_;
        bool decimal = false;
        while (i_ < text_.size() && is_digit(text_[i_]))
            ++i_;
        if (i_ < text_.size() && text_[i_] == '.') {
            if (i_ + 1 >= text_.size() || !is_digit(text_[i_ + 1])) {
                return fail(error, "expected digits after the '.' of a number");
            }
            decimal = true;
            ++i_;
            while (i_ < text_.size() && is_digit(text_[i_]))
                ++i_;
        }
        if (i_ < text_.size() && (text_[i_] == 'e' || text_[i_] == 'E')) {
            std::size_t j = i_ + 1;
            if (j < text_.size() && (text_[j] == '+' || text_[j] == '-')) ++j;
            if (j < text_.size() && is_digit(text_[j])) {
                decimal = true;
                i_ = j;
                while (i_ < text_.size() && is_digit(text_[i_]))
                    ++i_;
            }
        }
        if (i_ < text_.size() && is_alnum(text_[i_])) {
            // A duration literal: digits and unit letters, e.g. 5m, 1m30s, 250ms.
            while (i_ < text_.size() && is_alnum(text_[i_]))
                ++i_;
            const std::string_view spelled = text_.substr(start, i_ - start);
            if (decimal) {
                i_ = start;
                return fail(error, "invalid duration '" + std::string(spelled) +
                                       "': durations are whole numbers of units (e.g. 90s, 1m30s)");
            }
            std::string why;
            const auto d = parse_duration(spelled, &why);
            if (!d) {
                i_ = start;
                return fail(error, why);
            }
            t.kind = Tok::Number;
            t.duration = true;
            t.number = static_cast<double>(d->count()) / 1000.0;
            t.text = std::string(spelled);
            return true;
        }
        const std::string_view spelled = text_.substr(start, i_ - start);
        double v = 0;
        const auto res = std::from_chars(spelled.data(), spelled.data() + spelled.size(), v);
        if (res.ec != std::errc{} || !std::isfinite(v)) {
            i_ = start;
            return fail(error, "number '" + std::string(spelled) + "' is out of range");
        }
        t.kind = Tok::Number;
        t.number = v;
        t.text = std::string(spelled);
        return true;
    }

    bool name(Token& t, SyntaxError& error) {
        const std::size_t start = i_;
        for (;;) {
            while (i_ < text_.size() && is_name_char(text_[i_]))
                ++i_;
            if (i_ < text_.size() && text_[i_] == '.') {
                if (i_ + 1 < text_.size() && is_name_start(text_[i_ + 1])) {
                    ++i_;
                    continue;
                }
                ++i_;
                return fail(error,
                            "expected a name after '.' (sensor names are like "
                            "greenhouse.temp)");
            }
            break;
        }
        t.text = std::string(text_.substr(start, i_ - start));
        if (t.text == "and") {
            t.kind = Tok::And;
        } else if (t.text == "or") {
            t.kind = Tok::Or;
        } else if (t.text == "not") {
            t.kind = Tok::Not;
        } else if (t.text == "true") {
            t.kind = Tok::True;
        } else if (t.text == "false") {
            t.kind = Tok::False;
        } else {
            t.kind = Tok::Name;
        }
        return true;
    }

    bool hex4(std::size_t at, std::uint32_t& out) const {
        if (at + 4 > text_.size()) return false;
        out = 0;
        for (std::size_t k = at; k < at + 4; ++k) {
            const char c = text_[k];
            std::uint32_t d = 0;
            if (c >= '0' && c <= '9') {
                d = static_cast<std::uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                d = static_cast<std::uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                d = static_cast<std::uint32_t>(c - 'A' + 10);
            } else {
                return false;
            }
            out = out * 16 + d;
        }
        return true;
    }

    bool string(Token& t, SyntaxError& error) {
        const std::size_t start = i_;
        ++i_;
        std::string out;
        for (;;) {
            if (i_ >= text_.size()) {
                i_ = start;
                return fail(error, "unterminated string (missing closing '\"')");
            }
            const char c = text_[i_];
            if (c == '"') {
                ++i_;
                break;
            }
            if (c != '\\') {
                out += c;
                ++i_;
                continue;
            }
            if (i_ + 1 >= text_.size()) {
                i_ = start;
                return fail(error, "unterminated string (missing closing '\"')");
            }
            const char e = text_[i_ + 1];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    std::uint32_t cp = 0;
                    if (!hex4(i_ + 2, cp)) return fail(error, "\\u needs four hex digits");
                    std::size_t used = 6;
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        std::uint32_t low = 0;
                        if (i_ + 7 < text_.size() && text_[i_ + 6] == '\\' &&
                            text_[i_ + 7] == 'u' && hex4(i_ + 8, low) && low >= 0xDC00 &&
                            low <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                            used = 12;
                        } else {
                            return fail(error, "unpaired surrogate in \\u escape");
                        }
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return fail(error, "unpaired surrogate in \\u escape");
                    }
                    append_utf8(out, cp);
                    i_ += used;
                    continue;
                }
                default: {
                    const auto u = static_cast<unsigned char>(e);
                    std::string shown = (u >= 0x20 && u < 0x7F) ? std::string(1, e) : "?";
                    return fail(error,
                                "unknown escape '\\" + shown +
                                    "' in string (use \\\", \\\\, \\n, \\t, \\r or \\uXXXX)");
                }
            }
            i_ += 2;
        }
        t.kind = Tok::String;
        t.text = std::move(out);
        return true;
    }

    std::string_view text_;
    std::size_t i_ = 0;
};

std::string describe(const Token& t) {
    switch (t.kind) {
        case Tok::End:
            return "the end of the expression";
        case Tok::Number:
            return "'" + t.text + "'";
        case Tok::String:
            return "a string";
        case Tok::Name:
        case Tok::True:
        case Tok::False:
        case Tok::And:
        case Tok::Or:
        case Tok::Not:
            return "'" + t.text + "'";
        case Tok::LParen:
            return "'('";
        case Tok::RParen:
            return "')'";
        case Tok::Comma:
            return "','";
        default:
            return "an operator";
    }
}

struct BinaryInfo {
    int power = 0;  // 0: not a binary operator
    Op op = Op::Add;
};

BinaryInfo binary_info(Tok k) {
    switch (k) {
        case Tok::Or:
            return {1, Op::Or};
        case Tok::And:
            return {2, Op::And};
        case Tok::EqEq:
            return {3, Op::Eq};
        case Tok::Ne:
            return {3, Op::Ne};
        case Tok::Lt:
            return {4, Op::Lt};
        case Tok::Le:
            return {4, Op::Le};
        case Tok::Gt:
            return {4, Op::Gt};
        case Tok::Ge:
            return {4, Op::Ge};
        case Tok::Plus:
            return {5, Op::Add};
        case Tok::Minus:
            return {5, Op::Sub};
        case Tok::Star:
            return {6, Op::Mul};
        case Tok::Slash:
            return {6, Op::Div};
        case Tok::Percent:
            return {6, Op::Mod};
        default:
            return {};
    }
}

using NodePtr = std::unique_ptr<SyntaxNode>;

class Parser {
  public:
    Parser(std::string_view text, SyntaxError& error) : lexer_(text), error_(error) {}

    NodePtr parse() {
        if (!advance()) return nullptr;
        NodePtr n = expression(0, 0);
        if (!n) return nullptr;
        if (tok_.kind != Tok::End) {
            if (tok_.kind == Tok::RParen) return fail(tok_.offset, "unmatched ')'");
            return fail(tok_.offset, "expected an operator, found " + describe(tok_));
        }
        return n;
    }

  private:
    bool advance() { return lexer_.next(tok_, error_); }

    NodePtr fail(std::size_t offset, std::string message) {
        error_.offset = offset;
        error_.message = std::move(message);
        return nullptr;
    }

    NodePtr too_deep(std::size_t offset) {
        return fail(offset, "expression is nested too deeply (more than " +
                                std::to_string(kMaxExpressionDepth) + " levels)");
    }

    NodePtr expression(int min_power, int depth) {
        if (depth > kMaxExpressionDepth) return too_deep(tok_.offset);
        NodePtr left = prefix(depth + 1);
        if (!left) return nullptr;
        for (;;) {
            const BinaryInfo info = binary_info(tok_.kind);
            if (info.power == 0 || info.power <= min_power) break;
            const std::size_t op_offset = tok_.offset;
            if (!advance()) return nullptr;
            NodePtr right = expression(info.power, depth + 1);
            if (!right) return nullptr;
            auto node = std::make_unique<SyntaxNode>();
            node->kind = SyntaxNode::Kind::Binary;
            node->op = info.op;
            node->offset = op_offset;
            node->height = 1 + std::max(left->height, right->height);
            if (node->height > kMaxExpressionDepth) return too_deep(op_offset);
            node->args.push_back(std::move(left));
            node->args.push_back(std::move(right));
            left = std::move(node);
        }
        return left;
    }

    NodePtr prefix(int depth) {
        if (depth > kMaxExpressionDepth) return too_deep(tok_.offset);
        const Token t = tok_;
        auto node = std::make_unique<SyntaxNode>();
        node->offset = t.offset;
        switch (t.kind) {
            case Tok::Number:
                node->kind = SyntaxNode::Kind::Number;
                node->number = t.number;
                node->duration = t.duration;
                node->text = t.text;
                return advance() ? std::move(node) : nullptr;
            case Tok::String:
                node->kind = SyntaxNode::Kind::String;
                node->text = t.text;
                return advance() ? std::move(node) : nullptr;
            case Tok::True:
            case Tok::False:
                node->kind = SyntaxNode::Kind::Boolean;
                node->boolean = t.kind == Tok::True;
                node->text = t.text;
                return advance() ? std::move(node) : nullptr;
            case Tok::Minus:
            case Tok::Not: {
                if (!advance()) return nullptr;
                NodePtr operand = prefix(depth + 1);
                if (!operand) return nullptr;
                node->kind = SyntaxNode::Kind::Unary;
                node->op = t.kind == Tok::Minus ? Op::Neg : Op::Not;
                node->height = operand->height + 1;
                if (node->height > kMaxExpressionDepth) return too_deep(t.offset);
                node->args.push_back(std::move(operand));
                return node;
            }
            case Tok::LParen: {
                if (!advance()) return nullptr;
                NodePtr inner = expression(0, depth + 1);
                if (!inner) return nullptr;
                if (tok_.kind != Tok::RParen) {
                    return fail(tok_.offset,
                                "expected ')' to close the '(', found " + describe(tok_));
                }
                return advance() ? std::move(inner) : nullptr;
            }
            case Tok::Name:
                return name_or_call(std::move(node), t, depth);
            case Tok::End:
                return fail(t.offset, "expected an expression, found the end of the expression");
            default:
                return fail(t.offset, "expected an expression, found " + describe(t));
        }
    }

    NodePtr name_or_call(NodePtr node, const Token& t, int depth) {
        node->text = t.text;
        if (!advance()) return nullptr;
        if (tok_.kind != Tok::LParen) {
            node->kind = SyntaxNode::Kind::Name;
            return node;
        }
        node->kind = SyntaxNode::Kind::Call;
        if (!advance()) return nullptr;
        if (tok_.kind != Tok::RParen) {
            for (;;) {
                NodePtr arg = expression(0, depth + 1);
                if (!arg) return nullptr;
                node->height = std::max(node->height, arg->height + 1);
                if (node->height > kMaxExpressionDepth) return too_deep(t.offset);
                node->args.push_back(std::move(arg));
                if (tok_.kind == Tok::Comma) {
                    if (!advance()) return nullptr;
                    continue;
                }
                if (tok_.kind == Tok::RParen) break;
                return fail(tok_.offset, "expected ',' or ')' in the arguments of '" + t.text +
                                             "', found " + describe(tok_));
            }
        }
        return advance() ? std::move(node) : nullptr;
    }

    Lexer lexer_;
    SyntaxError& error_;
    Token tok_;
};

// A string literal in the canonical form, which state files store as JSON and
// so must be UTF-8: bytes that are not are written \xHH, which JSON escaping
// (always doubling a backslash) never produces.
void print_string(std::string& out, std::string_view s) {
    out += '"';
    std::size_t run = 0;
    auto flush = [&](std::size_t end) {
        if (end == run) return;
        std::string escaped;
        append_json_string(escaped, s.substr(run, end - run));
        out.append(escaped, 1, escaped.size() - 2);  // without its quotes
    };
    for (std::size_t i = 0; i < s.size();) {
        if (const Utf8Step step = decode_utf8(s, i); step.valid) {
            i += step.length;
            continue;
        }
        flush(i);
        const char* hex = "0123456789abcdef";
        const auto b = static_cast<unsigned char>(s[i]);
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 0xF];
        run = ++i;
    }
    flush(s.size());
    out += '"';
}

void print(const SyntaxNode& n, std::string& out) {
    switch (n.kind) {
        case SyntaxNode::Kind::Number:
            if (n.duration) {
                out += format_duration(std::chrono::milliseconds(
                    static_cast<long long>(std::llround(n.number * 1000))));
            } else {
                out += format_number(n.number);
            }
            return;
        case SyntaxNode::Kind::Boolean:
            out += n.boolean ? "true" : "false";
            return;
        case SyntaxNode::Kind::String:
            print_string(out, n.text);
            return;
        case SyntaxNode::Kind::Name:
            out += n.text;
            return;
        case SyntaxNode::Kind::Unary:
            out += '(';
            out += n.op == Op::Neg ? "-" : "not ";
            print(*n.args[0], out);
            out += ')';
            return;
        case SyntaxNode::Kind::Binary:
            out += '(';
            print(*n.args[0], out);
            out += ' ';
            out += op_text(n.op);
            out += ' ';
            print(*n.args[1], out);
            out += ')';
            return;
        case SyntaxNode::Kind::Call:
            out += n.text;
            out += '(';
            for (std::size_t i = 0; i < n.args.size(); ++i) {
                if (i > 0) out += ", ";
                print(*n.args[i], out);
            }
            out += ')';
            return;
    }
}

}  // namespace

std::string_view op_text(Op op) {
    switch (op) {
        case Op::Neg:
            return "-";
        case Op::Not:
            return "not";
        case Op::Mul:
            return "*";
        case Op::Div:
            return "/";
        case Op::Mod:
            return "%";
        case Op::Add:
            return "+";
        case Op::Sub:
            return "-";
        case Op::Lt:
            return "<";
        case Op::Le:
            return "<=";
        case Op::Gt:
            return ">";
        case Op::Ge:
            return ">=";
        case Op::Eq:
            return "==";
        case Op::Ne:
            return "!=";
        case Op::And:
            return "and";
        case Op::Or:
            return "or";
    }
    return "?";
}

std::unique_ptr<SyntaxNode> parse_expression(std::string_view text, SyntaxError& error) {
    Parser p(text, error);
    return p.parse();
}

std::string canonical(const SyntaxNode& node) {
    std::string out;
    print(node, out);
    return out;
}

}  // namespace tg::rules
