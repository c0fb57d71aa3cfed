#include "http_render.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/json_writer.h"

namespace tg::http {

namespace {

double seconds_between(MonoTime from, MonoTime to) {
    if (to <= from) return 0.0;
    return std::chrono::duration<double>(to - from).count();
}

std::string number(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

// HELP text: \ and newline escaped; label values also ".
std::string escape(std::string_view v, bool quotes) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quotes) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
    return out;
}

// One metric family: its HELP and TYPE lines, then the samples added.
class Family {
  public:
    Family(std::string& out, std::string name, std::string_view help, std::string_view type)
        : out_(out), name_(std::move(name)), help_(help), type_(type) {}

    void sample(double value) { sample_line({}, {}, value); }
    void sample(std::string_view label, std::string_view label_value, double value) {
        sample_line(label, label_value, value);
    }

  private:
    void sample_line(std::string_view label, std::string_view label_value, double value) {
        if (!headed_) {
            out_ += "# HELP " + name_ + " " + escape(help_, false) + "\n";
            out_ += "# TYPE " + name_ + " ";
            out_ += type_;
            out_ += '\n';
            headed_ = true;
        }
        out_ += name_;
        if (!label.empty()) {
            out_ += '{';
            out_ += label;
            out_ += "=\"";
            out_ += escape_label(label_value);
            out_ += "\"}";
        }
        out_ += ' ';
        out_ += number(value);
        out_ += '\n';
    }

    std::string& out_;
    std::string name_;
    std::string_view help_, type_;
    bool headed_ = false;
};

std::optional<double> numeric(const Value& v) {
    if (const double* d = std::get_if<double>(&v)) return *d;
    if (const bool* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
    return std::nullopt;
}

// Appends one JSON object text to a JSON array text under construction.
void push(std::string& array, std::string object) {
    array += array.size() > 1 ? "," : "";
    array += object;
}

std::string close(std::string array) {
    array += ']';
    return array;
}

}  // namespace

std::string escape_label(std::string_view v) {
    return escape(v, true);
}

std::string prometheus_text(const StatusSnapshot& s, MonoTime now) {
    std::string out;
    out.reserve(2048 + 160 * (s.sensors.size() * 2 + s.rules.size() * 2 + s.outputs.size()));
    for (const EventPublisher::Metric& m : s.metrics) {
        const std::string name = std::string("tidegate_") + m.name + (m.counter ? "_total" : "");
        Family(out, name, m.help, m.counter ? "counter" : "gauge")
            .sample(static_cast<double>(m.value));
    }
    Family(out, "tidegate_mqtt_connected", "1 while connected to the broker", "gauge")
        .sample(s.link.connected ? 1 : 0);
    Family(out, "tidegate_uptime_seconds", "seconds since the gateway started", "gauge")
        .sample(std::floor(seconds_between(s.started_mono, now)));

    Family value(out, "tidegate_sensor_value", "the sensor's latest reading (booleans as 0/1)",
                 "gauge");
    for (const auto& sensor : s.sensors) {
        if (!sensor.value) continue;
        if (auto d = numeric(*sensor.value)) value.sample("sensor", sensor.name, *d);
    }
    Family age(out, "tidegate_sensor_age_seconds", "seconds since the sensor's latest reading",
               "gauge");
    for (const auto& sensor : s.sensors) {
        if (sensor.value) age.sample("sensor", sensor.name, seconds_between(sensor.mono, now));
    }
    Family firing(out, "tidegate_rule_firing", "1 while the rule is firing", "gauge");
    for (const auto& r : s.rules) {
        firing.sample("rule", r.name, r.state == rules::RuleState::Firing ? 1 : 0);
    }
    Family fired(out, "tidegate_rule_fired_total", "times the rule fired since the start",
                 "counter");
    for (const auto& r : s.rules)
        fired.sample("rule", r.name, static_cast<double>(r.fired));
    Family on(out, "tidegate_output_on", "1 while the output is on (absent while unknown)",
              "gauge");
    for (const auto& o : s.outputs) {
        if (o.on) on.sample("output", o.name, *o.on ? 1 : 0);
    }
    Family open(out, "tidegate_breaker_open",
                "1 while the circuit breaker is not closed (open or half-open)", "gauge");
    for (const auto& b : s.breakers) {
        open.sample("target", b.target, b.state == BreakerState::Closed ? 0 : 1);
    }
    Family(out, "tidegate_build_info", "the running version", "gauge")
        .sample("version", s.version, 1);
    return out;
}

std::string status_json(const StatusSnapshot& s, MonoTime now, bool switches) {
    JsonObject link;
    link.field("connected", s.link.connected)
        .field("uri", std::string_view(s.link.uri))
        .field("reconnects", s.link.reconnects);
    JsonObject outbox;
    outbox.field("depth", s.outbox.depth)
        .field("bytes", s.outbox.bytes)
        .field("dropped", s.outbox.dropped);

    std::string sensors = "[";
    for (const auto& sensor : s.sensors) {
        JsonObject o;
        o.field("name", std::string_view(sensor.name)).field("unit", std::string_view(sensor.unit));
        if (sensor.value) {
            o.value_field("value", *sensor.value)
                .field("ts", std::string_view(format_rfc3339_ms(sensor.ts)))
                .field("age", std::round(seconds_between(sensor.mono, now) * 10) / 10);
        } else {
            o.null_field("value").null_field("ts").null_field("age");
        }
        std::string history = "[";
        for (float v : sensor.history) {
            history += history.size() > 1 ? "," : "";
            if (!std::isfinite(v)) {
                history += "null";
                continue;
            }
            char buf[32];
            // A float's 7 significant digits, no more (the C library's, not
            // a second copy of shortest-float formatting in the binary).
            const int n = std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(v));
            history.append(buf, static_cast<std::size_t>(std::clamp(n, 0, 31)));
        }
        o.raw_field("history", close(std::move(history)));
        push(sensors, std::move(o).finish());
    }
    std::string rules = "[";
    for (const auto& r : s.rules) {
        JsonObject o;
        o.field("name", std::string_view(r.name)).field("state", rules::rule_state_name(r.state));
        if (r.since) {
            o.field("since", std::string_view(format_rfc3339_ms(*r.since)));
        } else {
            o.null_field("since");
        }
        o.field("fired", r.fired);
        push(rules, std::move(o).finish());
    }
    std::string outputs = "[";
    for (const auto& out : s.outputs) {
        JsonObject o;
        o.field("name", std::string_view(out.name));
        if (out.on) {
            o.field("value", *out.on ? "on" : "off");  // as in output events
        } else {
            o.null_field("value");
        }
        o.field("remote", out.remote);
        push(outputs, std::move(o).finish());
    }
    std::string breakers = "[";
    for (const auto& b : s.breakers) {
        JsonObject o;
        o.field("target", std::string_view(b.target))
            .field("state", breaker_state_name(b.state))
            .field("failures", static_cast<std::uint64_t>(b.failures))
            .field("detail", std::string_view(b.detail));
        push(breakers, std::move(o).finish());
    }
    std::string sagas = "[";
    for (const auto& g : s.sagas) {
        JsonObject o;
        o.field("rule", std::string_view(g.rule))
            .field("state", std::string_view(g.state))
            .field("step", std::string_view(g.step))
            .field("reason", std::string_view(g.reason))
            .field("ts", std::string_view(format_rfc3339_ms(g.ts)));
        push(sagas, std::move(o).finish());
    }
    std::string deadletters = "[";
    for (const auto& d : s.deadletters) {
        JsonObject o;
        o.field("ts", std::string_view(format_rfc3339_ms(d.ts)))
            .field("source", std::string_view(d.source))
            .field("reason", std::string_view(d.reason))
            .field("detail", std::string_view(d.detail));
        push(deadletters, std::move(o).finish());
    }

    JsonObject o;
    o.field("gateway", std::string_view(s.gateway))
        .field("version", std::string_view(s.version))
        .field("started", std::string_view(format_rfc3339_ms(s.started)))
        .field("uptime_s", std::floor(seconds_between(s.started_mono, now)))
        .raw_field("link", std::move(link).finish())
        .raw_field("outbox", std::move(outbox).finish())
        .raw_field("sensors", close(std::move(sensors)))
        .raw_field("rules", close(std::move(rules)))
        .raw_field("outputs", close(std::move(outputs)))
        .raw_field("breakers", close(std::move(breakers)))
        .raw_field("sagas", close(std::move(sagas)))
        .raw_field("deadletters", close(std::move(deadletters)))
        .field("switches", switches);
    return std::move(o).finish();
}

}  // namespace tg::http
