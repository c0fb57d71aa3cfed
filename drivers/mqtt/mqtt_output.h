// The mqtt output: switches another device (Tasmota, Shelly, Zigbee2MQTT) by
// publishing its on or off payload to its command topic through the
// gateway's one MQTT connection. (The mqtt input driver lives here too once
// the gateway lends it its connection; its payload parsing is
// FieldParser::for_payload in drivers/sensor_parse.h.)
#pragma once

#include <optional>
#include <string>

#include "drivers/driver.h"

namespace tg::drivers {

extern const OutputInfo kMqttOutput;

class MqttOutput final : public Output {
  public:
    // `env` must outlive the output.
    MqttOutput(const std::string& name, const Options& options, OutputEnv& env);
    void start() override;
    void set(bool on) override;

  private:
    std::string name_;
    std::string topic_;
    std::string on_, off_;
    int qos_;
    bool retain_;
    std::optional<bool> initial_;
    OutputEnv& env_;
};

}  // namespace tg::drivers
