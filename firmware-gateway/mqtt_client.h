// MqttClient: what the MQTT link needs of an MQTT client, and nothing more.
// In the daemon it is Paho's async client (paho_client.h); unit tests put a
// scripted client in its place, so backoff, the in-flight window, refusals
// and reconnects are tested deterministically, as OutboxIo does for the disk.
//
// Every call is made from the event loop thread and never waits on the
// network. Outcomes arrive later through the EventQueue the client was made
// with: MqttConnected / MqttConnectFailed for connect(), MqttDelivered /
// MqttDeliveryFailed (with the caller's token) for publish(), and
// MqttConnectionLost, MqttIncoming whenever they happen.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace tg {

struct OutMessage {
    std::string topic;
    std::string payload;
    int qos = 1;
    bool retain = false;
};

class MqttClient {
  public:
    virtual ~MqttClient() = default;

    // Starts a connection attempt; false when it could not even start (the
    // reason in `why`), and no outcome message follows then.
    // `max_inflight`: QoS 1 messages unacknowledged at once on the connection.
    // `uri`: the broker to try, one of the configured list (SPEC §13).
    virtual bool connect(int max_inflight, const std::string& uri, std::string& why) = 0;
    // Hands one message to the client; `token` comes back with its outcome.
    // false: not taken (the connection is going away; a loss follows).
    virtual bool publish(std::uintptr_t token, const OutMessage& m) = 0;
    // false: not taken (the connection is going away).
    virtual bool subscribe(const std::string& filter, int qos, std::string& why) = 0;

    // Shutdown only (the loop has ended): publishes `m` and waits up to
    // `timeout` for its acknowledgement, then disconnects. Blocks.
    virtual bool publish_and_disconnect(const OutMessage& m, std::chrono::milliseconds timeout) = 0;
    virtual bool is_connected() const = 0;
};

}  // namespace tg
