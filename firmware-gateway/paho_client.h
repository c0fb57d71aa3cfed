// PahoClient: MqttClient on Eclipse Paho's async C++ client. Paho calls back
// on its own threads; every callback here only posts to the EventQueue and
// never waits (incoming messages go to its input lane, which sheds rather
// than block: Paho holds a mutex of its own while it calls us).
#pragma once

#include <memory>
#include <string>

#include "config.h"
#include "event_queue.h"
#include "mqtt_client.h"

namespace tg {

// `will_topic`/`will_payload` become the retained last will.
std::unique_ptr<MqttClient> make_paho_client(const MqttConfig& cfg, EventQueue& queue,
                                             const std::string& will_topic,
                                             const std::string& will_payload);

}  // namespace tg
