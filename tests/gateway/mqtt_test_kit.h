// What the gateway unit tests share to stand in for the broker side: an
// MqttClient the test scripts (the link's on_* are called as the event loop
// would) and a real outbox, open, in a temporary folder of its own.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/temp_dir.h"
#include "mqtt_client.h"
#include "outbox.h"

namespace tg::test {

// Records what the link asks of it; the test plays the broker's answers by
// calling the link's on_* as the event loop would.
class ScriptedClient final : public MqttClient {
  public:
    struct Sent {
        std::uintptr_t token;
        OutMessage msg;
    };
    int connects = 0;
    bool refuse_connect_call = false;
    bool accept_publish = true;
    bool connected = false;
    std::vector<Sent> sent;
    std::vector<std::string> subscriptions;

    std::vector<std::string> connect_uris;  // the broker of each connect call
    bool connect(int, const std::string& uri, std::string& why) override {
        ++connects;
        connect_uris.push_back(uri);
        if (refuse_connect_call) {
            why = "bad uri";
            return false;
        }
        return true;
    }
    bool publish(std::uintptr_t token, const OutMessage& m) override {
        if (!accept_publish) return false;
        sent.push_back({token, m});
        return true;
    }
    bool subscribe(const std::string& filter, int, std::string&) override {
        subscriptions.push_back(filter);
        return true;
    }
    bool publish_and_disconnect(const OutMessage&, std::chrono::milliseconds) override {
        connected = false;
        return true;
    }
    bool is_connected() const override { return connected; }

    std::vector<std::string> topics() const {
        std::vector<std::string> out;
        for (const Sent& s : sent)
            out.push_back(s.msg.topic);
        return out;
    }
};

// An outbox of its own in a temporary folder, open, no group commit due.
// `io` replaces its system calls (e.g. to watch or fail its writes).
struct OpenOutbox {
    TempDir dir;
    Outbox box;
    explicit OpenOutbox(OutboxIo io = {}) : box(options(dir.path(), std::move(io))) { box.open(); }
    ~OpenOutbox() { box.close(); }
    static OutboxOptions options(const std::string& path, OutboxIo io = {}) {
        OutboxOptions o;
        o.data_dir = path;
        o.boot_id = "boot-a";
        o.sync = std::chrono::hours(1);
        o.io = std::move(io);
        return o;
    }
};

}  // namespace tg::test
