#include "utf8.h"

namespace tg {

Utf8Step decode_utf8(std::string_view text, std::size_t at) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(at);
    Utf8Step step;
    if (lead < 0x80) {
        step.valid = true;
        step.code_point = lead;
        return step;
    }
    std::size_t need = 0;                // continuation bytes after the lead
    unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
    char32_t cp = 0;
    if (lead < 0xC0) {
        step.problem = "a continuation byte without a lead byte";
        return step;
    }
    if (lead < 0xC2) {
        step.problem = "an overlong encoding";
        return step;
    }
    if (lead < 0xE0) {
        need = 1;
        cp = lead & 0x1Fu;
    } else if (lead < 0xF0) {
        need = 2;
        cp = lead & 0x0Fu;
        if (lead == 0xE0) lo = 0xA0;  // below: overlong
        if (lead == 0xED) hi = 0x9F;  // above: surrogates
    } else if (lead < 0xF5) {
        need = 3;
        cp = lead & 0x07u;
        if (lead == 0xF0) lo = 0x90;  // below: overlong
        if (lead == 0xF4) hi = 0x8F;  // above: beyond U+10FFFF
    } else {
        step.problem = "a byte that never occurs in UTF-8 (above U+10FFFF)";
        return step;
    }
    std::size_t i = at + 1;
    for (std::size_t k = 0; k < need; ++k, ++i) {
        if (i >= text.size()) {
            step.problem = "a truncated sequence";
            step.length = i - at;
            return step;
        }
        const unsigned char c = byte(i);
        const unsigned char min = k == 0 ? lo : 0x80;
        const unsigned char max = k == 0 ? hi : 0xBF;
        if (c < min || c > max) {
            if (k == 0 && c >= 0x80 && c <= 0xBF) {
                step.problem = lead == 0xED   ? "a UTF-16 surrogate (U+D800..U+DFFF)"
                               : lead == 0xF4 ? "a code point above U+10FFFF"
                                              : "an overlong encoding";
            } else {
                step.problem = "a truncated sequence";
            }
            step.length = i - at;
            return step;
        }
        cp = (cp << 6) | (c & 0x3Fu);
    }
    step.valid = true;
    step.length = need + 1;
    step.code_point = cp;
    return step;
}

std::size_t first_invalid_utf8(std::string_view text, const char** problem) {
    std::size_t i = 0;
    while (i < text.size()) {
        if (static_cast<unsigned char>(text[i]) < 0x80) {
            ++i;
            continue;
        }
        const Utf8Step s = decode_utf8(text, i);
        if (!s.valid) {
            if (problem) *problem = s.problem;
            return i;
        }
        i += s.length;
    }
    return std::string_view::npos;
}

std::size_t utf8_cut(std::string_view text, std::size_t max) {
    if (text.size() <= max) return text.size();
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
        --n;
    return n;
}

std::string utf8_repaired(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const Utf8Step s = decode_utf8(text, i);
        out.append(s.valid ? text.substr(i, s.length) : std::string_view("\xEF\xBF\xBD"));
        i += s.length;
    }
    return out;
}

}  // namespace tg
