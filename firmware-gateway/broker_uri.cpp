#include "broker_uri.h"

#include "rules/yaml_reader.h"

namespace tg {

std::optional<BrokerUri> parse_broker_uri(const std::string& v, std::string& why) {
    const std::string quoted = "'" + rules::shown(v) + "'";
    auto fail = [&](std::string problem) -> std::optional<BrokerUri> {
        why = std::move(problem);
        return std::nullopt;
    };
    BrokerUri u;
    if (v.rfind("ssl://", 0) == 0) {
        u.tls = true;
    } else if (v.rfind("tcp://", 0) != 0) {
        return fail(quoted + " must start with tcp:// or ssl://");
    }
    const std::string rest = v.substr(6);
    std::string host = rest;
    if (!rest.empty() && rest.front() == '[') {  // [IPv6]:PORT
        const std::size_t close = rest.find(']');
        if (close == std::string::npos) return fail(quoted + ": '[' without ']'");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':') return fail(quoted + ": expected ':PORT' after ']'");
            u.port = rest.substr(close + 2);
        }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string::npos) {
        host = rest.substr(0, colon);
        u.port = rest.substr(colon + 1);
        if (u.port.empty()) return fail(quoted + ": the port after ':' is missing");
    }
    if (host.empty()) return fail(quoted + " names no host");
    for (const char ch : host) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == 0x7F)
            return fail(quoted + ": the host may not contain '" + rules::shown(std::string(1, ch)) +
                        "'");
    }
    if (!u.port.empty() &&
        (u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos ||
         std::stoul(u.port) < 1 || std::stoul(u.port) > 65535)) {
        return fail(quoted + ": the port must be 1 to 65535");
    }
    if (u.port.empty()) u.port = u.tls ? "8883" : "1883";
    u.host = std::move(host);
    return u;
}

}  // namespace tg
