// MQTT topic filter matching, as brokers do it (MQTT 3.1.1 §4.7).
#include <catch2/catch.hpp>

#include "mqtt_link.h"

using tg::topic_matches;

TEST_CASE("topic filters match like a broker's", "[mqtt]") {
    struct Row {
        const char* filter;
        const char* topic;
        bool match;
    };
    const Row rows[] = {
        {"a/b", "a/b", true},
        {"a/b", "a/c", false},
        {"a/b", "a/b/c", false},
        {"a/+", "a/b", true},
        {"a/+", "a/b/c", false},
        {"a/+/c", "a/x/c", true},
        {"+/+", "a/b", true},
        {"+", "a", true},
        {"+", "a/b", false},
        {"a/#", "a", true},
        {"a/#", "a/b/c", true},
        {"#", "a/b", true},
        {"#", "$SYS/x", false},
        {"$SYS/#", "$SYS/broker/load", true},
        {"+/b", "$SYS/b", false},
        {"a/+", "a/", true},
        {"a//b", "a//b", true},
        {"zigbee2mqtt/+", "zigbee2mqtt/sensor1", true},
        {"zigbee2mqtt/sensor1", "zigbee2mqtt/sensor10", false},
    };
    for (const Row& r : rows) {
        INFO(r.filter << " vs " << r.topic);
        CHECK(topic_matches(r.filter, r.topic) == r.match);
    }
}
