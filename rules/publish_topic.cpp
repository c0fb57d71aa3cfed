#include "rules/publish_topic.h"

#include <cstdio>

#include "core/utf8.h"

namespace tg::rules {

std::optional<TopicProblem> check_topic_bytes(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (c == '+' || c == '#') {
            return TopicProblem{
                TopicProblem::Kind::Wildcard, i,
                std::string("contains the MQTT wildcard '") + c + "' at byte " + std::to_string(i)};
        }
        if (c == '\0') {
            return TopicProblem{TopicProblem::Kind::Nul, i,
                                "contains a NUL character at byte " + std::to_string(i)};
        }
        if (static_cast<unsigned char>(c) < 0x80) {
            ++i;
            continue;
        }
        const Utf8Step s = decode_utf8(text, i);
        if (!s.valid) {
            return TopicProblem{
                TopicProblem::Kind::BadUtf8, i,
                "is not valid UTF-8 at byte " + std::to_string(i) + " (" + s.problem + ")"};
        }
        i += s.length;
    }
    return std::nullopt;
}

std::optional<TopicProblem> check_publish_topic(std::string_view topic) {
    if (topic.empty()) return TopicProblem{TopicProblem::Kind::Empty, 0, "is empty"};
    if (topic.size() > kMaxTopicBytes) {
        return TopicProblem{
            TopicProblem::Kind::TooLong, 0,
            "is " + std::to_string(topic.size()) + " bytes long (MQTT allows at most 65535)"};
    }
    return check_topic_bytes(topic);
}

std::string show_topic(std::string_view topic, std::size_t max_bytes) {
    std::string out = "\"";
    std::size_t i = 0;
    while (i < topic.size() && i < max_bytes) {
        const auto u = static_cast<unsigned char>(topic[i]);
        if (u >= 0x80) {
            const Utf8Step s = decode_utf8(topic, i);
            if (s.valid && i + s.length <= max_bytes) {
                out.append(topic.substr(i, s.length));
                i += s.length;
                continue;
            }
            if (s.valid) break;  // a character the cut would split
        }
        if (u == '"' || u == '\\') {
            out += '\\';
            out += static_cast<char>(u);
        } else if (u < 0x20 || u == 0x7F || u >= 0x80) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(u));
            out += buf;
        } else {
            out += static_cast<char>(u);
        }
        ++i;
    }
    out += '"';
    if (i < topic.size()) out += "… (" + std::to_string(topic.size()) + " bytes)";
    return out;
}

}  // namespace tg::rules
