// Option checks that several drivers share; each throws OptionError naming
// the key, so the config loader can point at it.
#pragma once

#include <optional>
#include <string>

#include "driver.h"

namespace tg::drivers {

// Throws unless `path` is absolute.
void require_absolute(const std::string& key, const std::string& path);

// An on/off option such as an output's `initial`: "" = not set (nullopt);
// on, off, true, false in any case; anything else throws.
std::optional<bool> optional_on_off(const Options& options, const std::string& key);

// An integer option that must lie in [lo, hi].
long long integer_in(const Options& options, const std::string& key, long long lo, long long hi);

}  // namespace tg::drivers
