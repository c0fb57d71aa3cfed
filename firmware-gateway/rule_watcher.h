// RuleWatcher: notices changes to the rule files (inotify on the rule paths'
// folders) and asks for a reload, once per burst of changes (an editor's
// save is often several events). Runs its own thread; the reload itself
// happens on the event loop.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace tg {

class RuleWatcher {
  public:
    // `paths`: rule files or folders (SPEC §2 rules.paths). `changed` runs on
    // the watcher's thread.
    RuleWatcher(std::vector<std::string> paths, std::function<void()> changed,
                std::chrono::milliseconds quiet = std::chrono::milliseconds(300));
    ~RuleWatcher();
    RuleWatcher(const RuleWatcher&) = delete;
    RuleWatcher& operator=(const RuleWatcher&) = delete;

    // False when inotify is not available (then only SIGHUP reloads).
    bool start();
    void stop();

  private:
    void run();
    bool relevant(int wd, const std::string& name) const;

    std::vector<std::string> paths_;
    std::function<void()> changed_;
    std::chrono::milliseconds quiet_;
    int inotify_fd_ = -1;
    int stop_fd_ = -1;
    // Per watch descriptor: the folder, and the one file name that matters
    // in it (empty: any *.yaml / *.yml).
    struct Watch {
        int wd;
        std::string file;
    };
    std::vector<Watch> watches_;
    std::thread thread_;
};

}  // namespace tg
