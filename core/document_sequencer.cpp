#include "core/document_sequencer.hpp"

#include <algorithm>
#include <functional>

namespace troupe::core {

document_sequencer::document_sequencer(std::size_t log_capacity, std::string epoch)
    : capacity_(std::max<std::size_t>(log_capacity, 1)), epoch_(std::move(epoch)) {}

document_sequencer::document_sequencer(std::size_t log_capacity, std::string epoch,
                                       std::uint64_t rev, std::string_view text)
    : capacity_(std::max<std::size_t>(log_capacity, 1)), epoch_(std::move(epoch)), rev_(rev),
      text_(text) {}

document_sequencer::document_sequencer(std::size_t log_capacity, std::string epoch,
                                       std::uint64_t rev, std::string_view text,
                                       std::vector<logged_operation> history)
    : document_sequencer(log_capacity, std::move(epoch), rev, text) {
  for (auto& accepted : history)
    log_accepted(std::move(accepted));
}

bool document_sequencer::replay(logged_operation accepted) {
  if (accepted.rev != rev_ + 1 || !ot::fits(accepted.op, text_.size())) return false;
  ot::apply(text_, accepted.op);
  ++rev_;
  log_accepted(std::move(accepted));
  return true;
}

void document_sequencer::log_accepted(logged_operation accepted) {
  if (log_.size() == capacity_) {
    if (!log_.front().key.empty()) unindex_key(log_.front().key);
    log_.pop_front();
  }
  log_.push_back(std::move(accepted));
  if (!log_.back().key.empty()) index_key(log_.back().key, log_.back().rev);
}

std::size_t document_sequencer::find_slot(std::string_view key, std::uint64_t hash) const noexcept {
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const key_slot& slot = keys_[i];
    // A live slot's revision is in the log: its entry holds the key to compare.
    if (slot.rev == 0 || (slot.hash == hash && log_[slot.rev - log_.front().rev].key == key))
      return i;
  }
}

std::uint64_t document_sequencer::find_key(std::string_view key) const noexcept {
  if (keys_.empty()) return 0; // no key yet (or a moved-from sequencer)
  return keys_[find_slot(key, std::hash<std::string_view>{}(key))].rev;
}

void document_sequencer::index_key(std::string_view key, std::uint64_t rev) {
  if (2 * (indexed_ + 1) > keys_.size()) {
    // At most half full, so probes stay short: twice the slots, the log's keys put back in
    // (oldest first, so a key logged twice keeps its first revision, as before).
    keys_.assign(std::max<std::size_t>(16, 2 * keys_.size()), key_slot{});
    indexed_ = 0;
    for (const auto& logged : log_)
      if (!logged.key.empty() && logged.rev != rev) index_key(logged.key, logged.rev);
  }
  const std::uint64_t hash = std::hash<std::string_view>{}(key);
  key_slot& slot = keys_[find_slot(key, hash)];
  if (slot.rev != 0) return; // a key already there keeps its first revision
  slot = {hash, rev};
  ++indexed_;
}

void document_sequencer::unindex_key(std::string_view key) {
  if (keys_.empty()) return;
  const std::size_t mask = keys_.size() - 1;
  std::size_t hole = find_slot(key, std::hash<std::string_view>{}(key));
  if (keys_[hole].rev == 0) return;
  // Backward-shift deletion: later slots of the run that may live in the hole move into it,
  // so every key stays reachable from its home slot without tombstones.
  for (std::size_t next = (hole + 1) & mask; keys_[next].rev != 0; next = (next + 1) & mask) {
    const std::size_t home = keys_[next].hash & mask;
    const bool stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
    if (stays) continue;
    keys_[hole] = keys_[next];
    hole = next;
  }
  keys_[hole] = {};
  --indexed_;
}

bool document_sequencer::covers(std::uint64_t since) const noexcept {
  if (since >= rev_) return true;
  return !log_.empty() && log_.front().rev <= since + 1;
}

std::vector<const logged_operation*> document_sequencer::after(std::uint64_t since) const {
  std::vector<const logged_operation*> ops;
  if (since >= rev_ || log_.empty()) return ops;
  // Revisions in the log are consecutive: index arithmetic finds the first one.
  const std::uint64_t first = log_.front().rev;
  const std::size_t start = since + 1 > first ? static_cast<std::size_t>(since + 1 - first) : 0;
  ops.reserve(log_.size() - start);
  for (std::size_t i = start; i < log_.size(); ++i)
    ops.push_back(&log_[i]);
  return ops;
}

document_sequencer::submit_result document_sequencer::submit(std::uint64_t base_rev,
                                                             ot::operation op, std::string_view key,
                                                             std::string_view user) {
  auto result = prepare(base_rev, op, key);
  if (result.kind != outcome::applied) return result;
  ot::apply(text_, op);
  ++rev_;
  log_accepted({rev_, std::move(op), std::string(user), std::string(key)});
  return {outcome::applied, rev_, &log_.back(), {}};
}

document_sequencer::submit_result
document_sequencer::prepare(std::uint64_t base_rev, ot::operation& op, std::string_view key) const {
  // A resubmission (after a reconnect) is acknowledged with its first revision, whatever
  // revision it names now.
  if (!key.empty()) {
    if (const std::uint64_t first = find_key(key); first != 0)
      return {outcome::duplicate, first, nullptr, {}};
  }
  if (base_rev > rev_)
    return {outcome::invalid, rev_, nullptr,
            "rev " + std::to_string(base_rev) + " is ahead of the document (at " +
                std::to_string(rev_) + ")"};
  if (!covers(base_rev))
    return {outcome::conflict, rev_, nullptr,
            "rev " + std::to_string(base_rev) + " is older than the kept log (from " +
                std::to_string(log_.front().rev - 1) + "): open the document again"};

  // Transform over each operation accepted since base_rev in turn (never over their
  // composition): the later-accepted insert goes first at a tie.
  const std::size_t spans = op.base_length();
  if (base_rev < rev_) {
    const std::size_t start = static_cast<std::size_t>(base_rev + 1 - log_.front().rev);
    for (std::size_t i = start; i < log_.size(); ++i)
      op = ot::transform(op, log_[i].op, ot::side::left);
  }
  if (!ot::fits(op, text_.size()))
    return {outcome::invalid, rev_, nullptr,
            "the operation spans " + std::to_string(spans) +
                " code points, more than the document at rev " + std::to_string(base_rev)};
  return {outcome::applied, rev_ + 1, nullptr, {}};
}

} // namespace troupe::core
