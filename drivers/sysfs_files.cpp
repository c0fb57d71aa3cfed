#include "sysfs_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tg::drivers {

std::filesystem::path under_root(const std::string& root, const std::string& path) {
    if (root.empty() || root == "/") return std::filesystem::path(path);
    std::filesystem::path out(root);
    out += path.empty() || path.front() == '/' ? path : "/" + path;
    return out;
}

FileRead read_small_file(const std::filesystem::path& path) {
    constexpr std::size_t kMax = 64 * 1024;
    FileRead r;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r.error = errno;
        return r;
    }
    std::string out;
    char buf[4096];
    while (out.size() < kMax) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            r.error = errno;
            ::close(fd);
            return r;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (out.size() > kMax) out.resize(kMax);
    r.text = std::move(out);
    return r;
}

std::string failure_reason(int error) {
    return (error == ENOENT || error == ENODEV || error == ENXIO) ? "no_device" : "read_failed";
}

std::string read_failure_detail(const std::filesystem::path& path, int error) {
    return "cannot read " + path.string() + ": " + std::strerror(error);
}

}  // namespace tg::drivers
