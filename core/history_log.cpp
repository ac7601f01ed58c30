#include "core/history_log.hpp"

#include <cassert>
#include <chrono>
#include <random>

namespace troupe::core {

history_log::history_log(std::size_t capacity, std::string epoch, std::uint64_t top_seq)
    : capacity_(capacity), epoch_(std::move(epoch)), top_seq_(top_seq) {}

std::optional<std::uint64_t> history_log::find_key(std::string_view key) const {
  if (auto it = keys_.find(std::string(key)); it != keys_.end()) return it->second;
  return std::nullopt;
}

void history_log::append(stored_message message) {
  assert(message.seq == top_seq_ + 1);
  top_seq_ = message.seq;
  if (capacity_ == 0) return;
  if (!message.key.empty()) keys_[message.key] = message.seq;
  messages_.push_back(std::move(message));
  if (messages_.size() > capacity_) pop_oldest();
}

void history_log::expire(std::uint64_t cutoff_ms) {
  while (!messages_.empty() && messages_.front().ts < cutoff_ms)
    pop_oldest();
}

void history_log::pop_oldest() {
  auto& oldest = messages_.front();
  if (!oldest.key.empty()) {
    // A key reused later points at the newer message; only forget our own entry.
    if (auto it = keys_.find(oldest.key); it != keys_.end() && it->second == oldest.seq)
      keys_.erase(it);
  }
  messages_.pop_front();
}

bool history_log::covers(std::uint64_t since) const noexcept {
  if (since > top_seq_) return false; // a position this log never handed out
  if (since == top_seq_) return true;
  return !messages_.empty() && messages_.front().seq <= since + 1;
}

std::vector<std::string_view> history_log::after(std::uint64_t since, std::size_t limit) const {
  std::vector<std::string_view> out;
  if (messages_.empty() || since >= top_seq_) return out;
  const std::uint64_t first = messages_.front().seq;
  std::size_t index = since + 1 > first ? static_cast<std::size_t>(since + 1 - first) : 0;
  for (; index < messages_.size() && out.size() < limit; ++index)
    out.push_back(messages_[index].frame->payload());
  return out;
}

std::vector<std::string_view> history_log::newest(std::size_t count) const {
  const std::size_t n = std::min(count, messages_.size());
  std::vector<std::string_view> out;
  out.reserve(n);
  for (std::size_t index = messages_.size() - n; index < messages_.size(); ++index)
    out.push_back(messages_[index].frame->payload());
  return out;
}

std::uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::string new_epoch() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char digits[] = "0123456789abcdef";
  std::uint64_t bits = random();
  std::string epoch(16, '0');
  for (auto& c : epoch) {
    c = digits[bits & 0xf];
    bits >>= 4;
  }
  return epoch;
}

} // namespace troupe::core
