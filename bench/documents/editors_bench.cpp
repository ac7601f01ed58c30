// troupe_editors_bench: N editors type into one document at once, through the C++ client
// library (one operation in flight each, as a real editor), against a running engine.
//
//   troupe_editors_bench --port P [--editors 20] [--seconds 5] [--seed S]
//
// Each editor makes a random edit (mostly one-character inserts, some deletions, at random
// places in its local text), waits for its acknowledgement, and makes the next: a closed
// loop, so the figure is what the engine sustains for that many concurrent editors. Ack
// latency is from the edit to its acknowledgement. At the end every editor and a fresh
// reader must hold the same text ("ok"). Prints one JSON line (and a readable one on
// stderr): ops/s, and ack p50, p99, p99.9 and max.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "clients/cpp/connection.hpp"
#include "clients/cpp/blocking_document.hpp"

using namespace troupe;
using clock_type = std::chrono::steady_clock;

namespace {

struct arguments {
  std::uint16_t port = 0;
  int editors = 20;
  double seconds = 5;
  std::uint64_t seed = 1;
};

arguments parse_arguments(int argc, char** argv) {
  arguments args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--port")
      args.port = static_cast<std::uint16_t>(std::stoi(value));
    else if (flag == "--editors")
      args.editors = std::max(1, std::stoi(value));
    else if (flag == "--seconds")
      args.seconds = std::stod(value);
    else if (flag == "--seed")
      args.seed = std::stoull(value);
    else
      throw std::runtime_error("unknown option " + flag);
  }
  if (args.port == 0)
    throw std::runtime_error("usage: troupe_editors_bench --port P [--editors N] [--seconds S]");
  return args;
}

/// One editor: a client, its document, and the loop edit → ack → edit.
class editor {
public:
  editor(boost::asio::io_context& io, const arguments& args, int index, const std::string& room)
      : client_(io.get_executor(), options(args, index)), documents_(client_),
        random_(args.seed * 1000 + static_cast<std::uint64_t>(index)) {
    document_ = documents_.open(
        room, {}, [this](client::result<client::document_opened> r) { opened_.set_value(r.ok()); });
    client_.start();
  }

  bool wait_open() {
    auto future = opened_.get_future();
    return future.wait_for(std::chrono::seconds(10)) == std::future_status::ready && future.get();
  }

  /// Starts the loop on the client's strand.
  void start(clock_type::time_point until) {
    until_ = until;
    boost::asio::post(client_.executor(), [this] { next(); });
  }

  std::vector<double> latencies_ms() {
    std::lock_guard lock(mutex_);
    return latencies_;
  }
  std::size_t refused() const { return refused_; }
  client::document& document() { return *document_; }
  void close() { client_.close(); }

private:
  static client::connection_options options(const arguments& args, int index) {
    client::connection_options o;
    o.url = "ws://127.0.0.1:" + std::to_string(args.port) + "/ws";
    o.user = "editor-" + std::to_string(index);
    return o;
  }

  void next() {
    if (clock_type::now() >= until_) return;
    const auto sent = clock_type::now();
    const bool made = document_->edit_with([this](const ot::rope& text) {
      const std::size_t length = text.size();
      std::uniform_int_distribution<std::size_t> at(0, length);
      const std::size_t position = at(random_);
      ot::operation op;
      // Mostly typing, sometimes deleting: the text grows like a document being written.
      if (length > 0 && random_() % 5 == 0) {
        const std::size_t from = std::min(position, length - 1);
        op.retain(from).remove(1 + random_() % std::min<std::size_t>(3, length - from));
      } else {
        static constexpr std::string_view letters[] = {"a", "e", "t", " ", "é", "😀"};
        op.retain(position).insert(letters[random_() % std::size(letters)]);
      }
      return op;
    });
    if (!made) {
      ++refused_;
      return;
    }
    document_->when_synced([this, sent] {
      {
        std::lock_guard lock(mutex_);
        latencies_.push_back(
            std::chrono::duration<double, std::milli>(clock_type::now() - sent).count());
      }
      next();
    });
  }

  client::connection client_;
  client::documents documents_;
  std::shared_ptr<client::document> document_;
  std::promise<bool> opened_;
  std::mt19937_64 random_;
  clock_type::time_point until_;
  std::mutex mutex_;
  std::vector<double> latencies_;
  std::size_t refused_ = 0;
};

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

} // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse_arguments(argc, argv);
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    const std::string room = "editors-" + std::to_string(std::random_device{}());

    std::vector<std::unique_ptr<editor>> editors;
    for (int i = 0; i < args.editors; ++i)
      editors.push_back(std::make_unique<editor>(io, args, i, room));
    bool ok = true;
    for (auto& e : editors)
      ok = e->wait_open() && ok;
    if (!ok) throw std::runtime_error("not every editor could open the document");

    const auto start = clock_type::now();
    const auto until = start + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(args.seconds));
    for (auto& e : editors)
      e->start(until);
    std::this_thread::sleep_until(until); // the measured window itself, not a synchronisation

    // Everyone's last edit acknowledged and every remote edit applied: same text everywhere.
    std::vector<double> latencies;
    for (auto& e : editors) {
      auto mine = e->latencies_ms();
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    }
    const double elapsed_s = std::chrono::duration<double>(clock_type::now() - start).count();
    std::uint64_t top_rev = 0;
    for (auto& e : editors) {
      std::promise<void> synced;
      e->document().when_synced([&] { synced.set_value(); });
      ok =
          synced.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready && ok;
      top_rev = std::max(top_rev, e->document().rev());
    }
    client::connection reader_client(io.get_executor(), [&] {
      client::connection_options o;
      o.url = "ws://127.0.0.1:" + std::to_string(args.port) + "/ws";
      return o;
    }());
    client::documents reader_documents(reader_client);
    client::blocking_document reader(reader_documents, room);
    reader_client.start();
    reader.open();
    const std::string final_text = reader.text();
    for (auto& e : editors) {
      const auto deadline = clock_type::now() + std::chrono::seconds(10);
      while (e->document().text() != final_text && clock_type::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5)); // bounded poll of a copy
      ok = ok && e->document().text() == final_text;
    }

    std::sort(latencies.begin(), latencies.end());
    std::size_t refused = 0;
    for (auto& e : editors)
      refused += e->refused();
    std::fprintf(stderr,
                 "[concurrent_editors] %d editors, %.2f s: %zu ops, %.0f ops/s, ack p50 %.3f ms, "
                 "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
                 args.editors, elapsed_s, latencies.size(), latencies.size() / elapsed_s,
                 percentile(latencies, 0.5), percentile(latencies, 0.99),
                 percentile(latencies, 0.999), latencies.empty() ? 0.0 : latencies.back());
    std::printf("{\"bench\":\"concurrent_editors\",\"editors\":%d,\"seconds\":%.2f,\"ops\":%zu,"
                "\"ops_per_s\":%.0f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,\"ack_p999_ms\":%.3f,"
                "\"ack_max_ms\":%.3f,\"rev\":%llu,\"refused\":%zu,\"ok\":%s}\n",
                args.editors, elapsed_s, latencies.size(), latencies.size() / elapsed_s,
                percentile(latencies, 0.5), percentile(latencies, 0.99),
                percentile(latencies, 0.999), latencies.empty() ? 0.0 : latencies.back(),
                static_cast<unsigned long long>(top_rev), refused, ok ? "true" : "false");
    std::fflush(stdout);

    reader_client.close();
    for (auto& e : editors)
      e->close();
    work.reset();
    io.stop();
    io_thread.join();
    return ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::cerr << "troupe_editors_bench: " << error.what() << '\n';
    return 2;
  }
}
