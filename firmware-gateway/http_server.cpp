#include "http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>

#include <array>
#include <charconv>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "http_render.h"

namespace tg {

namespace {

// Worker threads: the most requests served at once. Connections beyond them
// wait in a short queue, then in the listen backlog; a client that sends
// its request too slowly or idles on keep-alive loses its connection.
constexpr const char* kThreads = "6";
constexpr const char* kQueue = "8";
constexpr const char* kBacklog = "16";
constexpr const char* kRequestTimeoutMs = "5000";
constexpr const char* kKeepAliveMs = "2000";
constexpr const char* kMaxHeaderBytes = "8192";

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return diff == 0;
}

// Standard base64 (RFC 4648 §4), padding optional; nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view in) {
    auto digit = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (!in.empty() && in.back() == '=')
        in.remove_suffix(1);
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        const int d = digit(c);
        if (d < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

struct Header {
    const char* name;
    std::string value;
};

// Sends a whole response; HEAD gets the headers alone.
int respond(mg_connection* c, int status, std::string_view type, std::string_view body,
            const std::vector<Header>& extra = {}) {
    const mg_request_info* ri = mg_get_request_info(c);
    const bool head = ri && ri->request_method && std::string_view(ri->request_method) == "HEAD";
    mg_response_header_start(c, status);
    mg_response_header_add(c, "Content-Type", type.data(), static_cast<int>(type.size()));
    const std::string length = std::to_string(body.size());
    mg_response_header_add(c, "Content-Length", length.c_str(), -1);
    mg_response_header_add(c, "Cache-Control", "no-store", -1);
    mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
    for (const Header& h : extra)
        mg_response_header_add(c, h.name, h.value.c_str(), -1);
    mg_response_header_send(c);
    if (!head && !body.empty()) mg_write(c, body.data(), body.size());
    return status;
}

int respond_text(mg_connection* c, int status, std::string_view text,
                 const std::vector<Header>& extra = {}) {
    return respond(c, status, "text/plain; charset=utf-8", std::string(text) + "\n", extra);
}

// The host part of a Host header: an IP literal or localhost. Without a
// token, a page another site's DNS points at this address (DNS rebinding)
// would otherwise read the API.
bool host_is_address(std::string_view host) {
    if (!host.empty() && host.front() == '[') return host.find(']') != std::string_view::npos;
    const auto colon = host.rfind(':');
    const std::string name(host.substr(0, colon));
    in_addr a4{};
    return name == "localhost" || inet_pton(AF_INET, name.c_str(), &a4) == 1;
}

int log_message(const mg_connection*, const char* message) {
    log_debug("http", message ? message : "");
    return 1;  // handled: nothing on stderr from the library
}

}  // namespace

std::string http_listen_problem(const std::string& listen) {
    if (listen.empty()) return {};
    std::string host, port;
    if (listen.front() == '[') {
        const auto close = listen.find(']');
        if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
            return "expected [IPv6 address]:port, e.g. [::1]:9780";
        }
        host = listen.substr(1, close - 1);
        port = listen.substr(close + 2);
        in6_addr a6{};
        if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
            return "'" + host + "' is not an IPv6 address";
        }
    } else {
        const auto colon = listen.rfind(':');
        if (colon == std::string::npos) {
            return "expected host:port, e.g. 127.0.0.1:9780 (\"\" turns the server off)";
        }
        host = listen.substr(0, colon);
        port = listen.substr(colon + 1);
        in_addr a4{};
        if (inet_pton(AF_INET, host.c_str(), &a4) != 1) {
            return "'" + host +
                   "' is not an IPv4 address (write an address, e.g. 127.0.0.1, or "
                   "[::1] for IPv6)";
        }
    }
    unsigned p = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || p == 0 ||
        p > 65535) {
        return "port '" + port + "' is not a number from 1 to 65535";
    }
    return {};
}

HttpServer::HttpServer(Options options, const Clock& clock, SwitchOutput switch_output)
    : options_(std::move(options)), clock_(clock), switch_output_(std::move(switch_output)) {}

HttpServer::~HttpServer() {
    stop();
}

bool HttpServer::start(std::string& why) {
    mg_init_library(options_.listen.front() == '[' ? MG_FEATURES_IPV6 : 0);
    const char* opts[] = {"listening_ports", options_.listen.c_str(), "num_threads", kThreads,
                          "connection_queue", kQueue, "listen_backlog", kBacklog,
                          "request_timeout_ms", kRequestTimeoutMs, "enable_keep_alive", "yes",
                          "keep_alive_timeout_ms", kKeepAliveMs, "max_request_size",
                          kMaxHeaderBytes,
                          // Headers and body go out in two writes: without
                          // this, a keep-alive client's delayed ACK holds the
                          // body back by up to 40 ms.
                          "tcp_nodelay", "1", nullptr};
    mg_callbacks callbacks{};
    callbacks.log_message = log_message;
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = this;
    init.configuration_options = opts;
    std::array<char, 256> text{};
    unsigned code = 0;
    mg_error_data error{};
    error.code = &code;
    error.text = text.data();
    error.text_buffer_size = text.size();
    ctx_ = mg_start2(&init, &error);
    if (!ctx_) {
        why = text[0] ? std::string(text.data()) : "the server did not start";
        return false;
    }
    mg_set_request_handler(ctx_, "/", &HttpServer::on_request, this);
    return true;
}

void HttpServer::stop() {
    if (ctx_) {
        mg_stop(ctx_);
        ctx_ = nullptr;
    }
}

void HttpServer::publish(std::shared_ptr<const StatusSnapshot> snapshot) {
    std::lock_guard lock(mutex_);
    snapshot_.swap(snapshot);
    // The previous snapshot is released outside the lock (when `snapshot`
    // goes out of scope), unless a request still holds it.
}

std::shared_ptr<const StatusSnapshot> HttpServer::snapshot() const {
    std::lock_guard lock(mutex_);
    return snapshot_;
}

int HttpServer::on_request(mg_connection* conn, void* self) {
    return static_cast<HttpServer*>(self)->handle(conn);
}

bool HttpServer::authorised(mg_connection* conn) const {
    if (options_.token.empty()) return true;
    const char* h = mg_get_header(conn, "Authorization");
    if (!h) return false;
    const std::string_view auth(h);
    if (auth.rfind("Bearer ", 0) == 0) {
        return equal_in_constant_time(auth.substr(7), options_.token);
    }
    // A browser sends the token as the password of Basic authentication
    // (any user name): the page works with a token too.
    if (auth.rfind("Basic ", 0) == 0) {
        const auto decoded = base64_decode(auth.substr(6));
        if (!decoded) return false;
        const auto colon = decoded->find(':');
        if (colon == std::string::npos) return false;
        return equal_in_constant_time(std::string_view(*decoded).substr(colon + 1), options_.token);
    }
    return false;
}

int HttpServer::handle(mg_connection* conn) {
    const mg_request_info* ri = mg_get_request_info(conn);
    const std::string_view method = ri && ri->request_method ? ri->request_method : "";
    const std::string_view uri = ri && ri->local_uri ? ri->local_uri : "";

    const char* host = mg_get_header(conn, "Host");
    if (options_.token.empty() && host && !host_is_address(host)) {
        mg_disable_connection_keep_alive(conn);
        return respond_text(conn, 403,
                            "without http.token_file, use an address (e.g. 127.0.0.1) as the host");
    }
    // A browser sending another site's request (CSRF): a switch only comes
    // from the page itself.
    if (method == "POST") {
        const char* origin = mg_get_header(conn, "Origin");
        if (origin && (!host || std::string_view(origin) != "http://" + std::string(host))) {
            mg_disable_connection_keep_alive(conn);
            return respond_text(conn, 403, "a request from another origin is refused");
        }
    }
    if (!authorised(conn)) {
        mg_disable_connection_keep_alive(conn);
        return respond_text(conn, 401, "a token is needed: Authorization: Bearer <token>",
                            {{"WWW-Authenticate", "Bearer realm=\"tidegate\""},
                             {"WWW-Authenticate", "Basic realm=\"tidegate\""}});
    }
    // The body: nothing this server takes is larger than kMaxBody.
    std::string body;
    if (ri->content_length > static_cast<long long>(kMaxBody)) {
        mg_disable_connection_keep_alive(conn);
        return respond_text(conn, 413, "the body is larger than 4 KiB");
    }
    {
        char buf[1024];
        for (;;) {
            const int n = mg_read(conn, buf, sizeof buf);
            if (n <= 0) break;
            body.append(buf, static_cast<std::size_t>(n));
            if (body.size() > kMaxBody) {
                mg_disable_connection_keep_alive(conn);
                return respond_text(conn, 413, "the body is larger than 4 KiB");
            }
        }
    }

    const bool get = method == "GET" || method == "HEAD";
    const std::vector<Header> allow_get{{"Allow", "GET, HEAD"}};
    std::shared_ptr<const StatusSnapshot> snap = snapshot();

    if (uri == "/" || uri == "/index.html") {
        if (!get) return respond_text(conn, 405, "method not allowed", allow_get);
        return respond(conn, 200, "text/html; charset=utf-8", http::status_page(),
                       {{"Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src "
                         "'unsafe-inline'; connect-src 'self'; img-src data:"},
                        {"X-Frame-Options", "DENY"}});
    }
    if (uri == "/metrics" || uri == "/api/status") {
        if (!get) return respond_text(conn, 405, "method not allowed", allow_get);
        if (!snap) return respond_text(conn, 503, "starting");
        if (uri == "/metrics") {
            return respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
                           http::prometheus_text(*snap, clock_.monotonic()));
        }
        return respond(conn, 200, "application/json",
                       http::status_json(*snap, clock_.monotonic(), !options_.token.empty()));
    }
    constexpr std::string_view kOutputs = "/api/outputs/";
    if (uri.substr(0, kOutputs.size()) == kOutputs) {
        const std::string name(uri.substr(kOutputs.size()));
        if (method != "POST")
            return respond_text(conn, 405, "method not allowed", {{"Allow", "POST"}});
        if (!snap) return respond_text(conn, 503, "starting");
        const StatusSnapshot::Output* out = snap->output(name);
        if (!out) return respond_text(conn, 404, "no output named '" + name.substr(0, 64) + "'");
        if (options_.token.empty()) {
            return respond_text(conn, 403, "switching needs http.token_file to be set");
        }
        if (!out->remote) {
            return respond_text(conn, 403, "output '" + name + "' is not remote: true");
        }
        std::string_view v = body;
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) {
            v.remove_suffix(1);
        }
        if (v != "on" && v != "off") return respond_text(conn, 400, "the body must be on or off");
        switch_output_(name, v == "on");
        return respond_text(conn, 202, "switching " + name + " " + std::string(v));
    }
    return respond_text(conn, 404, "not found");
}

}  // namespace tg
