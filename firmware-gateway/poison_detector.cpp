#include "poison_detector.h"

#include <algorithm>

namespace tg {

void PoisonDetector::on_connected() {
    in_flight_.clear();
    order_ = 0;
    last_other_ = 0;
}

void PoisonDetector::on_record_sent(std::uint64_t seq, const std::string& topic, bool alone,
                                    MonoTime now) {
    // Only an event sent alone can be blamed: only its topic is kept.
    in_flight_[seq] = Sent{now, ++order_, alone, alone ? topic : std::string()};
}

void PoisonDetector::on_other_sent() {
    last_other_ = ++order_;
}

void PoisonDetector::on_record_settled(std::uint64_t seq) {
    in_flight_.erase(seq);
    if (seq == suspect_) {
        suspect_ = 0;
        strikes_ = 0;
    }
}

std::optional<PoisonDetector::Verdict> PoisonDetector::on_connection_lost(MonoTime now) {
    std::optional<Verdict> verdict;
    if (in_flight_.empty()) {
        // No event of ours in flight: this loss says nothing about the
        // suspect, which was not sent again (it may come from before the
        // probe: Paho can still write a publish queued on the previous
        // connection, e.g. the suspect's second destination, first thing
        // on the new one).
    } else {
        probe_until_ = std::max(probe_until_, in_flight_.rbegin()->first);
        const auto& [seq, sent] = *in_flight_.begin();
        // Sent when everything before it had been accepted, and the last
        // thing sent: the broker closed the connection on it, or the
        // network failed right then.
        const bool only_one = in_flight_.size() == 1 && sent.alone;
        const bool last_sent = last_other_ < sent.order;
        const bool quick = now - sent.at <= quick_;
        if (only_one && last_sent && quick) {
            strikes_ = seq == suspect_ ? strikes_ + 1 : 1;
            suspect_ = seq;
            if (strikes_ >= max_strikes_) {
                verdict = Verdict{seq, sent.topic, strikes_};
                suspect_ = 0;
                strikes_ = 0;
            }
        } else {
            suspect_ = 0;
            strikes_ = 0;
        }
    }
    in_flight_.clear();
    order_ = 0;
    last_other_ = 0;
    return verdict;
}

}  // namespace tg
