// The makers config_schema's tables declare keys with (text, flag, whole,
// duration, byte_size, choice, section, custom): each turns a key's path,
// default and help, its check and where its value lands into a ConfigKey.
// For config_schema.cpp and config_items.cpp only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config_schema.h"
#include "core/units.h"

namespace tg::schema {

using rules::YamlEntry;
using std::chrono::milliseconds;

inline std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The label of a key in messages: the dotted path at the top level, the bare
// name inside a list item ("interval").
template <class T>
std::string label_of(const ConfigKey<T>& k) {
    if constexpr (std::is_same_v<T, Config>) {
        return k.path;
    } else {
        return std::string(k.name());
    }
}

// A check of a converted value: why it is refused, or empty. `raw` is the
// value as written, for messages.
template <class V>
using Check = std::string (*)(const V& v, const std::string& raw);
template <class C>
bool callable(const C& c) {
    if constexpr (std::is_pointer_v<C>) {
        return c != nullptr;
    } else {
        return true;
    }
}

// Where a value lands.
template <class T, class V>
using Store = void (*)(T&, V);

// A key whose value converts with `conv`, passes `check` (a Check, or a
// callable holding its bounds) and is stored with `store(t, value)`.
template <class T, class V, class C = Check<V>>
ConfigKey<T> key(std::string path, std::string_view def, std::string_view help,
                 std::optional<V> (*conv)(const YAML::Node&, std::string&), Store<T, V> store,
                 C check = nullptr) {
    ConfigKey<T> k{std::move(path), def, help, {}, {}};
    const std::string label = label_of(k);
    k.set = [label, conv, store, check](ConfigReader& r, const YamlEntry& e, T& t) {
        auto v = r.yaml().get(e, label, conv);
        if (!v) return;
        if (callable(check)) {
            if (std::string why = check(*v, rules::shown(e.value.Scalar())); !why.empty()) {
                r.error(r.yaml().value_pos(e), label + ": " + why);
                return;
            }
        }
        store(t, std::move(*v));
    };
    return k;
}

template <class T>
ConfigKey<T> text(std::string path, std::string_view def, std::string_view help,
                  Store<T, std::string> store, Check<std::string> check = nullptr) {
    return key<T, std::string>(std::move(path), def, help, rules::as_text, std::move(store),
                               std::move(check));
}

template <class T>
ConfigKey<T> flag(std::string path, std::string_view def, std::string_view help,
                  Store<T, bool> store) {
    return key<T, bool>(std::move(path), def, help, rules::as_bool, std::move(store));
}

// A whole number from `lo` to `hi`.
template <class T>
ConfigKey<T> whole(std::string path, std::string_view def, std::string_view help, long long lo,
                   long long hi, Store<T, long long> store) {
    return key<T, long long>(std::move(path), def, help, rules::as_integer, std::move(store),
                             [lo, hi](const long long& v, const std::string& raw) -> std::string {
                                 if (v >= lo && v <= hi) return {};
                                 const std::string range =
                                     hi == lo + 1
                                         ? std::to_string(lo) + " or " + std::to_string(hi)
                                         : std::to_string(lo) + " to " + std::to_string(hi);
                                 return "must be " + range + ", got '" + raw + "'";
                             });
}

// A duration of at least `minimum` (or 0 when `allow_zero`).
template <class T>
ConfigKey<T> duration(std::string path, std::string_view def, std::string_view help,
                      milliseconds minimum, bool allow_zero, Store<T, milliseconds> store) {
    return key<T, milliseconds>(
        std::move(path), def, help, rules::as_duration, std::move(store),
        [minimum, allow_zero](const milliseconds& d, const std::string& raw) -> std::string {
            if (allow_zero && d.count() == 0) return {};
            if (d >= minimum && d.count() > 0) return {};
            return "must be at least " + format_duration(minimum) + ", got '" + raw + "'";
        });
}

// A size of at least `minimum` bytes.
template <class T>
ConfigKey<T> byte_size(std::string path, std::string_view def, std::string_view help,
                       std::uint64_t minimum, std::string below, Store<T, std::uint64_t> store) {
    return key<T, std::uint64_t>(
        std::move(path), def, help, rules::as_size, std::move(store),
        [minimum, below](const std::uint64_t& v, const std::string&) -> std::string {
            return v < minimum ? below : std::string();
        });
}

// One of a few words, each standing for a value.
template <class T, class V>
ConfigKey<T> choice(std::string path, std::string_view def, std::string_view help,
                    std::vector<std::pair<std::string, V>> words, Store<T, V> store) {
    ConfigKey<T> k{std::move(path), def, help, {}, {}};
    const std::string label = label_of(k);
    k.set = [label, words, store](ConfigReader& r, const YamlEntry& e, T& t) {
        auto v = r.yaml().get(e, label, rules::as_text);
        if (!v) return;
        std::vector<std::string> names;
        for (const auto& [word, value] : words) {
            if (word == *v) return store(t, value);
            names.push_back(word);
        }
        std::string expected;
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (i > 0) expected += i + 1 == names.size() ? " or " : ", ";
            expected += names[i];
        }
        r.error(r.yaml().value_pos(e),
                label + ": expected " + expected + ", got '" + rules::shown(*v) + "'");
    };
    return k;
}

template <class T>
ConfigKey<T> section(std::string path, std::string_view help,
                     decltype(ConfigKey<T>::done) done = {}) {
    return ConfigKey<T>{std::move(path), {}, help, {}, std::move(done)};
}

template <class T>
ConfigKey<T> custom(std::string path, std::string_view def, std::string_view help,
                    decltype(ConfigKey<T>::set) set) {
    return ConfigKey<T>{std::move(path), def, help, std::move(set), {}};
}

// Checks shared by several keys.
inline std::string at_most_bytes(const std::string& v, std::size_t max, const char* whose) {
    if (v.size() <= max) return {};
    return std::to_string(v.size()) + " bytes; " + whose + " at most " + std::to_string(max);
}

inline bool is_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

}  // namespace tg::schema
