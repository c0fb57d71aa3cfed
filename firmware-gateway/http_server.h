// HttpServer: the local HTTP server of SPEC §9 (CivetWeb, Debian's shared
// libcivetweb). Its worker threads answer from the latest StatusSnapshot the
// event loop handed over (a shared_ptr swapped under a mutex held for a
// pointer copy); a switch request is posted to the loop like a remote
// output command, never run on a server thread. Bounded: a few workers, a
// short accept queue, request and keep-alive timeouts, bodies of at most
// kMaxBody bytes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "status_snapshot.h"

struct mg_context;
struct mg_connection;

namespace tg {

class HttpServer {
  public:
    static constexpr std::size_t kMaxBody = 4096;

    struct Options {
        std::string listen;  // host:port or [v6]:port (SPEC §9 http.listen)
        std::string token;   // empty: no token, and no switching
    };
    // Posts "switch output `name` on/off" to the event loop; thread-safe.
    using SwitchOutput = std::function<void(const std::string& name, bool on)>;

    HttpServer(Options options, const Clock& clock, SwitchOutput switch_output);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Starts listening. False with the reason when it cannot (address in
    // use, not an address of this host).
    bool start(std::string& why);
    void stop();

    // From the event loop: what requests see from now on.
    void publish(std::shared_ptr<const StatusSnapshot> snapshot);

    // The snapshot requests see now (null until the first publish).
    std::shared_ptr<const StatusSnapshot> snapshot() const;

  private:
    static int on_request(mg_connection* conn, void* self);
    int handle(mg_connection* conn);
    bool authorised(mg_connection* conn) const;
    int switch_output(mg_connection* conn, const std::string& name);

    Options options_;
    const Clock& clock_;
    SwitchOutput switch_output_;
    mg_context* ctx_ = nullptr;
    mutable std::mutex mutex_;  // guards snapshot_ (a pointer copy, nothing more)
    std::shared_ptr<const StatusSnapshot> snapshot_;
};

// "127.0.0.1:9780" / "[::1]:9780" → a problem in words, or "" when usable.
std::string http_listen_problem(const std::string& listen);

}  // namespace tg
