// Durable files in data_dir: folders created with their parents, and files
// replaced atomically and durably (rule state, the outbox state).
#pragma once

#include <string>

namespace tg {

// Creates `dir` and its parents (mode 0750 for new ones); throws on failure.
void make_dirs(const std::string& dir);

// Replaces `path` atomically and durably with `content` (temp, fsync, rename,
// fsync of the folder). Throws std::runtime_error on failure.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace tg
