// BackgroundWriter: keeps one file in data_dir up to date from its own
// thread, so the event loop never waits on the disk for it (rules.state:
// written on every rule transition, and each atomic replace costs two fsyncs
// and a rename -- milliseconds, tens of them on an SD card, during which no
// reading would be processed and no output switched). Only the newest content
// matters: content handed over while a write is in progress replaces whatever
// was still waiting. Each write is write_file_atomic (temp file, fsync,
// rename, folder fsync), so the file always holds one complete version.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace tg {

class BackgroundWriter {
  public:
    // Failures are logged as "<component>: cannot save <what>: <why>".
    BackgroundWriter(std::string path, std::string component, std::string what);
    // Writes what is still waiting, then stops.
    ~BackgroundWriter();
    BackgroundWriter(const BackgroundWriter&) = delete;
    BackgroundWriter& operator=(const BackgroundWriter&) = delete;

    // Never waits on the disk.
    void write(std::string content);
    // Waits until everything handed over so far is written, or its write
    // failed (a failed write is logged and retried after a second, or sooner
    // with newer content). Returns whether the file holds the newest content.
    bool flush();

  private:
    void run();

    const std::string path_;
    const std::string component_;
    const std::string what_;
    std::mutex mutex_;
    std::condition_variable wake_;  // the writer thread: content or stop
    std::condition_variable done_;  // flush(): a write finished
    std::optional<std::string> pending_;
    std::uint64_t handed_ = 0;    // versions handed over
    std::uint64_t written_ = 0;   // the newest version on disk
    std::uint64_t tried_ = 0;     // the version of the last write that ended (well or not)
    std::uint64_t attempts_ = 0;  // writes ended
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace tg
