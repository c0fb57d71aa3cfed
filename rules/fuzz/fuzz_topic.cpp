// libFuzzer target: check_publish_topic on arbitrary bytes. Never crashes,
// and whatever it accepts satisfies SPEC §5.1 by a second, independent
// reading: 1..65535 bytes, no '+', '#' or NUL, and UTF-8 that decodes to
// scalar values in their shortest form. A refusal names a byte inside the
// topic that is really at fault, and show_topic's text is always UTF-8.
// Build and run (see rules/CMakeLists.txt):
//   cmake --preset fuzz
//   cmake --build --preset fuzz --target fuzz_topic
//   mkdir -p /tmp/fuzz-topic
//   build-fuzz/rules/fuzz_topic -max_total_time=60 -max_len=70000 \
//       -dict=rules/fuzz/topic.dict /tmp/fuzz-topic rules/fuzz/topics
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/publish_topic.h"

using namespace tg;
using namespace tg::rules;

namespace {

[[noreturn]] void fail(const char* what, std::string_view topic) {
    std::fprintf(stderr, "%s: %s\n", what, show_topic(topic).c_str());
    std::abort();
}

// Decodes by arithmetic rather than by the byte-range table the gateway
// uses: take the length from the lead byte's high bits, gather the payload
// bits, then reject what is overlong, a surrogate or above U+10FFFF.
bool utf8_ok(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto lead = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if ((lead & 0x80u) == 0) {
            ++i;
            continue;
        }
        if ((lead & 0xE0u) == 0xC0u) {
            n = 2;
            cp = lead & 0x1Fu;
        } else if ((lead & 0xF0u) == 0xE0u) {
            n = 3;
            cp = lead & 0x0Fu;
        } else if ((lead & 0xF8u) == 0xF0u) {
            n = 4;
            cp = lead & 0x07u;
        } else {
            return false;
        }
        if (i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (c & 0x3Fu);
        }
        const std::uint32_t min = n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u;
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return false;
        i += n;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view topic(reinterpret_cast<const char*>(data), size);
    const auto problem = check_publish_topic(topic);
    const bool clean_bytes =
        topic.find_first_of(std::string_view("+#\0", 3)) == std::string_view::npos &&
        utf8_ok(topic);
    const bool acceptable = !topic.empty() && topic.size() <= kMaxTopicBytes && clean_bytes;
    if (!problem && !acceptable) fail("accepted a topic that breaks the rules", topic);
    if (problem && acceptable) fail("refused a topic that keeps the rules", topic);
    if (problem) {
        if (problem->message.empty()) fail("a refusal without a message", topic);
        switch (problem->kind) {
            case TopicProblem::Kind::Empty:
                if (!topic.empty()) fail("called empty", topic);
                break;
            case TopicProblem::Kind::TooLong:
                if (topic.size() <= kMaxTopicBytes) fail("called too long", topic);
                break;
            case TopicProblem::Kind::Wildcard:
                if (problem->offset >= topic.size() ||
                    (topic[problem->offset] != '+' && topic[problem->offset] != '#'))
                    fail("a wildcard that is not there", topic);
                break;
            case TopicProblem::Kind::Nul:
                if (problem->offset >= topic.size() || topic[problem->offset] != '\0')
                    fail("a NUL that is not there", topic);
                break;
            case TopicProblem::Kind::BadUtf8:
                if (problem->offset >= topic.size() ||
                    static_cast<unsigned char>(topic[problem->offset]) < 0x80 ||
                    !utf8_ok(topic.substr(0, problem->offset)))
                    fail("ill-formed UTF-8 reported at the wrong place", topic);
                break;
        }
    }
    // The byte check alone agrees with the independent one.
    if (check_topic_bytes(topic).has_value() == clean_bytes)
        fail("check_topic_bytes disagrees", topic);
    const std::string shown = show_topic(topic);
    if (!utf8_ok(shown)) fail("show_topic wrote ill-formed UTF-8", topic);
    if (shown.size() > 100 * 4 + 64) fail("show_topic did not cut", topic);
    return 0;
}
