// The texts the local HTTP server sends (SPEC §9), rendered from a
// StatusSnapshot: pure functions, no I/O, no locks.
#pragma once

#include <string>
#include <string_view>

#include "status_snapshot.h"

namespace tg::http {

// Prometheus text exposition format 0.0.4. `now` gives ages and the uptime.
std::string prometheus_text(const StatusSnapshot& s, MonoTime now);

// The JSON of GET /api/status; `switches`: remote outputs may be switched
// over HTTP (a token is configured).
std::string status_json(const StatusSnapshot& s, MonoTime now, bool switches);

// A label value of the text format: \, " and newline escaped.
std::string escape_label(std::string_view v);

// The status page (HTML with its script and style inline).
std::string_view status_page();

}  // namespace tg::http
