#include "core/memory_store.hpp"

namespace troupe::core {

std::optional<history_log> memory_store::take_log(std::string_view room) {
  std::lock_guard lock(mutex_);
  auto it = logs_.find(std::string(room));
  if (it == logs_.end())
    return std::nullopt;
  std::optional<history_log> log(std::move(it->second));
  logs_.erase(it);
  return log;
}

void memory_store::keep_log(std::string_view room, history_log log) {
  std::lock_guard lock(mutex_);
  logs_.insert_or_assign(std::string(room), std::move(log));
}

} // namespace troupe::core
