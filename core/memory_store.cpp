#include "core/memory_store.hpp"

namespace troupe::core {

namespace {

template <class State>
std::optional<State> take(std::unordered_map<std::string, State>& kept, std::string_view room) {
  auto it = kept.find(std::string(room));
  if (it == kept.end())
    return std::nullopt;
  std::optional<State> state(std::move(it->second));
  kept.erase(it);
  return state;
}

} // namespace

std::optional<history_log> memory_store::take_log(std::string_view room) {
  std::lock_guard lock(mutex_);
  return take(logs_, room);
}

void memory_store::keep_log(std::string_view room, history_log log) {
  std::lock_guard lock(mutex_);
  logs_.insert_or_assign(std::string(room), std::move(log));
}

std::optional<document_state> memory_store::take_document(std::string_view room) {
  std::lock_guard lock(mutex_);
  return take(documents_, room);
}

void memory_store::keep_document(std::string_view room, document_state document) {
  std::lock_guard lock(mutex_);
  documents_.insert_or_assign(std::string(room), std::move(document));
}

} // namespace troupe::core
