// SeqStore: hands out the envelope sequence numbers, consecutive across
// process restarts and never reused after a power cut.
//
// Two files in data_dir:
//  - `seq`: durable (write temp, fsync, rename, fsync dir). Holds the kernel
//    boot id, a reservation R (no seq above R is handed out before a new,
//    larger R is durable), and on a clean shutdown the exact last seq.
//  - `seq.last`: the exact last seq, rewritten in place on every allocation
//    without fsync. It reaches the page cache at once, so it survives a
//    process crash (SIGKILL, OOM) but not a power cut.
// At start: clean shutdown → last + 1; same boot (process crash) → seq.last
// + 1; otherwise (reboot after a crash or power cut) → R + 1, a forward gap
// that guarantees no id is reused.
#pragma once

#include <cstdint>
#include <string>

namespace tg {

class SeqStore {
  public:
    // `boot_id` identifies the running kernel boot (normally the contents of
    // /proc/sys/kernel/random/boot_id; tests pass their own to simulate a reboot).
    SeqStore(std::string dir, std::string boot_id, std::uint64_t reserve_block = 4096);
    ~SeqStore();
    SeqStore(const SeqStore&) = delete;
    SeqStore& operator=(const SeqStore&) = delete;

    // Opens or creates the files; throws std::runtime_error on I/O failure.
    void open();
    // The next sequence number (first ever: 1).
    std::uint64_t next();
    // The last number handed out (0 if none).
    std::uint64_t last() const { return last_; }
    // Records a clean shutdown: the next open continues at last() + 1 even after a reboot.
    void close();

    // How the previous run ended, as found by open(): for logs and tests.
    enum class Resume { Fresh, Clean, Crash, Reboot };
    Resume resumed() const { return resume_; }

    static std::string read_boot_id();

  private:
    void write_state(bool clean);
    void write_last();

    std::string dir_;
    std::string boot_id_;
    std::uint64_t block_;
    std::uint64_t last_ = 0;
    std::uint64_t reserved_ = 0;
    int last_fd_ = -1;
    Resume resume_ = Resume::Fresh;
};

// Creates `dir` and its parents (mode 0750 for new ones); throws on failure.
void make_dirs(const std::string& dir);

// Replaces `path` atomically and durably with `content` (temp, fsync, rename,
// fsync of the folder). Throws std::runtime_error on failure.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace tg
