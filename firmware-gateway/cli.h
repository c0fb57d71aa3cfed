// The command line of SPEC §1: tidegate [run|check|replay|test|version] with -c and
// --log-level. Parsing is separate from running so it can be tested.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tg {

inline constexpr const char* kDefaultConfig = "/etc/tidegate/tidegate.yaml";

struct CliArgs {
    enum class Command { Run, Check, Replay, Test, Version, Help } command = Command::Run;
    std::optional<std::string> config;  // -c FILE
    std::string log_level = "info";
    std::vector<std::string> paths;      // check PATH..., replay EVENTS..., test TESTFILE...
    std::vector<std::string> rules;      // replay/test --rules PATH
    std::optional<std::string> junit;    // test --junit FILE
    std::optional<std::string> explain;  // replay --explain RULE
    bool connect = false;                // check --connect
};

struct CliError {
    std::string message;  // printed as "tidegate: MESSAGE"; exit 2
};

// Returns the parsed arguments or the usage error.
std::variant<CliArgs, CliError> parse_cli(const std::vector<std::string>& args);

std::string usage_text();

// Entry point for the whole program: returns the exit code.
int run_cli(const std::vector<std::string>& args);

}  // namespace tg
