// Reading sysfs-style files for the drivers that read them (file, w1,
// iio) and the file output: every path goes through under_root(), so tests
// point a driver at a fake tree with the `root` option.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace tg::drivers {

// `path` (absolute) inside `root`: "/" leaves it as it is, "/tmp/case" turns
// /sys/x into /tmp/case/sys/x.
std::filesystem::path under_root(const std::string& root, const std::string& path);

// The content of a small file (sysfs attributes; at most 64 KiB is read), or
// the errno of the failure.
struct FileRead {
    std::optional<std::string> text;
    int error = 0;
};
FileRead read_small_file(const std::filesystem::path& path);

// The bad-reading reason for a failed read: "no_device" when the file or the
// device behind it is not there (ENOENT, ENODEV, ENXIO), else "read_failed".
std::string failure_reason(int error);

// "cannot read PATH: MESSAGE" for dead letters and logs.
std::string read_failure_detail(const std::filesystem::path& path, int error);

}  // namespace tg::drivers
