#include "cli.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "config.h"
#include "connect_check.h"
#include "core/file_read.h"
#include "core/log.h"
#include "gateway.h"
#include "outbox.h"
#include "rule_files.h"
#include "rule_tests.h"
#include "rules/replay.h"
#include "rules/rule_test.h"
#include "rules/yaml_reader.h"

namespace tg {
namespace {

bool takes_value(const std::string& a, const char* flag, std::optional<std::string>& inline_value) {
    const std::string f = flag;
    if (a == f) return true;
    if (a.rfind(f + "=", 0) == 0) {
        inline_value = a.substr(f.size() + 1);
        return true;
    }
    return false;
}

void print_diagnostics(const Diagnostics& d, std::FILE* out) {
    for (const SourceError& e : d.items())
        std::fprintf(out, "%s\n", e.format().c_str());
}

std::string build_info() {
    std::string s = "tidegate " TIDEGATE_VERSION "\n";
    s += "built with g++ " __VERSION__ ", C++20";
#if defined(__aarch64__)
    s += ", aarch64";
#elif defined(__arm__)
    s += ", arm";
#elif defined(__x86_64__)
    s += ", x86_64";
#endif
#if defined(NDEBUG)
    s += ", release";
#else
    s += ", debug";
#endif
    s += "\nevent schema v" + std::to_string(1) + "\n";
    return s;
}

// A regular file whose YAML has a top-level `tests:` key.
bool is_rule_test_file(const std::string& path) {
    std::string text, why;
    return read_regular_file(path, kMaxConfigFileBytes, text, why) &&
           rules::is_rule_test_text(text);
}

int cmd_check(const CliArgs& a) {
    // Every problem of every file in one run (SPEC §1): config first, then rules.
    Diagnostics out;
    std::optional<Config> cfg;
    const bool with_config = a.config.has_value() || a.paths.empty() || a.connect;
    if (with_config) {
        const std::string path = a.config.value_or(kDefaultConfig);
        Diagnostics warnings;
        try {
            cfg = load_config(path, &warnings);
        } catch (const LoadError& e) {
            for (const SourceError& d : e.diagnostics().items())
                out.add(d);
        }
        for (const SourceError& d : warnings.items())
            out.add(d);
    }
    if (!a.paths.empty()) {
        // Files named on the command line; names are verified only against a
        // config. Rule test files (a top-level `tests:`) are read as such.
        std::vector<std::string> rule_paths, test_files;
        for (const std::string& p : a.paths)
            (is_rule_test_file(p) ? test_files : rule_paths).push_back(p);
        rules::CheckOptions opts = cfg ? rule_check_options(*cfg) : rules::CheckOptions{};
        if (!rule_paths.empty()) {
            const Diagnostics found = rules::check_rule_paths(rule_paths, opts);
            for (const SourceError& d : found.items())
                out.add(d);
        }
        if (!test_files.empty()) {
            const rules::RuleTestContext context = rule_test_context(cfg ? &*cfg : nullptr, {});
            for (const std::string& f : test_files)
                rules::read_rule_test_file(f, context, out);
        }
    } else if (cfg) {
        Diagnostics warnings;
        rules::CompileResult res = load_rule_files(*cfg, &warnings);
        for (const SourceError& d : warnings.items())
            out.add(d);
        for (const SourceError& d : res.diagnostics.items())
            out.add(d);
    }
    print_diagnostics(out, stdout);
    if (out.has_errors()) return 1;
    if (a.connect && cfg) {
        // Every broker once, as the gateway would connect (SPEC §13).
        bool all_ok = true;
        for (const BrokerProbe& p : probe_brokers(cfg->mqtt, std::chrono::seconds(5))) {
            std::printf("%s: %s%s\n", p.uri.c_str(), p.ok ? "" : "error: ", p.detail.c_str());
            all_ok = all_ok && p.ok;
        }
        return all_ok ? 0 : 1;
    }
    return 0;
}

// The config of -c, when given; false after printing its problems to `out`.
bool load_given_config(const CliArgs& a, std::optional<Config>& cfg, std::FILE* out) {
    if (!a.config) return true;
    try {
        cfg = load_config(*a.config);
    } catch (const LoadError& e) {
        print_diagnostics(e.diagnostics(), out);
        return false;
    }
    return true;
}

int cmd_replay(const CliArgs& a) {
    if (!a.config && a.rules.empty()) {
        std::fprintf(stderr,
                     "tidegate: replay needs rules: -c FILE (its rules.paths) or --rules PATH\n"
                     "Try 'tidegate --help'.\n");
        return 2;
    }
    std::optional<Config> cfg;
    if (!load_given_config(a, cfg, stderr)) return 1;
    rules::CompileResult res;
    if (!a.rules.empty()) {
        res = rules::load_rules(a.rules, cfg ? rule_check_options(*cfg) : rules::CheckOptions{});
    } else {
        Diagnostics warnings;
        res = load_rule_files(*cfg, &warnings);
        print_diagnostics(warnings, stderr);
    }
    if (!res.rules) {
        print_diagnostics(res.diagnostics, stderr);
        return 1;
    }
    if (a.explain && !res.rules->find(*a.explain)) {
        std::vector<std::string> names;
        for (const rules::Rule& r : res.rules->rules())
            names.push_back(r.name);
        const std::string hint = closest_match(*a.explain, names);
        std::fprintf(stderr, "tidegate: replay --explain: no rule named '%s'%s\n",
                     rules::shown(*a.explain).c_str(),
                     hint.empty() ? "" : (" (did you mean '" + hint + "'?)").c_str());
        return 2;
    }
    const std::chrono::milliseconds tick = cfg ? cfg->rules.tick : std::chrono::milliseconds(1000);
    rules::Replayer replayer(res.rules, tick, std::cout, a.explain.value_or(""));
    bool ok = true;
    std::vector<std::string> inputs = a.paths;
    if (inputs.empty()) inputs.push_back("-");
    for (const std::string& in : inputs) {
        if (in == "-") {
            ok = replayer.feed(std::cin, "<stdin>", std::cerr) && ok;
        } else if (is_log_folder(in)) {
            // A journal (or data_dir): the envelopes stored in it, in seq order.
            std::stringstream lines;
            try {
                read_log(in, [&](const outbox::Record& r) { lines << r.payload << '\n'; });
            } catch (const std::exception& e) {
                std::fprintf(stderr, "%s: error: %s\n", in.c_str(), e.what());
                return 1;
            }
            ok = replayer.feed(lines, in, std::cerr) && ok;
        } else {
            std::ifstream file(in);
            if (!file) {
                std::fprintf(stderr, "%s: error: cannot read: %s\n", in.c_str(),
                             std::strerror(errno));
                return 1;
            }
            ok = replayer.feed(file, in, std::cerr) && ok;
        }
    }
    replayer.finish();
    std::cout.flush();
    return ok ? 0 : 1;
}

int cmd_test(const CliArgs& a) {
    if (a.paths.empty()) {
        std::fprintf(stderr,
                     "tidegate: test needs one or more TESTFILEs\nTry 'tidegate --help'.\n");
        return 2;
    }
    std::optional<Config> cfg;
    if (!load_given_config(a, cfg, stdout)) return 1;
    return run_rule_test_files(a.paths, cfg ? &*cfg : nullptr, a.rules, a.junit);
}

int cmd_run(const CliArgs& a) {
    const std::string path = a.config.value_or(kDefaultConfig);
    Config cfg;
    Diagnostics warnings;
    try {
        cfg = load_config(path, &warnings);
    } catch (const LoadError& e) {
        print_diagnostics(e.diagnostics(), stderr);
        return 1;
    }
    for (const SourceError& w : warnings.items())
        log_warn("config", w.format());
    // Rules are checked before anything starts: a broken rule file is an
    // error at start (on a reload it is rejected and the old rules stay).
    Diagnostics rule_warnings;
    rules::CompileResult rules = load_rule_files(cfg, &rule_warnings);
    for (const SourceError& w : rule_warnings.items())
        log_warn("rules", w.format());
    if (!rules.rules) {
        print_diagnostics(rules.diagnostics, stderr);
        return 1;
    }

    // Signals are taken by one thread with sigwait; every other thread
    // (Paho's included) inherits the blocked mask, so no handler runs at an
    // arbitrary point.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    RealClock clock;
    std::unique_ptr<Gateway> gw;
    try {
        gw = std::make_unique<Gateway>(std::move(cfg), clock, rules.rules);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", path.c_str(), e.what());
        return 1;
    }

    std::atomic<bool> done{false};
    std::thread signals([&] {
        for (;;) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0) continue;
            if (done.load()) return;
            if (sig == SIGHUP) {
                gw->request_reload();
            } else if (sig != SIGUSR1) {
                gw->request_stop(sig);
            }
        }
    });

    int rc = 1;
    try {
        rc = gw->run();
    } catch (const std::exception& e) {
        log_error("gateway", e.what());
        rc = 1;
    }
    done.store(true);
    pthread_kill(signals.native_handle(), SIGUSR1);
    signals.join();
    gw.reset();
    return rc;
}

}  // namespace

std::string usage_text() {
    return "usage: tidegate [run] [-c FILE] [--log-level LEVEL]   run the gateway (default)\n"
           "       tidegate check [-c FILE] [PATH...]              validate config and rule files\n"
           "       tidegate check --connect [-c FILE]              ... and try every broker once\n"
           "       tidegate replay [-c FILE] [--rules PATH]... [--explain RULE] [EVENTS...]\n"
           "                                  run the rules over recorded events (files, a\n"
           "                                  journal folder, or - for standard input);\n"
           "                                  --explain shows why RULE did (not) fire\n"
           "       tidegate test [-c FILE] [--rules PATH]... [--junit FILE] TESTFILE...\n"
           "                                  run rule tests (readings at virtual times,\n"
           "                                  expected transitions and actions)\n"
           "       tidegate version                                print version and build info\n"
           "\n"
           "  -c, --config FILE   configuration file (default " +
           std::string(kDefaultConfig) +
           ")\n"
           "  --log-level LEVEL   debug | info | warn | error (default info)\n"
           "  -h, --help          show this help\n"
           "\n"
           "Exit codes: 0 success, 1 invalid input or runtime failure, 2 usage.\n";
}

std::variant<CliArgs, CliError> parse_cli(const std::vector<std::string>& args) {
    CliArgs out;
    std::size_t i = 0;
    bool have_command = false;
    if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
        const std::string& c = args[0];
        if (c == "run")
            out.command = CliArgs::Command::Run;
        else if (c == "check")
            out.command = CliArgs::Command::Check;
        else if (c == "replay")
            out.command = CliArgs::Command::Replay;
        else if (c == "test")
            out.command = CliArgs::Command::Test;
        else if (c == "version")
            out.command = CliArgs::Command::Version;
        else if (c == "help")
            out.command = CliArgs::Command::Help;
        else
            return CliError{"unknown command '" + c +
                            "' (expected run, check, replay, test or version)"};
        have_command = true;
        i = 1;
    }
    (void)have_command;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        std::optional<std::string> inline_value;
        if (a == "-h" || a == "--help") {
            out.command = CliArgs::Command::Help;
            return out;
        }
        if (takes_value(a, "-c", inline_value) || takes_value(a, "--config", inline_value)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return CliError{"option " + a + " needs a FILE"};
                inline_value = args[++i];
            }
            out.config = *inline_value;
            continue;
        }
        if (out.command == CliArgs::Command::Check && a == "--connect") {
            out.connect = true;
            continue;
        }
        if (out.command == CliArgs::Command::Replay && takes_value(a, "--explain", inline_value)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return CliError{"option --explain needs a RULE"};
                inline_value = args[++i];
            }
            out.explain = *inline_value;
            continue;
        }
        if (out.command == CliArgs::Command::Test && takes_value(a, "--junit", inline_value)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return CliError{"option --junit needs a FILE"};
                inline_value = args[++i];
            }
            out.junit = *inline_value;
            continue;
        }
        if ((out.command == CliArgs::Command::Replay || out.command == CliArgs::Command::Test) &&
            takes_value(a, "--rules", inline_value)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return CliError{"option --rules needs a PATH"};
                inline_value = args[++i];
            }
            out.rules.push_back(*inline_value);
            continue;
        }
        if (takes_value(a, "--log-level", inline_value)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) return CliError{"option --log-level needs a LEVEL"};
                inline_value = args[++i];
            }
            if (!parse_log_level(*inline_value)) {
                return CliError{"invalid log level '" + *inline_value +
                                "' (expected debug, info, warn or error)"};
            }
            out.log_level = *inline_value;
            continue;
        }
        if (!a.empty() && a[0] == '-' && a != "-") return CliError{"unknown option '" + a + "'"};
        if (out.command == CliArgs::Command::Check || out.command == CliArgs::Command::Replay ||
            out.command == CliArgs::Command::Test) {
            out.paths.push_back(a);
            continue;
        }
        return CliError{"unexpected argument '" + a + "'"};
    }
    return out;
}

int run_cli(const std::vector<std::string>& args) {
    auto parsed = parse_cli(args);
    if (const CliError* err = std::get_if<CliError>(&parsed)) {
        std::fprintf(stderr, "tidegate: %s\nTry 'tidegate --help'.\n", err->message.c_str());
        return 2;
    }
    const CliArgs& a = std::get<CliArgs>(parsed);
    set_log_level(*parse_log_level(a.log_level));
    switch (a.command) {
        case CliArgs::Command::Help:
            std::fputs(usage_text().c_str(), stdout);
            return 0;
        case CliArgs::Command::Version:
            std::fputs(build_info().c_str(), stdout);
            return 0;
        case CliArgs::Command::Check:
            return cmd_check(a);
        case CliArgs::Command::Replay:
            return cmd_replay(a);
        case CliArgs::Command::Test:
            return cmd_test(a);
        case CliArgs::Command::Run:
            return cmd_run(a);
    }
    return 2;
}

}  // namespace tg
