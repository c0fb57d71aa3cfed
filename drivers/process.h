// Running a program without a shell, the one way the gateway does it: the
// command driver (a reading from a program's output) and rule `exec` actions
// both go through run_process. The program gets its own process group, a
// clean signal state, /dev/null as stdin and pipes for stdout/stderr; a
// timeout or a stop kills the whole group, so what it started goes too.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace tg::drivers {

// How one run ended, and what it printed (up to the caps given).
struct ProcessOutcome {
    enum class Kind {
        Exited,       // code: the exit status
        Signaled,     // code: the signal that ended it
        Timeout,      // the timeout passed; the process group was killed
        SpawnFailed,  // code: errno (e.g. ENOENT for a missing program)
        Stopped,      // stop_fd became readable; the process group was killed
    };
    Kind kind = Kind::Exited;
    int code = 0;
    std::string out;
    std::string err;
    bool out_truncated = false;  // stdout was longer than max_out (the rest was dropped)
    bool err_truncated = false;
};

// Runs argv (argv[0] looked up on PATH unless it holds a '/'; each element one
// argument, nothing expanded) and waits for it, at most `timeout`. stop_fd:
// -1 for none, else an fd that becomes readable when the caller wants the run
// ended (e.g. Worker::wake_fd(); it is polled, never read). Output beyond
// max_out/max_err is read and dropped so the program never blocks on a full
// pipe; max_out = 0 discards stdout. Safe to call from several threads at once.
ProcessOutcome run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           int stop_fd, std::size_t max_out, std::size_t max_err);

// The first non-blank line of a program's output, made safe and short for a
// log line or dead letter (see excerpt() in sensor_parse.h).
std::string first_line(const std::string& text);

}  // namespace tg::drivers
