// Sensor name -> slot, looked up once per reading: open addressing over a
// power-of-two table with FNV-1a hashes, which costs a fraction of a
// std::unordered_map<std::string> lookup (no modulo by a prime, one probe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tg::rules {

class NameIndex {
  public:
    static constexpr std::uint32_t npos = 0xFFFFFFFFu;

    std::uint32_t find(std::string_view name) const {
        if (cells_.empty()) return npos;
        const std::uint64_t h = hash(name);
        const std::size_t mask = cells_.size() - 1;
        for (std::size_t i = static_cast<std::size_t>(h) & mask;; i = (i + 1) & mask) {
            const Cell& c = cells_[i];
            if (c.slot == npos) return npos;
            if (c.hash == h && c.name == name) return c.slot;
        }
    }

    // `name` must not be present yet.
    void insert(std::string_view name, std::uint32_t slot) {
        if ((size_ + 1) * 2 > cells_.size()) grow();
        place(Cell{hash(name), slot, std::string(name)});
        ++size_;
    }

    std::size_t size() const { return size_; }

  private:
    struct Cell {
        std::uint64_t hash = 0;
        std::uint32_t slot = npos;
        std::string name;
    };

    static std::uint64_t hash(std::string_view s) {
        std::uint64_t h = 14695981039346656037ull;
        for (char c : s) {
            h ^= static_cast<unsigned char>(c);
            h *= 1099511628211ull;
        }
        return h ^ (h >> 29);  // fold the high bits into the index bits
    }

    void place(Cell c) {
        const std::size_t mask = cells_.size() - 1;
        std::size_t i = static_cast<std::size_t>(c.hash) & mask;
        while (cells_[i].slot != npos)
            i = (i + 1) & mask;
        cells_[i] = std::move(c);
    }

    void grow() {
        std::vector<Cell> old = std::move(cells_);
        cells_.assign(old.empty() ? 16 : old.size() * 2, Cell{});
        for (Cell& c : old) {
            if (c.slot != npos) place(std::move(c));
        }
    }

    std::vector<Cell> cells_;
    std::size_t size_ = 0;
};

}  // namespace tg::rules
