// mqtt (input): values from other devices' topics (Zigbee2MQTT, Tasmota,
// Shelly), received over the gateway's own MQTT connection. Sensors naming
// the same topic share one subscription; each picks its value with its own
// json_pointer (e.g. /temperature and /humidity of one Zigbee2MQTT device).
#pragma once

#include <string>
#include <vector>

#include "drivers/driver.h"
#include "drivers/sensor_parse.h"

namespace tg::drivers {

extern const DriverInfo kMqttInputDriver;

class MqttInputDriver final : public Driver {
  public:
    explicit MqttInputDriver(std::span<const SensorSpec> sensors);

    bool polled() const override { return false; }
    std::vector<std::string> subscriptions() const override { return {topic_}; }
    void on_message(const std::string& topic, const std::string& payload, const Clock& clock,
                    Sink& sink) override;

  private:
    struct Target {
        std::string sensor;
        FieldParser parser;
    };
    std::string topic_;
    std::vector<Target> targets_;
};

}  // namespace tg::drivers
