// Pieces shared by the document integration tests (one engine and a cluster of them):
// editors with the C++ client, random edits, raw `open`/`op` maps and their replies.
#pragma once

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "clients/cpp/blocking_document.hpp"
#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {

using client::blocking_document;
using client::map_writer;
using client::reply;

// A client with a document open.
struct Editor {
  std::unique_ptr<blocking_connection> c;
  std::unique_ptr<client::documents> docs;
  std::unique_ptr<blocking_document> doc;
  std::string id; // the connection's client id
  blocking_document* operator->() const { return doc.get(); }
};

inline Editor editor(const EngineProcess& engine, const std::string& user,
                     const std::string& room) {
  Editor e;
  e.c = std::make_unique<blocking_connection>(options_for(engine, user));
  e.docs =
      std::make_unique<client::documents>(e.c->async()); // before connect: it hears `connected`
  e.id = e.c->connect().client;
  e.doc = std::make_unique<blocking_document>(*e.docs, room);
  e.doc->open();
  return e;
}

inline troupe::ot::operation make_op(std::size_t pos, std::size_t removed,
                                     std::string_view inserted) {
  troupe::ot::operation op;
  op.retain(pos).remove(removed).insert(inserted);
  return op;
}

inline troupe::ot::operation random_edit(std::mt19937& rng, std::size_t len) {
  static const char* pieces[] = {"a", "b", "c", " ", "é", "€", "😀", "𝄞"};
  const auto pos = std::uniform_int_distribution<std::size_t>(0, len)(rng);
  std::size_t removed = 0;
  if (pos < len && rng() % 3 == 0) removed = 1 + rng() % std::min<std::size_t>(len - pos, 4);
  std::string ins;
  if (removed == 0 || rng() % 2 == 0)
    for (std::size_t i = 0, n = 1 + rng() % 3; i < n; ++i)
      ins += pieces[rng() % std::size(pieces)];
  return make_op(pos, removed, ins);
}

// --- raw maps ---------------------------------------------------------------------------------

inline std::string op_map(std::uint64_t id, const std::string& room, std::uint64_t rev,
                          const troupe::ot::operation& op, const std::string& key) {
  map_writer w("op");
  w.u64("id", id).str("room", room).u64("rev", rev);
  w.operation("op", op);
  w.str("key", key);
  return w.finish();
}

inline std::string open_map(std::uint64_t id, const std::string& room,
                            std::optional<std::pair<std::uint64_t, std::string>> since = {}) {
  map_writer w("open");
  w.u64("id", id).str("room", room);
  if (since) {
    auto& pk = w.begin("since");
    pk.pack_map(2);
    pk.pack(std::string_view("rev"));
    pk.pack_uint64(since->first);
    pk.pack(std::string_view("epoch"));
    pk.pack(since->second);
  }
  return w.finish();
}

inline reply raw_open(RawWs& ws, const std::string& room,
                      std::optional<std::pair<std::uint64_t, std::string>> since = {}) {
  const auto id = ws.next_id();
  ws.send_binary(open_map(id, room, since));
  reply r = ws.read_reply(id);
  EXPECT_EQ(r.type(), "opened") << r.map().str("code").value_or("") << " "
                                << r.map().str("reason").value_or("");
  return r;
}

inline reply raw_op(RawWs& ws, const std::string& room, std::uint64_t rev,
                    const troupe::ot::operation& op, const std::string& key) {
  const auto id = ws.next_id();
  ws.send_binary(op_map(id, room, rev, op, key));
  return ws.read_reply(id);
}

inline std::uint64_t acked_rev(const reply& r) {
  EXPECT_EQ(r.type(), "ack") << r.map().str("code").value_or("") << " "
                             << r.map().str("reason").value_or("");
  return r.map().u64("rev").value_or(0);
}

inline std::string code_of(const reply& r) {
  EXPECT_EQ(r.type(), "error");
  return std::string(r.map().str("code").value_or(""));
}

// Every map the connection receives until the reply to a ping (so everything sent before it).
inline std::vector<reply> maps_until_pong(RawWs& ws) {
  const auto id = ws.next_id();
  map_writer w("ping");
  w.u64("id", id);
  ws.send_binary(w.finish());
  std::vector<reply> out;
  for (;;) {
    auto f = ws.read();
    if (f.closed || !f.error.empty())
      throw std::runtime_error("connection ended: " + f.close_reason + f.error);
    for (auto& m : f.maps) {
      if (m.map().u64("id") == id) return out;
      out.push_back(m);
    }
  }
}

// The document as a fresh connection opens it: (rev, text).
inline std::pair<std::uint64_t, std::string> fresh_view(const EngineProcess& engine,
                                                        const std::string& room) {
  RawWs ws(engine.port());
  ws.hello("reader");
  reply r = raw_open(ws, room);
  return {r.map().u64("rev").value_or(0), std::string(r.map().str("text").value_or("<no text>"))};
}

} // namespace troupe::test
