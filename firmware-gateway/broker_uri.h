// A broker URI of mqtt.uri (SPEC §2, §13): tcp://HOST[:PORT] or
// ssl://HOST[:PORT], an IPv6 address in brackets. The config checks it with
// this, and `check --connect` connects with its parts.
#pragma once

#include <optional>
#include <string>

namespace tg {

struct BrokerUri {
    bool tls = false;
    std::string host;  // without the brackets of an IPv6 address
    std::string port;  // 1883 or 8883 when the URI names none
};

// The parts, or nullopt with what is wrong in `why` ("'tcp://' names no host").
std::optional<BrokerUri> parse_broker_uri(const std::string& uri, std::string& why);

}  // namespace tg
