// Command-line parsing of SPEC §1.
#include <catch2/catch.hpp>

#include "cli.h"

using namespace tg;

namespace {
CliArgs ok(std::vector<std::string> a) {
    auto r = parse_cli(a);
    REQUIRE(std::holds_alternative<CliArgs>(r));
    return std::get<CliArgs>(r);
}
std::string err(std::vector<std::string> a) {
    auto r = parse_cli(a);
    REQUIRE(std::holds_alternative<CliError>(r));
    return std::get<CliError>(r).message;
}
}  // namespace

TEST_CASE("run is the default command", "[cli]") {
    CliArgs a = ok({});
    CHECK(a.command == CliArgs::Command::Run);
    CHECK_FALSE(a.config);
    CHECK(a.log_level == "info");
    CliArgs b = ok({"-c", "/x.yaml", "--log-level", "debug"});
    CHECK(b.command == CliArgs::Command::Run);
    CHECK(*b.config == "/x.yaml");
    CHECK(b.log_level == "debug");
}

TEST_CASE("commands and their flags", "[cli]") {
    CHECK(ok({"run", "--config=/a.yaml"}).config == "/a.yaml");
    CHECK(ok({"run", "--log-level=warn"}).log_level == "warn");
    CHECK(ok({"version"}).command == CliArgs::Command::Version);
    CHECK(ok({"check", "-c", "f.yaml"}).command == CliArgs::Command::Check);
    CHECK(ok({"check", "rules/a.yaml", "rules"}).paths.size() == 2);
    CHECK(ok({"--help"}).command == CliArgs::Command::Help);
    CHECK(ok({"run", "-h"}).command == CliArgs::Command::Help);
}

TEST_CASE("usage errors say what is wrong", "[cli]") {
    CHECK_THAT(err({"frobnicate"}), Catch::Contains("unknown command 'frobnicate'"));
    CHECK_THAT(err({"run", "--bogus"}), Catch::Contains("unknown option '--bogus'"));
    CHECK_THAT(err({"run", "-c"}), Catch::Contains("needs a FILE"));
    CHECK_THAT(err({"--log-level", "loud"}), Catch::Contains("invalid log level 'loud'"));
    CHECK_THAT(err({"run", "extra"}), Catch::Contains("unexpected argument 'extra'"));
}
