#pragma once
// The store that keeps everything in memory: state survives a room's eviction, not a
// restart (a restarted engine hands out new epochs). Nothing waits for a commit.

#include <mutex>
#include <unordered_map>

#include "store/store.hpp"

namespace troupe::store {

class memory_store final : public room_store {
public:
  loaded<core::history_log> load_log(std::string_view room, std::size_t capacity) override;
  loaded<core::document_sequencer> load_document(std::string_view room,
                                                 std::size_t log_capacity) override;
  void keep_log(std::string_view room, core::history_log log) override;
  void keep_document(std::string_view room, core::document_sequencer document) override;
  bool durable() const noexcept override { return false; }
  std::string commit(const std::vector<room_writes>&) override { return {}; }
  void expire_messages(std::uint64_t) override {}

private:
  std::mutex mutex_;
  std::unordered_map<std::string, core::history_log> logs_;
  std::unordered_map<std::string, core::document_sequencer> documents_;
};

} // namespace troupe::store
