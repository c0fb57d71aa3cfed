#include "paho_client.h"

#include <MQTTAsync.h>
#include <mqtt/async_client.h>

#include <algorithm>

namespace tg {
namespace {

std::string describe(const mqtt::token& tok) {
    const int rc = tok.get_return_code();
    const auto reason = tok.get_reason_code();
    // 255 is Paho's "no MQTT 5 reason" marker.
    const bool has_reason = reason != mqtt::SUCCESS && static_cast<int>(reason) != 255;
    // An MQTT 5 refusal (PUBACK >= 0x80) arrives with rc 0: the reason is all there is.
    if (rc == 0 && has_reason) {
        return "reason " + std::to_string(static_cast<int>(reason)) + " (" +
               mqtt::exception::reason_code_str(reason) + ")";
    }
    std::string s;
    switch (rc) {
        // MQTT 3.1.1 CONNACK return codes, as Paho passes them through.
        case 1:
            s = "broker refused the protocol version";
            break;
        case 2:
            s = "broker rejected the client id";
            break;
        case 3:
            s = "broker unavailable";
            break;
        case 4:
            s = "bad user name or password";
            break;
        case 5:
            s = "not authorized";
            break;
        case -1:
            s = "no connection (broker unreachable, refused, or TLS handshake failed)";
            break;
        default:
            s = mqtt::exception::error_str(rc);
            break;
    }
    s += " (rc " + std::to_string(rc) + ")";
    if (has_reason) {
        s += ", reason " + std::to_string(static_cast<int>(reason)) + " (" +
             mqtt::exception::reason_code_str(reason) + ")";
    }
    return s;
}

// Paho calls these from its own threads: they only post to the queue.
class PublishListener final : public mqtt::iaction_listener {
  public:
    explicit PublishListener(EventQueue& q) : queue_(q) {}
    void on_success(const mqtt::token& tok) override {
        queue_.post_control(
            MqttDelivered{reinterpret_cast<std::uintptr_t>(tok.get_user_context())});
    }
    void on_failure(const mqtt::token& tok) override {
        const int reason = static_cast<int>(tok.get_reason_code());
        queue_.post_control(
            MqttDeliveryFailed{reinterpret_cast<std::uintptr_t>(tok.get_user_context()),
                               describe(tok), reason >= 0x80 && reason != 255});
    }

  private:
    EventQueue& queue_;
};

class ConnectListener final : public mqtt::iaction_listener {
  public:
    explicit ConnectListener(EventQueue& q) : queue_(q) {}
    void on_success(const mqtt::token&) override { queue_.post_control(MqttConnected{}); }
    void on_failure(const mqtt::token& tok) override {
        queue_.post_control(MqttConnectFailed{describe(tok)});
    }

  private:
    EventQueue& queue_;
};

class PahoClient final : public MqttClient {
  public:
    PahoClient(const MqttConfig& cfg, EventQueue& queue, std::string will_topic,
               std::string will_payload);
    ~PahoClient() override;

    bool connect(int max_inflight, const std::string& uri, std::string& why) override;
    bool publish(std::uintptr_t token, const OutMessage& m) override;
    bool subscribe(const std::string& filter, int qos, std::string& why) override;
    bool publish_and_disconnect(const OutMessage& m, std::chrono::milliseconds timeout) override;
    bool is_connected() const override { return client_->is_connected(); }

  private:
    MqttConfig cfg_;
    std::string will_topic_;
    std::string will_payload_;
    // The listeners outlive the client: Paho may still call them while the
    // client is being destroyed (members go in reverse order).
    PublishListener publish_listener_;
    ConnectListener connect_listener_;
    std::unique_ptr<mqtt::async_client> client_;
};

PahoClient::PahoClient(const MqttConfig& cfg, EventQueue& queue, std::string will_topic,
                       std::string will_payload)
    : cfg_(cfg),
      will_topic_(std::move(will_topic)),
      will_payload_(std::move(will_payload)),
      publish_listener_(queue),
      connect_listener_(queue) {
    // OpenSSL (1.1 and later) initialises itself on first use; letting Paho
    // do it eagerly costs about 3 MB of resident memory even on tcp://.
    static const bool global_init_done = [] {
        MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
        init.do_openssl_init = 0;
        MQTTAsync_global_init(&init);
        return true;
    }();
    (void)global_init_done;
    mqtt::create_options copts(cfg_.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1);
    // No Paho persistence and no Paho offline buffer: the link keeps the
    // queue, and the durable outbox is the source of truth.
    copts.set_send_while_disconnected(false);
    // Paho counts publishes queued for its send thread against this bound
    // even while connected (default 100). A reconnect with a backlog hands it
    // a whole window at once (up to 4 destinations per record plus the
    // memory queue); refused publishes would rewind the window and send it
    // all again. The link's in-flight window is what bounds us, not this.
    copts.set_max_buffered_messages(65535);
    client_ = std::make_unique<mqtt::async_client>(cfg_.uri, cfg_.client_id, copts, nullptr);
    // Runs on Paho's receive thread, which holds a Paho mutex meanwhile: it
    // must never wait for the loop (the loop may be waiting for that mutex to
    // publish). What the input lane cannot hold is shed and counted there.
    client_->set_message_callback([&queue](mqtt::const_message_ptr m) {
        queue.offer_input(MqttIncoming{m->get_topic(), m->get_payload_str(), m->is_retained()});
    });
    client_->set_connection_lost_handler([&queue](const std::string& cause) {
        queue.post_control(MqttConnectionLost{cause.empty() ? "connection lost" : cause});
    });
}

PahoClient::~PahoClient() {
    // Both may throw: Paho refuses to change callbacks while a connect is in
    // progress (the broker down at shutdown). The listeners and the queue
    // outlive the client, so late callbacks are harmless.
    try {
        client_->disable_callbacks();
    } catch (const std::exception&) {
    }
    try {
        if (client_->is_connected()) client_->disconnect(0)->wait_for(std::chrono::seconds(1));
    } catch (const std::exception&) {
    }
}

bool PahoClient::connect(int max_inflight, const std::string& uri, std::string& why) {
    mqtt::connect_options opts;
    opts.set_keep_alive_interval(std::max<int>(
        1, static_cast<int>(
               std::chrono::duration_cast<std::chrono::seconds>(cfg_.keepalive).count())));
    opts.set_connect_timeout(10);
    opts.set_automatic_reconnect(false);
    opts.set_max_inflight(max_inflight);
    if (cfg_.version == 5) {
        opts.set_mqtt_version(MQTTVERSION_5);
        opts.set_clean_session(false);
        opts.set_clean_start(true);
    } else {
        opts.set_mqtt_version(MQTTVERSION_3_1_1);
        opts.set_clean_session(true);
    }
    opts.set_will(mqtt::will_options(will_topic_, will_payload_, 1, true));
    if (!cfg_.username.empty()) opts.set_user_name(cfg_.username);
    if (!cfg_.password.empty()) opts.set_password(cfg_.password);
    // Another broker of the list than the one the client was made with: this
    // connect goes there (the link walks the list, SPEC §13).
    if (uri != cfg_.uri) {
        auto servers = std::make_shared<mqtt::string_collection>();
        servers->push_back(uri);
        opts.set_servers(servers);
    }
    if (uri.rfind("ssl://", 0) == 0) {
        mqtt::ssl_options ssl;
        if (!cfg_.tls.ca_file.empty()) ssl.set_trust_store(cfg_.tls.ca_file);
        if (!cfg_.tls.cert_file.empty()) ssl.set_key_store(cfg_.tls.cert_file);
        if (!cfg_.tls.key_file.empty()) ssl.set_private_key(cfg_.tls.key_file);
        ssl.set_enable_server_cert_auth(true);
        ssl.set_verify(cfg_.tls.verify_hostname);
        opts.set_ssl(std::move(ssl));
    }
    try {
        client_->connect(opts, nullptr, connect_listener_);
        return true;
    } catch (const mqtt::exception& e) {
        why = e.what();
        return false;
    }
}

bool PahoClient::publish(std::uintptr_t token, const OutMessage& m) {
    try {
        client_->publish(mqtt::make_message(m.topic, m.payload, m.qos, m.retain),
                         reinterpret_cast<void*>(token), publish_listener_);
        return true;
    } catch (const mqtt::exception&) {
        // The connection went away under us; Paho tells the loop shortly.
        return false;
    }
}

bool PahoClient::subscribe(const std::string& filter, int qos, std::string& why) {
    try {
        client_->subscribe(filter, qos);
        return true;
    } catch (const mqtt::exception& e) {
        why = e.what();
        return false;
    }
}

bool PahoClient::publish_and_disconnect(const OutMessage& m, std::chrono::milliseconds timeout) {
    bool acked = false;
    try {
        auto tok = client_->publish(mqtt::make_message(m.topic, m.payload, m.qos, m.retain));
        acked = tok->wait_for(timeout);
        // What is still in flight is in the outbox for the next start: no
        // quiesce, just the DISCONNECT (so the broker keeps its will unsent).
        client_->disconnect(0)->wait_for(std::chrono::milliseconds(500));
    } catch (const mqtt::exception&) {
        return false;
    }
    return acked;
}

}  // namespace

std::unique_ptr<MqttClient> make_paho_client(const MqttConfig& cfg, EventQueue& queue,
                                             const std::string& will_topic,
                                             const std::string& will_payload) {
    return std::make_unique<PahoClient>(cfg, queue, will_topic, will_payload);
}

}  // namespace tg
