// tidegate: edge event gateway for sensors. See SPEC.md §1 for the commands.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli.h"

int main(int argc, char** argv) {
    try {
        return tg::run_cli(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tidegate: fatal: %s\n", e.what());
        return 1;
    }
}
