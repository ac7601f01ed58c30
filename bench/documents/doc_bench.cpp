// troupe_doc_bench: an editing trace applied to a document three ways, printed as JSON lines.
//
//   troupe_doc_bench inproc [--trace NAME] [--runs N]   the document's state (the sequencer's
//                                                         logic: dedup keys, log, OT, rope)
//   troupe_doc_bench actor  [--trace NAME] [--runs N] [--batch 1 | --per-read BYTES]
//                           [--store memory|sqlite] [--sync full|normal] [--data-parent DIR]
//                           [--doc-log 1000] [--doc-snapshot 1000]
//                                                       the document actor, through its
//                                                       mailbox, `batch` edits per message (1:
//                                                       one operation per message); with
//                                                       sqlite, durable: a store in a fresh
//                                                       directory and the storage actor on a
//                                                       thread of its own, every ack after its
//                                                       commit; --per-read: one operation
//                                                       per WebSocket message, and the
//                                                       messages of one socket read of BYTES
//                                                       handed over together, as the engine's
//                                                       connection does (a separate line,
//                                                       "document_actor_per_read")
//   troupe_doc_bench ws --port P [--trace NAME] [--batch 1] [--window N] [--write-bytes N]
//                       [--label STORE]
//                                                       one client over a WebSocket to a running
//                                                       engine, pipelined: edit i made against
//                                                       rev i, `batch` maps per WebSocket frame
//                                                       (1: one operation per message), frames
//                                                       gathered into writes of up to
//                                                       `write-bytes`, at most `window` edits
//                                                       unacknowledged; `label` names the
//                                                       engine's store in the output
//
// Each run is printed on stderr, and the JSON line lists them all ("runs_ms").
// Every mode checks that the final text equals the trace's endContent and says so ("ok"); the
// durable actor also reopens its directory with a fresh store afterwards and checks that the
// text and the rev are there. bench/documents/run.sh builds, starts the engines and runs them
// all.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "actors/document.hpp"
#include "actors/messages.hpp"
#include "actors/presence.hpp"
#include "actors/storage.hpp"
#include "core/document_sequencer.hpp"
#include "store/memory_store.hpp"
#include "protocol/operation_codec.hpp"
#include "protocol/string_sink.hpp"
#include "store/sqlite_store.hpp"
#include "core/metrics.hpp"
#include "tests/support/editing_trace.hpp"

using namespace troupe;
using clock_type = std::chrono::steady_clock;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;

namespace {

struct arguments {
  std::string mode;
  std::string trace = "automerge-paper";
  int runs = 5;
  std::uint16_t port = 0;
  std::size_t batch = 1;    ///< edits per message (actor) or per WebSocket frame (ws)
  std::size_t per_read = 0; ///< actor: one edit per WebSocket message, a read's worth per message
  std::size_t write_bytes = 64 * 1024; ///< ws: frames gathered into one write, up to this
  std::size_t window = 8192;
  std::string store = "memory";    ///< actor: memory, or sqlite (durable)
  std::string sync = "full";       ///< actor with sqlite: synchronous=FULL or NORMAL
  std::string data_parent;         ///< actor with sqlite: where its fresh directories go
  std::string label;               ///< ws: the engine's store, for the output
  std::size_t doc_log = 1000;      ///< actor: operations kept (the engine's --doc-log)
  std::size_t doc_snapshot = 1000; ///< actor: revisions between snapshots (--doc-snapshot)
};

arguments parse_arguments(int argc, char** argv) {
  if (argc < 2)
    throw std::runtime_error("usage: troupe_doc_bench inproc|actor|ws [--trace NAME] [--runs N] "
                             "[--port P] [--batch N] [--per-read BYTES] [--window N] "
                             "[--store memory|sqlite] "
                             "[--sync full|normal] [--data-parent DIR] [--label STORE] "
                             "[--doc-log N] [--doc-snapshot N]");
  arguments args;
  args.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--trace")
      args.trace = value;
    else if (flag == "--runs")
      args.runs = std::max(1, std::stoi(value));
    else if (flag == "--port")
      args.port = static_cast<std::uint16_t>(std::stoi(value));
    else if (flag == "--batch")
      args.batch = std::max<std::size_t>(1, std::stoul(value));
    else if (flag == "--per-read")
      args.per_read = std::stoul(value);
    else if (flag == "--write-bytes")
      args.write_bytes = std::max<std::size_t>(1, std::stoul(value));
    else if (flag == "--window")
      args.window = std::max<std::size_t>(1, std::stoul(value));
    else if (flag == "--store")
      args.store = value;
    else if (flag == "--sync")
      args.sync = value;
    else if (flag == "--data-parent")
      args.data_parent = value;
    else if (flag == "--label")
      args.label = value;
    else if (flag == "--doc-log")
      args.doc_log = std::stoul(value);
    else if (flag == "--doc-snapshot")
      args.doc_snapshot = std::max<std::size_t>(1, std::stoul(value));
    else
      throw std::runtime_error("unknown option " + flag);
  }
  if (args.store != "memory" && args.store != "sqlite")
    throw std::runtime_error("--store must be memory or sqlite");
  if (args.sync != "full" && args.sync != "normal")
    throw std::runtime_error("--sync must be full or normal");
  return args;
}

/// The trace's patches as operations: retain to the patch, remove, insert.
std::vector<ot::operation> operations(const traces::editing_trace& trace) {
  std::vector<ot::operation> ops(trace.patches.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto& patch = trace.patches[i];
    ops[i].retain(patch.position).remove(patch.removed).insert(patch.inserted);
  }
  return ops;
}

/// The same in their wire form (what a client sends and an `op` request carries).
std::vector<std::vector<protocol::op_component>>
wire_operations(const traces::editing_trace& trace) {
  std::vector<std::vector<protocol::op_component>> wire;
  wire.reserve(trace.patches.size());
  for (const auto& op : operations(trace))
    wire.push_back(op.to_wire());
  return wire;
}

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

/// One JSON line with every run in the order they ran, and its best and median; a line per
/// run on stderr as it is printed. `extra` adds fields (",\"k\":v").
void print_result(const char* bench, const arguments& args, std::size_t patches,
                  const std::vector<double>& runs_ms, bool ok, const std::string& extra = {}) {
  const std::string label =
      (args.mode == "inproc" ? std::string()
                             : (args.mode == "ws"        ? args.label
                                : args.store == "sqlite" ? "sqlite-" + args.sync
                                                         : args.store)) +
      (args.per_read ? " per-read " + std::to_string(args.per_read)
                     : " batch " + std::to_string(args.batch));
  std::string each;
  for (std::size_t i = 0; i < runs_ms.size(); ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "%s%.1f", i ? "," : "", runs_ms[i]);
    each += number;
    std::fprintf(stderr, "[%s %s] run %zu: %.1f ms, %.0f ops/s\n", bench, label.c_str(), i + 1,
                 runs_ms[i], patches / (runs_ms[i] / 1000.0));
  }
  auto sorted = runs_ms;
  std::sort(sorted.begin(), sorted.end());
  const double best = sorted.front();
  const double median = sorted[sorted.size() / 2];
  std::printf("{\"bench\":\"%s\",\"trace\":\"%s\",\"patches\":%zu,\"runs\":%zu,\"runs_ms\":[%s],"
              "\"best_ms\":%.1f,\"median_ms\":%.1f,\"ops_per_s\":%.0f%s,\"ok\":%s}\n",
              bench, args.trace.c_str(), patches, runs_ms.size(), each.c_str(), best, median,
              patches / (median / 1000.0), extra.c_str(), ok ? "true" : "false");
  std::fflush(stdout);
}

// ---- in process: the document's state ----------------------------------------------------

int run_inproc(const arguments& args, const traces::editing_trace& trace) {
  const auto wire = wire_operations(trace);
  std::vector<std::string> keys;
  keys.reserve(wire.size());
  for (std::size_t i = 0; i < wire.size(); ++i)
    keys.push_back("k" + std::to_string(i));
  std::vector<double> runs;
  bool ok = true;
  for (int run = 0; run < args.runs; ++run) {
    const auto start = clock_type::now();
    core::document_sequencer doc(1000, "bench", 0, trace.start_content);
    for (std::size_t i = 0; i < wire.size(); ++i) {
      // What the actor does per `op`: parse the wire form, then sequence it.
      auto parsed = ot::parse(wire[i]);
      auto result = doc.submit(i, std::move(*parsed.op), keys[i], "bench");
      if (result.kind != core::document_sequencer::outcome::applied) {
        std::cerr << "edit " << i << " refused: " << result.reason << '\n';
        return 1;
      }
    }
    runs.push_back(ms_since(start));
    ok = ok && doc.text().to_string() == trace.end_content;
  }
  print_result("document_sequencer", args, wire.size(), runs, ok);
  return ok ? 0 : 1;
}

// ---- in process: the document actor --------------------------------------------------------

void encode_ops(const std::vector<ot::operation>& ops, std::size_t first, std::size_t last,
                const std::string& room, protocol::string_sink& buffer);

/// How many of `ops` (from `first`) a connection hands to the document in one message when
/// each is its own WebSocket message and one read from the socket takes `read_bytes`: the
/// masked client frames of a pipelining client, back to back (at least one).
std::size_t ops_per_read(const std::vector<ot::operation>& ops, std::size_t first,
                         const std::string& room, std::size_t read_bytes) {
  std::size_t bytes = 0, n = 0;
  protocol::string_sink map;
  for (std::size_t i = first; i < ops.size(); ++i) {
    map.bytes.clear();
    encode_ops(ops, i, i + 1, room, map);
    const std::size_t size = map.bytes.size();
    const std::size_t frame = size + 4 + (size < 126 ? 2 : size <= 0xffff ? 4 : 10);
    if (n > 0 && bytes + frame > read_bytes) break;
    bytes += frame;
    ++n;
  }
  return n;
}

/// Keeps the frames the actor sends to the author. The actor answers a run of messages with
/// one frame of acks, so the number of frames is not known: the last one ends with the ack
/// of the last edit (an ack's last field is its rev), which is all the hot path checks; the
/// acks are counted and checked (in order, no error) after the clock has stopped.
class ack_sink final : public actors::frame_sink {
public:
  explicit ack_sink(std::uint64_t last_rev) {
    protocol::string_sink tail;
    protocol::string_packer pk(tail);
    pk.pack(std::string_view("rev"));
    pk.pack(last_rev);
    tail_ = std::move(tail.bytes);
  }
  void send(protocol::frame_ptr frame) override {
    const auto payload = frame->payload();
    const bool last =
        payload.size() >= tail_.size() && payload.substr(payload.size() - tail_.size()) == tail_;
    std::lock_guard lock(mutex_);
    frames_.push_back(std::move(frame));
    if (last) {
      done_ = true;
      changed_.notify_all();
    }
  }
  bool wait(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return done_; });
  }
  /// Every map received: acks for revisions 1..`expected` in order and nothing else.
  bool check(std::uint64_t expected, std::size_t& frames) {
    std::lock_guard lock(mutex_);
    frames = frames_.size();
    std::uint64_t rev = 0;
    for (const auto& frame : frames_) {
      const auto payload = frame->payload();
      std::size_t offset = 0;
      while (offset < payload.size()) {
        auto handle = msgpack::unpack(payload.data(), payload.size(), offset);
        const auto& map = handle.get();
        std::string_view type;
        std::uint64_t got = 0;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
          const auto key = map.via.map.ptr[i].key.as<std::string_view>();
          if (key == "t") type = map.via.map.ptr[i].val.as<std::string_view>();
          if (key == "rev") got = map.via.map.ptr[i].val.as<std::uint64_t>();
        }
        if (type != "ack" || got != rev + 1) {
          std::cerr << "expected the ack of rev " << rev + 1 << ", got '" << type << "' (rev "
                    << got << ")\n";
          return false;
        }
        rev = got;
      }
    }
    return rev == expected;
  }

private:
  std::string tail_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<protocol::frame_ptr> frames_;
  bool done_ = false;
};

/// A fresh directory for a durable run, under `parent` (the system's temporary directory if
/// empty); removed when this goes.
class temp_directory {
public:
  explicit temp_directory(const std::string& parent) {
    const auto base =
        parent.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(parent);
    std::filesystem::create_directories(base);
    std::string pattern = (base / "troupe-doc-bench.XXXXXX").string();
    if (!mkdtemp(pattern.data()))
      throw std::runtime_error("cannot create a directory in " + base.string());
    path_ = pattern;
  }
  ~temp_directory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_directory(const temp_directory&) = delete;
  temp_directory& operator=(const temp_directory&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// The storage actor of a durable run on an io_context thread of its own, as the engine runs
/// it (a commit blocks that thread while it waits for the disk).
class storage_thread {
public:
  storage_thread(caf::actor_system& system, store::room_store& store, core::metrics& metrics)
      : work_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {
    actor_ = actors::spawn_storage(system, net::make_strand(io_), store, {}, metrics);
  }
  /// Ends the actor (after everything sent to it) and joins the thread: the store may go.
  bool stop(caf::actor_system& system) {
    bool ok = true;
    {
      caf::scoped_actor self(system);
      self->monitor(actor_);
      self->send(actor_, actors::stop_atom::value);
      self->receive([](const caf::down_msg&) {},
                    caf::after(std::chrono::seconds(30)) >> [&] { ok = false; });
    }
    actor_ = caf::actor{};
    work_.reset();
    thread_.join(); // run() returns once the actor's last handlers have run
    return ok;
  }
  const caf::actor& actor() const { return actor_; }
  ~storage_thread() {
    if (thread_.joinable()) { // not stopped: an error on the way
      work_.reset();
      io_.stop();
      thread_.join();
    }
  }

private:
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
  caf::actor actor_;
};

int run_actor(const arguments& args, const traces::editing_trace& trace) {
  const auto wire = wire_operations(trace);
  const auto ops = operations(trace);
  std::size_t per_read_messages = 0;
  const bool durable = args.store == "sqlite";
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("scheduler.max-threads", 1);
  // The system outlives the io_context, and the Asio thread is joined before either goes:
  // an actor finishes its cleanup on that thread after it has answered.
  caf::actor_system system(cfg);
  net::io_context io;
  auto work = net::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  bool ok = true;
  bool reloaded = true; // durable: every run's document read back from a fresh store
  std::vector<double> runs;
  std::uint64_t commits = 0, writes = 0, ack_frames = 0;
  std::vector<double> sends; // ms until the last message was handed to the actor
  std::uintmax_t database_bytes = 0;
  for (int run = 0; run < args.runs; ++run) {
    core::metrics metrics;
    const std::string room = "bench-" + std::to_string(run);
    // Memory: the document handed to the store as a room that ends would be. Durable: a
    // fresh database, the trace's start as a snapshot at rev 0, and the storage actor.
    std::optional<temp_directory> directory;
    std::unique_ptr<store::room_store> store;
    std::optional<storage_thread> storage;
    if (durable) {
      directory.emplace(args.data_parent);
      auto sqlite = std::make_unique<store::sqlite_store>(
          store::sqlite_settings{directory->path(), args.sync == "full"});
      if (!trace.start_content.empty()) {
        store::room_writes start;
        start.room = room;
        start.epoch = sqlite->epoch();
        start.snapshot = store::document_snapshot{0, trace.start_content, 0};
        if (auto error = sqlite->commit({std::move(start)}); !error.empty())
          throw std::runtime_error(error);
      }
      store = std::move(sqlite);
      storage.emplace(system, *store, metrics);
    } else {
      store = std::make_unique<store::memory_store>();
      store->keep_document(room,
                           core::document_sequencer(args.doc_log, "bench", 0, trace.start_content));
    }
    auto presence = actors::spawn_presence(system, net::make_strand(io), room, {});
    auto document = actors::spawn_document(
        system, net::make_strand(io), room, {args.doc_log, args.doc_snapshot}, presence,
        storage ? storage->actor() : caf::actor{}, *store, metrics);
    auto sink = std::make_shared<ack_sink>(wire.size());
    const actors::peer_ref author{"c1", "bench", "", sink, ""};
    // Built beforehand, so the clock measures the actor, not the sender; batched as a
    // connection forwards them (the consecutive operations of one frame together).
    std::vector<actors::doc_op> messages;
    for (std::size_t i = 0, left = 0; i < wire.size(); ++i) {
      if (left == 0) {
        messages.push_back({author, {}});
        left = args.per_read ? ops_per_read(ops, i, room, args.per_read) : args.batch;
      }
      --left;
      messages.back().requests.push_back({i + 1, room, i, wire[i], "k" + std::to_string(i)});
    }
    per_read_messages = messages.size();
    const auto start = clock_type::now();
    for (auto& message : messages)
      caf::anon_send(document, std::move(message));
    sends.push_back(ms_since(start)); // the sender's share (on the same core when pinned)
    if (!sink->wait(std::chrono::seconds(300))) {
      std::cerr << "the actor did not acknowledge every edit\n";
      ok = false;
    }
    runs.push_back(ms_since(start));
    std::size_t frames = 0;
    ok = sink->check(wire.size(), frames) && ok;
    ack_frames += frames;
    // Both actors end before the next run (and before the system goes away); the document
    // waits for its last commit before it answers.
    {
      caf::scoped_actor self(system);
      self->monitor(presence);
      self->send(document, actors::stop_atom::value);
      self->receive([](actors::stopped_atom, const std::string&) {},
                    caf::after(std::chrono::seconds(30)) >> [&] { ok = false; });
      self->send(presence, actors::stop_atom::value);
      self->receive([](const caf::down_msg&) {},
                    caf::after(std::chrono::seconds(30)) >> [&] { ok = false; });
    }
    if (durable) {
      ok = storage->stop(system) && ok;
      storage.reset();
      commits += metrics.store_commits.load();
      writes += metrics.store_writes.load();
      store.reset(); // closes the database
      std::error_code ec;
      for (const auto& file : std::filesystem::directory_iterator(directory->path()))
        database_bytes = std::max<std::uintmax_t>(database_bytes, file.file_size(ec));
      // What survives: a fresh store on the same directory, as after a restart.
      store::sqlite_store reopened(store::sqlite_settings{directory->path(), args.sync == "full"});
      auto kept = reopened.load_document(room, args.doc_log);
      if (!kept.ok()) std::cerr << "the document did not reload: " << kept.error << '\n';
      reloaded = reloaded && kept.ok() && kept.state->text().to_string() == trace.end_content &&
                 kept.state->rev() == wire.size();
      ok = ok && reloaded;
    } else {
      auto kept = store->load_document(room, args.doc_log).state;
      ok = ok && kept && kept->text().to_string() == trace.end_content;
    }
  }
  work.reset();
  io.stop();
  io_thread.join();
  std::string extra = (args.per_read ? ",\"per_read_bytes\":" + std::to_string(args.per_read) +
                                           ",\"messages\":" + std::to_string(per_read_messages)
                                     : ",\"batch\":" + std::to_string(args.batch)) +
                      ",\"store\":\"" + (durable ? "sqlite-" + args.sync : std::string("memory")) +
                      "\"" + ",\"ack_frames_per_run\":" + std::to_string(ack_frames / args.runs);
  std::sort(sends.begin(), sends.end());
  extra += ",\"sent_ms\":" + std::to_string(static_cast<int>(sends[sends.size() / 2]));
  if (durable) {
    char figures[160];
    std::snprintf(figures, sizeof figures,
                  ",\"commits_per_run\":%.0f,\"ops_per_commit\":%.1f,\"largest_file_bytes\":%ju,"
                  "\"reloaded\":%s",
                  static_cast<double>(commits) / args.runs,
                  commits ? static_cast<double>(writes) / commits : 0.0, database_bytes,
                  reloaded ? "true" : "false");
    extra += figures;
  }
  print_result(args.per_read ? "document_actor_per_read" : "document_actor", args, wire.size(),
               runs, ok, extra);
  return ok ? 0 : 1;
}

// ---- over a WebSocket -----------------------------------------------------------------------

using tcp = net::ip::tcp;
using ws_stream = websocket::stream<tcp::socket>;

using protocol::string_packer;
using protocol::string_sink;

void put_str(string_packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

/// A blocking client for the handshake steps (connect, open) before the pipelined phase.
class ws_client {
public:
  explicit ws_client(net::io_context& io, std::uint16_t port) : ws_(io) {
    tcp::resolver resolver(io);
    net::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.next_layer().set_option(tcp::no_delay(true));
    ws_.read_message_max(64 << 20);
    ws_.binary(true);
    ws_.handshake("127.0.0.1", "/ws");
    string_sink buffer;
    string_packer pk(buffer);
    pk.pack_map(3);
    put_str(pk, "t");
    put_str(pk, "connect");
    put_str(pk, "id");
    pk.pack(1);
    put_str(pk, "user");
    put_str(pk, "bench");
    ws_.write(net::buffer(buffer.bytes));
    expect("connected");
  }

  /// Opens `room` and returns the `opened` reply's text.
  std::string open(const std::string& room) {
    string_sink buffer;
    string_packer pk(buffer);
    pk.pack_map(3);
    put_str(pk, "t");
    put_str(pk, "open");
    put_str(pk, "id");
    pk.pack(2);
    put_str(pk, "room");
    put_str(pk, room);
    ws_.write(net::buffer(buffer.bytes));
    auto opened = expect("opened");
    return field(opened.get(), "text").as<std::string>();
  }

  ws_stream& stream() { return ws_; }

  static const msgpack::object& field(const msgpack::object& map, std::string_view key) {
    for (std::uint32_t i = 0; i < map.via.map.size; ++i)
      if (map.via.map.ptr[i].key.as<std::string_view>() == key) return map.via.map.ptr[i].val;
    throw std::runtime_error("reply without '" + std::string(key) + "'");
  }

private:
  msgpack::object_handle expect(std::string_view type) {
    boost::beast::flat_buffer buffer;
    ws_.read(buffer);
    const auto* data = static_cast<const char*>(buffer.data().data());
    auto handle = msgpack::unpack(data, buffer.size());
    const auto t = field(handle.get(), "t").as<std::string>();
    if (t != type)
      throw std::runtime_error("expected '" + std::string(type) + "', got '" + t + "'");
    return handle;
  }

  ws_stream ws_;
};

/// Encodes edits [first, last) as `op` maps in one frame's payload.
void encode_ops(const std::vector<ot::operation>& ops, std::size_t first, std::size_t last,
                const std::string& room, string_sink& buffer) {
  string_packer pk(buffer);
  for (std::size_t i = first; i < last; ++i) {
    pk.pack_map(6);
    put_str(pk, "t");
    put_str(pk, "op");
    put_str(pk, "id");
    pk.pack_uint64(i + 10);
    put_str(pk, "room");
    put_str(pk, room);
    put_str(pk, "rev");
    pk.pack_uint64(i);
    put_str(pk, "op");
    protocol::pack_operation(pk, ops[i]);
    put_str(pk, "key");
    put_str(pk, "k" + std::to_string(i));
  }
}

/// Appends `payload` as one masked client frame (RFC 6455 §5.2): a client that sends each
/// edit as its own message still writes whatever it has queued with one system call, as a
/// browser does, so many frames go into one write.
void append_client_frame(std::string& out, std::string_view payload, std::uint32_t mask) {
  out.push_back(static_cast<char>(0x82)); // FIN, binary
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>(n >> shift));
  }
  unsigned char key[4];
  std::memcpy(key, &mask, 4);
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t at = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i)
    out[at + i] = static_cast<char>(out[at + i] ^ key[i & 3]);
}

/// Sends every edit pipelined and reads the acks, on one thread: writes and reads alternate
/// on one io_context, so neither side waits for the other.
class pipeline {
public:
  pipeline(ws_stream& ws, const std::vector<ot::operation>& ops, std::string room,
           std::size_t batch, std::size_t window, std::size_t write_bytes)
      : ws_(ws), ops_(ops), room_(std::move(room)), batch_(batch), window_(window),
        write_bytes_(write_bytes), mask_(static_cast<std::uint32_t>(std::random_device{}())) {}

  std::size_t frames() const { return frames_; }

  /// Returns the milliseconds from the first frame sent to the last ack read.
  double run() {
    start_ = clock_type::now();
    do_write();
    do_read();
    ws_.get_executor().target<net::io_context::executor_type>()->context().run();
    if (!error_.empty()) throw std::runtime_error(error_);
    return std::chrono::duration<double, std::milli>(finish_ - start_).count();
  }

private:
  void do_write() {
    if (writing_ || sent_ == ops_.size() || sent_ - acked_ >= window_) return;
    // Frames of `batch` edits each, as many as fit in write_bytes and the window.
    frame_.clear();
    while (sent_ < ops_.size() && sent_ - acked_ < window_ && frame_.size() < write_bytes_) {
      const std::size_t last = std::min({ops_.size(), sent_ + batch_, acked_ + window_});
      payload_.bytes.clear();
      encode_ops(ops_, sent_, last, room_, payload_);
      append_client_frame(frame_, payload_.bytes, mask_);
      sent_ = last;
      ++frames_;
    }
    writing_ = true;
    // Straight to the socket: Beast writes one frame per call, and it writes nothing else
    // here (the engine pings every 25 s; a run lasts well under that).
    net::async_write(ws_.next_layer(), net::buffer(frame_),
                     [this](boost::system::error_code ec, std::size_t) {
                       writing_ = false;
                       if (ec) return fail("write: " + ec.message());
                       do_write();
                     });
  }

  void do_read() {
    ws_.async_read(buffer_, [this](boost::system::error_code ec, std::size_t) {
      if (ec) return fail("read: " + ec.message());
      const auto* data = static_cast<const char*>(buffer_.data().data());
      std::size_t offset = 0;
      while (offset < buffer_.size()) {
        auto handle = msgpack::unpack(data, buffer_.size(), offset);
        const auto& map = handle.get();
        const auto t = ws_client::field(map, "t").as<std::string_view>();
        if (t == "ack") {
          const auto rev = ws_client::field(map, "rev").as<std::uint64_t>();
          if (rev != acked_ + 1)
            return fail("ack for rev " + std::to_string(rev) + " after " + std::to_string(acked_));
          ++acked_;
        } else if (t == "error") {
          return fail("error: " + ws_client::field(map, "reason").as<std::string>());
        }
      }
      buffer_.consume(buffer_.size());
      if (acked_ == ops_.size()) {
        finish_ = clock_type::now();
        return;
      }
      do_write();
      do_read();
    });
  }

  void fail(std::string why) {
    error_ = std::move(why);
    ws_.next_layer().close();
  }

  ws_stream& ws_;
  const std::vector<ot::operation>& ops_;
  std::string room_;
  std::size_t batch_, window_, write_bytes_;
  std::uint32_t mask_;
  std::size_t sent_ = 0, acked_ = 0, frames_ = 0;
  string_sink payload_;
  bool writing_ = false;
  std::string frame_;
  boost::beast::flat_buffer buffer_;
  clock_type::time_point start_, finish_;
  std::string error_;
};

int run_ws(const arguments& args, const traces::editing_trace& trace) {
  if (args.port == 0) throw std::runtime_error("ws needs --port (a running engine)");
  if (!trace.start_content.empty())
    throw std::runtime_error("the ws replay starts from an empty document");
  const auto ops = operations(trace);
  std::vector<double> runs;
  bool ok = true;
  std::mt19937_64 random(std::random_device{}());
  std::size_t frames = 0;
  for (int run = 0; run < args.runs; ++run) {
    net::io_context io;
    const std::string room = "bench-" + std::to_string(random());
    ws_client author(io, args.port);
    if (!author.open(room).empty()) throw std::runtime_error("room " + room + " is not new");
    pipeline replay(author.stream(), ops, room, args.batch, args.window, args.write_bytes);
    runs.push_back(replay.run());
    frames = replay.frames();
    io.restart();
    ws_client reader(io, args.port);
    ok = ok && reader.open(room) == trace.end_content;
  }
  print_result("websocket_replay", args, ops.size(), runs, ok,
               ",\"batch\":" + std::to_string(args.batch) + ",\"window\":" +
                   std::to_string(args.window) + ",\"frames_sent\":" + std::to_string(frames) +
                   (args.label.empty() ? "" : ",\"store\":\"" + args.label + "\""));
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse_arguments(argc, argv);
    const auto trace = traces::load_trace(traces::trace_path(args.trace));
    if (args.mode == "inproc") return run_inproc(args, trace);
    if (args.mode == "actor") return run_actor(args, trace);
    if (args.mode == "ws") return run_ws(args, trace);
    throw std::runtime_error("unknown mode " + args.mode);
  } catch (const std::exception& error) {
    std::cerr << "troupe_doc_bench: " << error.what() << '\n';
    return 2;
  }
}
