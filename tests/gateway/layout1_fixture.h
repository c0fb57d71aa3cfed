// Bytes as tidegate 0.1.0 wrote them (destination layout 1), for the tests
// that prove newer readers still deliver them.
#pragma once

#include <string>

namespace tg::outbox::fixture {

// Three records as tidegate 0.1.0 wrote them (destination layout 1): seqs 41
// and 42 with events/ and retained state/ topics, 43 a QoS 0 dead letter.
inline std::string layout1_log() {
    const char* hex =
        "ff54475281000000e86fbba22900000000000000010222007469646567617465"
        "2f67772f6576656e74732f677265656e686f7573652f74656d70002100746964"
        "65676174652f67772f73746174652f677265656e686f7573652f74656d70012a"
        "0000007b2276223a312c226964223a2267773a3431222c22736571223a34312c"
        "2276616c7565223a32332e347dff54475281000000edcc5ebd2a000000000000"
        "000102220074696465676174652f67772f6576656e74732f677265656e686f75"
        "73652f74656d7000210074696465676174652f67772f73746174652f67726565"
        "6e686f7573652f74656d70012a0000007b2276223a312c226964223a2267773a"
        "3432222c22736571223a34322c2276616c7565223a32332e347dff5447523700"
        "000047851b672b000000000000000001160074696465676174652f67772f6465"
        "61646c657474657200100000007b2276223a312c22736571223a34337d";
    std::string out;
    for (const char* p = hex; p[0] && p[1]; p += 2)
        out.push_back(static_cast<char>(std::stoi(std::string(p, 2), nullptr, 16)));
    return out;
}

}  // namespace tg::outbox::fixture
