#include "driver.h"

namespace tg::drivers {

const OptValue& Options::get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw OptionError(name, "missing option '" + name + "'");
    return it->second;
}

double Options::number(const std::string& name) const {
    const OptValue& v = get(name);
    if (const long long* i = std::get_if<long long>(&v)) return static_cast<double>(*i);
    return std::get<double>(v);
}
long long Options::integer(const std::string& name) const {
    return std::get<long long>(get(name));
}
bool Options::boolean(const std::string& name) const {
    return std::get<bool>(get(name));
}
const std::string& Options::string(const std::string& name) const {
    return std::get<std::string>(get(name));
}
std::chrono::milliseconds Options::duration(const std::string& name) const {
    return std::get<std::chrono::milliseconds>(get(name));
}
const std::vector<double>& Options::numbers(const std::string& name) const {
    return std::get<std::vector<double>>(get(name));
}
const std::vector<std::string>& Options::strings(const std::string& name) const {
    return std::get<std::vector<std::string>>(get(name));
}

std::optional<bool> parse_on_off(std::string_view text) {
    std::string lower;
    for (char c : text)
        lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (lower == "on" || lower == "true") return true;
    if (lower == "off" || lower == "false") return false;
    return std::nullopt;
}

}  // namespace tg::drivers
