#include "connect_check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "broker_uri.h"
#include "core/units.h"

namespace tg {
namespace {

using std::chrono::milliseconds;

using Target = BrokerUri;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

std::string where(const Target& t) {
    return (t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host) + ":" + t.port;
}

// A TCP connection to the first address that accepts, within `timeout` each.
bool tcp_connect(const Target& t, milliseconds timeout, Fd& out, std::string& why) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int g = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res);
    if (g != 0) {
        if (g == EAI_AGAIN) {
            why = "name not resolved: no answer from DNS for '" + t.host +
                  "' (is the network up, is a DNS server configured?)";
        } else if (g == EAI_SERVICE) {
            why = "port '" + t.port + "' is not a port number";
        } else {
            why = "name not resolved: '" + t.host + "' is not known (" + gai_strerror(g) +
                  "); check the spelling, DNS or /etc/hosts";
        }
        return false;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    int last = 0;
    bool timed_out = false;
    for (addrinfo* a = res; a; a = a->ai_next) {
        Fd fd(
            ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        if (fd.get() < 0) {
            last = errno;
            continue;
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            continue;
        }
        pollfd p{fd.get(), POLLOUT, 0};
        const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (n == 0) {
            timed_out = true;
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (n < 0 || err != 0) {
            last = n < 0 ? errno : err;
            continue;
        }
        // Blocking from here, with the timeout on every read and write.
        ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
        timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        out = std::move(fd);
        return true;
    }
    if (last == ECONNREFUSED) {
        why = "connection refused: nothing listens on " + where(t) +
              " (is the broker running, is the port right?)";
    } else if (timed_out) {
        why = "timed out after " + format_duration(timeout) + " connecting to " + where(t) +
              " (a firewall dropping the packets, or the wrong address)";
    } else if (last == ENETUNREACH || last == EHOSTUNREACH) {
        why = "no route to " + where(t) + " (" + std::strerror(last) + ")";
    } else {
        why = "cannot connect to " + where(t) + ": " + std::strerror(last);
    }
    return false;
}

// A byte stream: the socket, or TLS over it.
class Stream {
  public:
    virtual ~Stream() = default;
    virtual bool write_all(const std::string& bytes) = 0;
    // Exactly n bytes, or false (closed, timed out, TLS alert: see why()).
    virtual bool read_exact(unsigned char* buf, std::size_t n) = 0;
    std::string why;
};

class PlainStream final : public Stream {
  public:
    explicit PlainStream(int fd) : fd_(fd) {}
    bool write_all(const std::string& bytes) override {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t w = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (w <= 0) {
                why = std::strerror(errno);
                return false;
            }
            done += static_cast<std::size_t>(w);
        }
        return true;
    }
    bool read_exact(unsigned char* buf, std::size_t n) override {
        std::size_t done = 0;
        while (done < n) {
            const ssize_t r = ::recv(fd_, buf + done, n - done, 0);
            if (r == 0) {
                why = "closed";
                return false;
            }
            if (r < 0) {
                why = errno == EAGAIN || errno == EWOULDBLOCK ? "timeout" : std::strerror(errno);
                return false;
            }
            done += static_cast<std::size_t>(r);
        }
        return true;
    }

  private:
    int fd_;
};

std::string ssl_error_text() {
    const unsigned long e = ERR_peek_last_error();
    if (e == 0) return "no further detail";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// The broker asked for a client certificate and got none (a TLS 1.3 alert,
// or a handshake failure alert in TLS 1.2).
bool certificate_required_alert(bool have_cert) {
    const unsigned long e = ERR_peek_last_error();
    const int reason = ERR_GET_REASON(e);
    return reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
           (!have_cert && reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
}

const char* kClientCertNeeded =
    "TLS: the broker requires a client certificate (set mqtt.tls.cert_file and key_file)";

class TlsStream final : public Stream {
  public:
    TlsStream(SSL* ssl, bool have_cert) : ssl_(ssl), have_cert_(have_cert) {}
    bool write_all(const std::string& bytes) override {
        const int w = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
        if (w <= 0) return fail(w);
        return true;
    }
    bool read_exact(unsigned char* buf, std::size_t n) override {
        std::size_t done = 0;
        while (done < n) {
            const int r = SSL_read(ssl_, buf + done, static_cast<int>(n - done));
            if (r <= 0) return fail(r);
            done += static_cast<std::size_t>(r);
        }
        return true;
    }

  private:
    bool fail(int r) {
        const int e = SSL_get_error(ssl_, r);
        if ((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) &&
            !certificate_required_alert(have_cert_)) {
            // A TLS 1.3 broker that wants a client certificate says so in an
            // alert after the handshake; a failed write may come before it
            // is read. Read it now.
            char b;
            (void)SSL_read(ssl_, &b, 1);
        }
        if (certificate_required_alert(have_cert_)) {
            why = kClientCertNeeded;
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            why = "closed";
        } else if (e == SSL_ERROR_SYSCALL) {
            why = errno == EAGAIN || errno == EWOULDBLOCK ? "timeout" : "closed";
        } else {
            why = "TLS: " + ssl_error_text();
        }
        return false;
    }
    SSL* ssl_;
    bool have_cert_;
};

std::string verify_error_text(long v, const Target& t, SSL* ssl) {
    switch (v) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return "TLS: the broker's certificate is signed by a CA this gateway does not trust "
                   "(set mqtt.tls.ca_file to the CA that signed it)";
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return "TLS: host name mismatch: the broker's certificate is not for '" + t.host +
                   "' (connect by the name the certificate carries, or set "
                   "mqtt.tls.verify_hostname: false)";
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return "TLS: the broker's certificate has expired (renew it; or this machine's "
                   "clock is wrong)";
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "TLS: the broker's certificate is not valid yet (is this machine's clock "
                   "right? A Pi without a real-time clock needs NTP first)";
        default: {
            (void)ssl;
            return std::string("TLS: the broker's certificate was not accepted: ") +
                   X509_verify_cert_error_string(v);
        }
    }
}

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};

std::string encode_length(std::size_t n) {
    std::string out;
    do {
        unsigned char b = n % 128;
        n /= 128;
        if (n > 0) b |= 0x80;
        out += static_cast<char>(b);
    } while (n > 0);
    return out;
}

void put_string(std::string& out, const std::string& s) {
    out += static_cast<char>((s.size() >> 8) & 0xFF);
    out += static_cast<char>(s.size() & 0xFF);
    out += s;
}

std::string connect_packet(const MqttConfig& cfg) {
    std::string body;
    put_string(body, "MQTT");
    body += static_cast<char>(cfg.version == 5 ? 5 : 4);
    unsigned char flags = 0x02;  // clean session: the check leaves nothing behind
    if (!cfg.username.empty()) flags |= 0x80;
    if (!cfg.password.empty()) flags |= 0x40;
    body += static_cast<char>(flags);
    body += '\0';
    body += static_cast<char>(30);       // keep alive
    if (cfg.version == 5) body += '\0';  // no properties
    put_string(body, (cfg.client_id.empty() ? std::string("tidegate") : cfg.client_id) + "-check");
    if (!cfg.username.empty()) put_string(body, cfg.username);
    if (!cfg.password.empty()) put_string(body, cfg.password);
    return std::string(1, '\x10') + encode_length(body.size()) + body;
}

std::string connack_text(int version, unsigned rc) {
    if (version == 5) {
        switch (rc) {
            case 0x84:
                return "MQTT: the broker refused protocol version 5 (set mqtt.version: 3.1.1)";
            case 0x85:
                return "MQTT: the broker refused the client id";
            case 0x86:
                return "MQTT: bad user name or password (mqtt.username, mqtt.password_file)";
            case 0x87:
                return "MQTT: not authorised: the broker does not let this client connect";
            case 0x88:
            case 0x89:
                return "MQTT: the broker is unavailable or busy";
            case 0x8A:
                return "MQTT: this client is banned by the broker";
            default:
                return "MQTT: the broker refused the connection (reason code " +
                       std::to_string(rc) + ")";
        }
    }
    switch (rc) {
        case 1:
            return "MQTT: the broker refused protocol version 3.1.1 (try mqtt.version: 5)";
        case 2:
            return "MQTT: the broker refused the client id";
        case 3:
            return "MQTT: the broker is unavailable";
        case 4:
            return "MQTT: bad user name or password (mqtt.username, mqtt.password_file)";
        case 5:
            return "MQTT: not authorised: the broker refused these credentials or this client "
                   "(mqtt.username, mqtt.password_file, the broker's ACL)";
        default:
            return "MQTT: the broker refused the connection (return code " + std::to_string(rc) +
                   ")";
    }
}

// CONNECT, then the CONNACK's verdict.
bool mqtt_handshake(Stream& s, const MqttConfig& cfg, milliseconds timeout, std::string& why) {
    auto failed = [&](const std::string& what) {
        if (s.why.rfind("TLS", 0) == 0) {
            why = s.why;
        } else if (s.why == "timeout") {
            why = "MQTT: no answer to CONNECT within " + format_duration(timeout) +
                  " (is this an MQTT port?)";
        } else {
            why = "MQTT: the broker closed the connection " + what +
                  (cfg.version == 5 ? " (a broker without MQTT 5 does this: try mqtt.version: "
                                      "3.1.1)"
                                    : " (is this an MQTT port?)");
        }
        return false;
    };
    if (!s.write_all(connect_packet(cfg))) return failed("before CONNECT was sent");
    unsigned char head[2];
    if (!s.read_exact(head, 2)) return failed("without answering CONNECT");
    if ((head[0] & 0xF0) != 0x20) {
        why = "MQTT: the answer to CONNECT is not a CONNACK (is this an MQTT port?)";
        return false;
    }
    std::size_t len = head[1] & 0x7F;
    for (int shift = 7, more = head[1] & 0x80; more; shift += 7) {
        unsigned char b;
        if (!s.read_exact(&b, 1) || shift > 21) return failed("in the middle of its CONNACK");
        len |= static_cast<std::size_t>(b & 0x7F) << shift;
        more = b & 0x80;
    }
    if (len < 2 || len > 65536) {
        why = "MQTT: a malformed CONNACK";
        return false;
    }
    std::string body(len, '\0');
    if (!s.read_exact(reinterpret_cast<unsigned char*>(body.data()), len))
        return failed("in the middle of its CONNACK");
    const unsigned rc = static_cast<unsigned char>(body[1]);
    if (rc != 0) {
        why = connack_text(cfg.version, rc);
        return false;
    }
    s.write_all(std::string("\xE0\x00", 2));  // DISCONNECT
    return true;
}

bool is_ip_address(const std::string& host) {
    in6_addr a6;
    in_addr a4;
    return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

BrokerProbe probe_broker(const std::string& uri, const MqttConfig& cfg, milliseconds timeout) {
    BrokerProbe p;
    p.uri = uri;
    std::string why;
    const std::optional<Target> t = parse_broker_uri(uri, why);
    if (!t) {
        p.detail = why;
        return p;
    }
    Fd fd;
    if (!tcp_connect(*t, timeout, fd, p.detail)) return p;
    const std::string version = cfg.version == 5 ? "MQTT 5" : "MQTT 3.1.1";
    if (!t->tls) {
        PlainStream s(fd.get());
        p.ok = mqtt_handshake(s, cfg, timeout, p.detail);
        if (p.ok) p.detail = "ok (" + version + ")";
        return p;
    }
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        p.detail = "TLS: cannot set up: " + ssl_error_text();
        return p;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!cfg.tls.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), cfg.tls.ca_file.c_str(), nullptr) != 1) {
            p.detail =
                "TLS: cannot use mqtt.tls.ca_file " + cfg.tls.ca_file + ": " + ssl_error_text();
            return p;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx.get());
    }
    const bool have_cert = !cfg.tls.cert_file.empty();
    if (have_cert &&
        (SSL_CTX_use_certificate_chain_file(ctx.get(), cfg.tls.cert_file.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx.get(), cfg.tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
        p.detail = "TLS: cannot use mqtt.tls.cert_file / key_file: " + ssl_error_text();
        return p;
    }
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd.get());
    const bool ip = is_ip_address(t->host);
    if (!ip) SSL_set_tlsext_host_name(ssl.get(), t->host.c_str());
    if (cfg.tls.verify_hostname) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(param, t->host.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, t->host.c_str(), 0);
    }
    ERR_clear_error();
    if (SSL_connect(ssl.get()) != 1) {
        const long v = SSL_get_verify_result(ssl.get());
        if (v != X509_V_OK) {
            p.detail = verify_error_text(v, *t, ssl.get());
        } else if (certificate_required_alert(have_cert)) {
            p.detail = kClientCertNeeded;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            p.detail = "TLS: no answer to the handshake within " + format_duration(timeout) +
                       " (is this a TLS port?)";
        } else {
            p.detail = "TLS: the handshake failed (" + ssl_error_text() + "); is this a TLS port?";
        }
        return p;
    }
    TlsStream s(ssl.get(), have_cert);
    p.ok = mqtt_handshake(s, cfg, timeout, p.detail);
    if (p.ok) p.detail = "ok (" + version + ", " + SSL_get_version(ssl.get()) + ")";
    SSL_shutdown(ssl.get());
    return p;
}

std::vector<BrokerProbe> probe_brokers(const MqttConfig& cfg, milliseconds timeout) {
    // A broker closing on us must not end the check with SIGPIPE.
    ::signal(SIGPIPE, SIG_IGN);
    std::vector<BrokerProbe> out;
    const std::vector<std::string> uris =
        cfg.uris.empty() ? std::vector<std::string>{cfg.uri} : cfg.uris;
    for (const std::string& u : uris)
        out.push_back(probe_broker(u, cfg, timeout));
    return out;
}

}  // namespace tg
