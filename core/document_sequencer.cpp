#include "core/document_sequencer.hpp"

#include <algorithm>

namespace troupe::core {

document_sequencer::document_sequencer(std::size_t log_capacity, std::string epoch)
    : capacity_(std::max<std::size_t>(log_capacity, 1)), epoch_(std::move(epoch)) {
  keys_.reserve(capacity_);
}

document_sequencer::document_sequencer(std::size_t log_capacity, std::string epoch,
                                       std::uint64_t rev, std::string_view text)
    : capacity_(std::max<std::size_t>(log_capacity, 1)), epoch_(std::move(epoch)), rev_(rev),
      text_(text) {
  keys_.reserve(capacity_);
}

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
    if (!log_.front().key.empty()) keys_.erase(log_.front().key);
    log_.pop_front();
  }
  log_.push_back(std::move(accepted));
  if (!log_.back().key.empty()) keys_.emplace(log_.back().key, log_.back().rev);
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
    if (auto it = keys_.find(key); it != keys_.end())
      return {outcome::duplicate, it->second, nullptr, {}};
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
