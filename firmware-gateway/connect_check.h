// `tidegate check --connect`: tries every broker of mqtt.uri once, the way
// the gateway would (its TLS settings and credentials), and says for each
// `ok` or what went wrong in words a user can act on: the name that does not
// resolve, the refused or silent port, the TLS verdict (unknown CA, host
// name mismatch, expired or not yet valid certificate, client certificate
// required) and the broker's CONNACK (bad credentials, not authorised,
// protocol version refused). Each step is done here rather than through
// Paho, whose one "TLS handshake failed" hides which of these it was.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config.h"

namespace tg {

struct BrokerProbe {
    std::string uri;
    bool ok = false;
    std::string detail;  // "ok (MQTT 3.1.1, TLS 1.3)" or the cause
};

// Probes one broker with `timeout` for each step (resolve, TCP, TLS, CONNACK).
// The client id is the configured one with "-check" appended, so that a
// running gateway is not thrown off the broker.
BrokerProbe probe_broker(const std::string& uri, const MqttConfig& cfg,
                         std::chrono::milliseconds timeout);

// Every broker of cfg.uris, in order.
std::vector<BrokerProbe> probe_brokers(const MqttConfig& cfg, std::chrono::milliseconds timeout);

}  // namespace tg
