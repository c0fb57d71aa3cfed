// The local HTTP server (SPEC §9): the http config keys and their errors, the
// Prometheus text and the status JSON rendered from a snapshot, and the
// server itself on a loopback port (routes, status codes, token, limits).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../core/temp_dir.h"
#include "config.h"
#include "http_render.h"
#include "http_server.h"

using namespace std::chrono_literals;
using tg::StatusSnapshot;

namespace {

std::string first_error(const std::string& text) {
    try {
        tg::parse_config(text, "t.yaml");
    } catch (const tg::LoadError& e) {
        return e.diagnostics().items().front().format();
    }
    FAIL("expected the config to be rejected:\n" << text);
    return {};
}

const std::string kSensors = "sensors: [{name: a.b, driver: simulated}]\n";

StatusSnapshot sample(tg::MonoTime now) {
    StatusSnapshot s;
    s.gateway = "gw1";
    s.version = "1.2.3";
    s.started = tg::WallTime(std::chrono::seconds(1'700'000'000));
    s.started_mono = now - 125s;
    s.link = {true, "tcp://b:1883", 2};
    s.outbox = {3, 300, 0};
    s.metrics = {{"events_in", "readings", true, 42}, {"outbox_depth", "depth", false, 3}};
    s.sensors.push_back(
        {"room.temp", "°C", tg::Value{21.5}, s.started, now - 3s, {20.f, NAN, 21.5f}});
    s.sensors.push_back({"door.open", "", tg::Value{true}, s.started, now - 1s, {}});
    s.sensors.push_back({"label", "", tg::Value{std::string("a\"b\\c\nd")}, s.started, now, {}});
    s.sensors.push_back({"never", "", std::nullopt, {}, {}, {}});
    s.rules.push_back({"hot \"one\"\n", tg::rules::RuleState::Firing, s.started, 4});
    s.rules.push_back({"cold", tg::rules::RuleState::Idle, std::nullopt, 0});
    s.outputs.push_back({"fan", true, false});
    s.outputs.push_back({"buzzer", std::nullopt, true});
    s.breakers.push_back({"output/fan", tg::BreakerState::Open, 3, "write failed"});
    s.deadletters.push_back({s.started, "sensor:x", "bad_reading", "<script>"});
    return s;
}

// Every line of `text` that starts with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix, 0) == 0) out.push_back(line);
    }
    return out;
}

// A raw HTTP/1.1 exchange on loopback: the whole response (the server closes).
std::string http_exchange(int port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

int status_of(const std::string& response) {
    if (response.size() < 12) return 0;
    return std::stoi(response.substr(9, 3));
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("http config: defaults, values and errors with positions", "[http]") {
    const tg::Config def = tg::parse_config(kSensors, "t.yaml");
    CHECK(def.http.listen == "127.0.0.1:9780");
    CHECK(def.http.token.empty());

    CHECK(tg::parse_config("http: {listen: ''}\n" + kSensors, "t.yaml").http.listen.empty());
    CHECK(tg::parse_config("http: {listen: '[::1]:80'}\n" + kSensors, "t.yaml").http.listen ==
          "[::1]:80");

    CHECK(first_error("http: {listen: localhost:9780}\n" + kSensors) ==
          "t.yaml:1:16: error: http.listen: 'localhost' is not an IPv4 address (write an "
          "address, e.g. 127.0.0.1, or [::1] for IPv6)");
    CHECK_THAT(first_error("http: {listen: '127.0.0.1:99999'}\n" + kSensors),
               Catch::Contains("port '99999' is not a number from 1 to 65535"));
    CHECK_THAT(first_error("http: {listen: '127.0.0.1:'}\n" + kSensors),
               Catch::Contains("port '' is not a number"));
    CHECK_THAT(first_error("http: {listen: '9780'}\n" + kSensors),
               Catch::Contains("expected host:port"));
    CHECK_THAT(first_error("http: {listen: '[::1:80'}\n" + kSensors),
               Catch::Contains("expected [IPv6 address]:port"));
    CHECK_THAT(first_error("http: {listen: '[zz]:80'}\n" + kSensors),
               Catch::Contains("'zz' is not an IPv6 address"));
    CHECK_THAT(first_error("http: {listn: x}\n" + kSensors), Catch::Contains("listen"));

    tg::test::TempDir dir;
    const std::string token = dir.write("token", "0123456789abcdef0123\n");
    CHECK(tg::parse_config("http: {token_file: " + token + "}\n" + kSensors, "t.yaml").http.token ==
          "0123456789abcdef0123");
    const std::string short_token = dir.write("short", "abc\n");
    CHECK_THAT(first_error("http: {token_file: " + short_token + "}\n" + kSensors),
               Catch::Contains("t.yaml:1:20: error: http.token_file: the token is 3 characters"));
    const std::string spaced = dir.write("spaced", "0123456789 abcdef0123\n");
    CHECK_THAT(first_error("http: {token_file: " + spaced + "}\n" + kSensors),
               Catch::Contains("printable ASCII characters without spaces"));
    CHECK_THAT(first_error("http: {token_file: /nonexistent/t}\n" + kSensors),
               Catch::Contains("http.token_file: cannot read '/nonexistent/t'"));
    CHECK_THAT(first_error("http: {token_file: /dev/zero}\n" + kSensors),
               Catch::Contains("http.token_file: cannot read '/dev/zero'"));
}

TEST_CASE("Prometheus text: families, names, labels escaped", "[http]") {
    const tg::MonoTime now = tg::MonoTime(1000h);
    const std::string text = tg::http::prometheus_text(sample(now), now);

    CHECK(lines_starting(text, "tidegate_events_in_total") ==
          std::vector<std::string>{"tidegate_events_in_total 42"});
    CHECK(lines_starting(text, "# TYPE tidegate_events_in_total ") ==
          std::vector<std::string>{"# TYPE tidegate_events_in_total counter"});
    CHECK(lines_starting(text, "tidegate_outbox_depth") ==
          std::vector<std::string>{"tidegate_outbox_depth 3"});
    CHECK(lines_starting(text, "# TYPE tidegate_outbox_depth ") ==
          std::vector<std::string>{"# TYPE tidegate_outbox_depth gauge"});
    CHECK(lines_starting(text, "tidegate_mqtt_connected") ==
          std::vector<std::string>{"tidegate_mqtt_connected 1"});
    CHECK(lines_starting(text, "tidegate_uptime_seconds") ==
          std::vector<std::string>{"tidegate_uptime_seconds 125"});
    // Numbers and booleans; a string sensor has no value sample, an unread one no age.
    CHECK(lines_starting(text, "tidegate_sensor_value{") ==
          std::vector<std::string>{"tidegate_sensor_value{sensor=\"room.temp\"} 21.5",
                                   "tidegate_sensor_value{sensor=\"door.open\"} 1"});
    CHECK(lines_starting(text, "tidegate_sensor_age_seconds{") ==
          std::vector<std::string>{"tidegate_sensor_age_seconds{sensor=\"room.temp\"} 3",
                                   "tidegate_sensor_age_seconds{sensor=\"door.open\"} 1",
                                   "tidegate_sensor_age_seconds{sensor=\"label\"} 0"});
    CHECK(lines_starting(text, "tidegate_rule_firing{") ==
          std::vector<std::string>{"tidegate_rule_firing{rule=\"hot \\\"one\\\"\\n\"} 1",
                                   "tidegate_rule_firing{rule=\"cold\"} 0"});
    CHECK(lines_starting(text, "tidegate_rule_fired_total{") ==
          std::vector<std::string>{"tidegate_rule_fired_total{rule=\"hot \\\"one\\\"\\n\"} 4",
                                   "tidegate_rule_fired_total{rule=\"cold\"} 0"});
    CHECK(lines_starting(text, "tidegate_output_on{") ==
          std::vector<std::string>{"tidegate_output_on{output=\"fan\"} 1"});
    CHECK(lines_starting(text, "tidegate_breaker_open{") ==
          std::vector<std::string>{"tidegate_breaker_open{target=\"output/fan\"} 1"});
    CHECK(lines_starting(text, "tidegate_build_info{") ==
          std::vector<std::string>{"tidegate_build_info{version=\"1.2.3\"} 1"});
    // Every family has its HELP and TYPE once, before its samples.
    for (const std::string& type : lines_starting(text, "# TYPE ")) {
        const std::string name = type.substr(7, type.find(' ', 7) - 7);
        CHECK(lines_starting(text, "# HELP " + name + " ").size() == 1);
        CHECK(text.find("# TYPE " + name + " ") < text.find("\n" + name));
    }
    CHECK(tg::http::escape_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

TEST_CASE("status JSON holds what SPEC §9 lists", "[http]") {
    const tg::MonoTime now = tg::MonoTime(1000h);
    const auto j = nlohmann::json::parse(tg::http::status_json(sample(now), now, false));
    CHECK(j["gateway"] == "gw1");
    CHECK(j["version"] == "1.2.3");
    CHECK(j["started"] == "2023-11-14T22:13:20.000Z");
    CHECK(j["link"] ==
          nlohmann::json{{"connected", true}, {"uri", "tcp://b:1883"}, {"reconnects", 2}});
    CHECK(j["outbox"] == nlohmann::json{{"depth", 3}, {"bytes", 300}, {"dropped", 0}});
    REQUIRE(j["sensors"].size() == 4);
    CHECK(j["sensors"][0]["value"] == 21.5);
    CHECK(j["sensors"][0]["unit"] == "°C");
    CHECK(j["sensors"][0]["age"] == 3);
    CHECK(j["sensors"][0]["history"] == nlohmann::json::parse("[20, null, 21.5]"));
    CHECK(j["sensors"][2]["value"] == "a\"b\\c\nd");
    CHECK(j["sensors"][3]["value"].is_null());
    CHECK(j["sensors"][3]["age"].is_null());
    CHECK(j["rules"][0]["state"] == "firing");
    CHECK(j["rules"][0]["fired"] == 4);
    CHECK(j["rules"][1]["since"].is_null());
    CHECK(j["outputs"][1] ==
          nlohmann::json{{"name", "buzzer"}, {"value", nullptr}, {"remote", true}});
    CHECK(j["outputs"][0]["value"] == "on");
    CHECK(j["breakers"][0]["state"] == "open");
    CHECK(j["deadletters"][0]["detail"] == "<script>");
    CHECK(j["sagas"].empty());
    CHECK(j["switches"] == false);
}

TEST_CASE("the server: routes, methods, sizes, token, switches", "[http]") {
    tg::RealClock clock;
    std::vector<std::pair<std::string, bool>> switched;
    std::mutex m;
    const int port = free_port();
    tg::HttpServer server({"127.0.0.1:" + std::to_string(port), "0123456789abcdef0123"}, clock,
                          [&](const std::string& name, bool on) {
                              std::lock_guard lock(m);
                              switched.emplace_back(name, on);
                          });
    std::string why;
    REQUIRE(server.start(why));
    const std::string auth = "Authorization: Bearer 0123456789abcdef0123\r\n";
    auto get = [&](const std::string& path, const std::string& headers) {
        return http_exchange(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                                       headers + "\r\n");
    };
    auto post = [&](const std::string& path, const std::string& body, const std::string& headers) {
        return http_exchange(
            port, "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    };

    // Before the first snapshot.
    CHECK(status_of(get("/metrics", auth)) == 503);
    server.publish(std::make_shared<StatusSnapshot>(sample(clock.monotonic())));

    CHECK(status_of(get("/metrics", "")) == 401);
    CHECK(get("/metrics", "").find("WWW-Authenticate: Bearer") != std::string::npos);
    CHECK(status_of(get("/metrics", "Authorization: Bearer wrong\r\n")) == 401);
    CHECK(status_of(get("/metrics", "Authorization: Bearer 0123456789abcdef012\r\n")) == 401);
    // Basic, with the token as the password (what a browser sends).
    CHECK(status_of(get("/", "Authorization: Basic dTowMTIzNDU2Nzg5YWJjZGVmMDEyMw==\r\n")) == 200);
    CHECK(status_of(get("/", "Authorization: Basic !!!\r\n")) == 401);

    const std::string metrics = get("/metrics", auth);
    CHECK(status_of(metrics) == 200);
    CHECK(metrics.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") !=
          std::string::npos);
    CHECK(metrics.find("tidegate_events_in_total 42") != std::string::npos);
    const std::string api = get("/api/status", auth);
    CHECK(status_of(api) == 200);
    CHECK(nlohmann::json::parse(api.substr(api.find("\r\n\r\n") + 4))["switches"] == true);
    const std::string page = get("/", auth);
    CHECK(status_of(page) == 200);
    CHECK(page.find("Content-Security-Policy: default-src 'none'") != std::string::npos);
    CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));  // no external resource

    CHECK(status_of(get("/nope", auth)) == 404);
    CHECK(status_of(get("/metrics/x", auth)) == 404);
    CHECK(status_of(get("/../etc/passwd", auth)) == 404);
    CHECK(status_of(post("/metrics", "", auth)) == 405);
    CHECK(post("/metrics", "", auth).find("Allow: GET, HEAD") != std::string::npos);
    CHECK(status_of(get("/api/outputs/buzzer", auth)) == 405);
    CHECK(status_of(post("/api/outputs/fan", "on", auth)) == 403);  // not remote
    CHECK(status_of(post("/api/outputs/ghost", "on", auth)) == 404);
    CHECK(status_of(post("/api/outputs/buzzer", "maybe", auth)) == 400);
    CHECK(status_of(post("/api/outputs/buzzer", std::string(4097, 'x'), auth)) == 413);
    CHECK(status_of(http_exchange(port, "POST /api/outputs/buzzer HTTP/1.1\r\nHost: x\r\n" + auth +
                                            "Content-Length: 999999999\r\n\r\n")) == 413);
    // Another site's page posting with the user's credentials.
    CHECK(status_of(post("/api/outputs/buzzer", "on", auth + "Origin: http://evil.example\r\n")) ==
          403);
    CHECK(status_of(post("/api/outputs/buzzer", "on\n", auth)) == 202);
    CHECK(status_of(post("/api/outputs/buzzer", "off", "")) == 401);
    {
        std::lock_guard lock(m);
        CHECK(switched == std::vector<std::pair<std::string, bool>>{{"buzzer", true}});
    }
    // Headers beyond the limit, and garbage, get an error, not a crash.
    CHECK(status_of(get("/metrics", "X-Big: " + std::string(20000, 'a') + "\r\n" + auth)) >= 400);
    CHECK(
        http_exchange(port, std::string("\x00\x01\x02 garbage\r\n\r\n", 15)).find("HTTP/1.1 200") ==
        std::string::npos);
    CHECK(status_of(get("/metrics", auth)) == 200);  // still serving
    server.stop();
}

TEST_CASE("the server without a token refuses switching; a taken port is a clear error", "[http]") {
    tg::RealClock clock;
    const int port = free_port();
    tg::HttpServer a({"127.0.0.1:" + std::to_string(port), ""}, clock, [](auto&, bool) {});
    std::string why;
    REQUIRE(a.start(why));
    a.publish(std::make_shared<StatusSnapshot>(sample(clock.monotonic())));
    auto req = [&](const std::string& head) {
        return status_of(http_exchange(port, head + "Connection: close\r\n\r\n"));
    };
    CHECK(status_of(http_exchange(port,
                                  "POST /api/outputs/buzzer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\nContent-Length: 2\r\n\r\non")) == 403);
    // Without a token, only an address as the host (DNS rebinding).
    CHECK(req("GET /api/status HTTP/1.1\r\nHost: evil.example\r\n") == 403);
    CHECK(req("GET /api/status HTTP/1.1\r\nHost: evil.example:9780\r\n") == 403);
    for (const char* h : {"127.0.0.1:9780", "localhost", "localhost:1", "[::1]:80", "127.0.0.1"}) {
        CHECK(req(std::string("GET /api/status HTTP/1.1\r\nHost: ") + h + "\r\n") == 200);
    }
    tg::HttpServer b({"127.0.0.1:" + std::to_string(port), ""}, clock, [](auto&, bool) {});
    CHECK_FALSE(b.start(why));
    CHECK_FALSE(why.empty());
}
