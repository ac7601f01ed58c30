#include "store/memory_store.hpp"

namespace troupe::store {

namespace {

template <class State>
std::optional<State> take(std::unordered_map<std::string, State>& kept, std::string_view room) {
  auto it = kept.find(std::string(room));
  if (it == kept.end()) return std::nullopt;
  std::optional<State> state(std::move(it->second));
  kept.erase(it);
  return state;
}

} // namespace

loaded<core::history_log> memory_store::load_log(std::string_view room, std::size_t capacity) {
  std::unique_lock lock(mutex_);
  auto log = take(logs_, room);
  lock.unlock();
  if (!log)
    log.emplace(capacity, core::new_epoch());
  else if (log->capacity() != capacity)
    log.emplace(capacity, log->epoch(), log->seq()); // retention changed: keep the position
  return {std::move(log), {}};
}

void memory_store::keep_log(std::string_view room, core::history_log log) {
  std::lock_guard lock(mutex_);
  logs_.insert_or_assign(std::string(room), std::move(log));
}

loaded<core::document_sequencer> memory_store::load_document(std::string_view room,
                                                             std::size_t log_capacity) {
  std::unique_lock lock(mutex_);
  auto document = take(documents_, room);
  lock.unlock();
  if (!document) document.emplace(log_capacity, core::new_epoch());
  return {std::move(document), {}};
}

void memory_store::keep_document(std::string_view room, core::document_sequencer document) {
  std::lock_guard lock(mutex_);
  documents_.insert_or_assign(std::string(room), std::move(document));
}

} // namespace troupe::store
