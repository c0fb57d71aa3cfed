#include "file.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "drivers/option_checks.h"
#include "drivers/sensor_parse.h"
#include "drivers/sysfs_files.h"

namespace tg::drivers {
namespace {

constexpr std::array<OptionSpec, 4> kOptions{{
    {"path", OptType::String, "",
     "file to read, e.g. /sys/class/thermal/thermal_zone0/temp; * and ? may match one file", true},
    {"scale", OptType::Number, "1", "the file's number is multiplied by this"},
    {"offset", OptType::Number, "0", "then this is added"},
    {"root", OptType::String, "/", "folder that stands for / (for tests)"},
}};

constexpr std::array<OptionSpec, 5> kOutputOptions{{
    {"path", OptType::String, "", "file written on each change (exactly, no newline)", true},
    {"on", OptType::String, "1", "text written for on"},
    {"off", OptType::String, "0", "text written for off"},
    {"initial", OptType::String, "", "written at start: on | off (empty: nothing)"},
    {"root", OptType::String, "/", "folder that stands for / (for tests)"},
}};

std::unique_ptr<Driver> create(std::span<const SensorSpec> sensors) {
    if (sensors.size() != 1) throw std::logic_error("file sensors are never shared");
    return std::make_unique<FileDriver>(sensors.front());
}

std::unique_ptr<Output> create_output(const std::string& name, const Options& options,
                                      OutputEnv& env) {
    (void)env;
    return std::make_unique<FileOutput>(name, options);
}

// The root folder with glob's special characters escaped, so only the
// user's path pattern matches.
std::string escape_glob(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

const DriverInfo kFileDriver{
    "file", "a value read from a file (sysfs, hwmon)", kOptions, false, ValueType::Number, &create};
const OutputInfo kFileOutput{"file", "writes a string to a file (sysfs LEDs, relays)",
                             kOutputOptions, &create_output};

FileDriver::FileDriver(const SensorSpec& spec)
    : sensor_(spec.name),
      type_(spec.type),
      glob_(false),
      scale_(spec.options.number("scale")),
      offset_(spec.options.number("offset")) {
    const std::string& path = spec.options.string("path");
    require_absolute("path", path);
    if (path.find('[') != std::string::npos) {
        throw OptionError("path", "only * and ? are supported as wildcards");
    }
    glob_ = path.find_first_of("*?") != std::string::npos;
    const std::string& root = spec.options.string("root");
    const std::string root_dir = (root.empty() || root == "/") ? std::string() : root;
    pattern_ = glob_ ? escape_glob(root_dir) + path : under_root(root, path).string();
    if (type_ != ValueType::Number && (scale_ != 1 || offset_ != 0)) {
        throw OptionError(scale_ != 1 ? "scale" : "offset",
                          "scale and offset apply to number sensors only");
    }
}

void FileDriver::poll(const Clock& clock, Sink& sink) {
    std::string path = pattern_;
    if (glob_) {
        glob_t g{};
        const int rc = ::glob(pattern_.c_str(), 0, nullptr, &g);
        std::vector<std::string> matches;
        if (rc == 0) {
            for (std::size_t i = 0; i < g.gl_pathc; ++i)
                matches.emplace_back(g.gl_pathv[i]);
        }
        ::globfree(&g);
        if (matches.size() != 1) {
            std::string detail = matches.empty()
                                     ? "no file matches " + pattern_
                                     : std::to_string(matches.size()) + " files match " + pattern_ +
                                           " (" + matches[0] + ", " + matches[1] +
                                           (matches.size() > 2 ? ", …" : "") +
                                           "): make the path match one";
            sink.bad_reading(sensor_, matches.empty() ? "no_device" : "ambiguous",
                             std::move(detail));
            return;
        }
        path = matches.front();
    }
    const FileRead r = read_small_file(path);
    if (!r.text) {
        sink.bad_reading(sensor_, failure_reason(r.error), read_failure_detail(path, r.error));
        return;
    }
    Parsed p = parse_plain(*r.text, type_);
    if (!p) {
        sink.bad_reading(sensor_, p.reason, path + ": " + p.detail);
        return;
    }
    if (double* d = std::get_if<double>(&*p.value)) *d = *d * scale_ + offset_;
    const MonoTime mono = clock.monotonic();
    sink.reading(Reading{sensor_, std::move(*p.value), clock.wall(), mono});
}

FileOutput::FileOutput(const std::string& name, const Options& options)
    : name_(name),
      on_(options.string("on")),
      off_(options.string("off")),
      initial_(optional_on_off(options, "initial")) {
    const std::string& path = options.string("path");
    require_absolute("path", path);
    path_ = under_root(options.string("root"), path).string();
    if (on_ == off_) throw OptionError("off", "'on' and 'off' must differ");
}

void FileOutput::start() {
    if (initial_) {
        set(*initial_);
        return;
    }
    // Nothing to write yet: check now that writing will work, so a wrong
    // path is reported at start rather than at the first rule firing.
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("output '" + name_ + "': cannot open " + path_ +
                                 " for writing: " + std::strerror(errno));
    }
    ::close(fd);
}

void FileOutput::set(bool on) {
    const std::string& text = on ? on_ : off_;
    // Opened per write: sysfs attributes take one write() at offset 0. A
    // regular file is overwritten in place, then cut to the new length when it
    // was longer, so it holds exactly the new text. Not O_TRUNC: on ext4,
    // truncating to zero frees the file's block (a synchronous discard on
    // `discard` mounts) and waits for the write-back that the previous close
    // started (auto_da_alloc flushes a file rewritten after truncation), which
    // cost ~100 us per switch on an idle disk and milliseconds on a busy one;
    // an overwrite in place is a page-cache copy (~3 us).
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("output '" + name_ + "': cannot open " + path_ +
                                 " for writing: " + std::strerror(errno));
    }
    ssize_t n;
    do {
        n = ::write(fd, text.data(), text.size());
    } while (n < 0 && errno == EINTR);
    const int write_errno = errno;
    if (n < 0 || static_cast<std::size_t>(n) != text.size()) {
        ::close(fd);
        throw std::runtime_error("output '" + name_ + "': cannot write '" + text + "' to " + path_ +
                                 ": " + (n < 0 ? std::strerror(write_errno) : "short write"));
    }
    struct stat st {};
    const auto size = static_cast<off_t>(text.size());
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > size &&
        ::ftruncate(fd, size) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error("output '" + name_ + "': cannot truncate " + path_ + " after '" +
                                 text + "': " + std::strerror(err));
    }
    ::close(fd);
}

}  // namespace tg::drivers
