// RPC round trips through the engine to a trivial backend, against direct HTTP calls to the
// same backend: the engine's cost per call (WebSocket + actor + pooled HTTP client).
//   troupe_rpc_bench [rounds=5] [seconds=3] [concurrency=8]
// Each round runs `concurrency` threads for `seconds`, each a sequential loop of calls on its
// own connection (a WebSocket client, or a keep-alive HTTP connection), and prints calls per
// second with p50 and p99 latency. The backend is tests/support/http_backend.hpp on
// loopback; the engine is the troupe binary this tree built (--store memory --rate 0).
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "clients/cpp/blocking_connection.hpp"
#include "tests/integration/engine_process.hpp"
#include "tests/support/http_backend.hpp"

using namespace std::chrono;
namespace http = boost::beast::http;

namespace {

struct round_result {
  double per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::size_t failed = 0;
};

// Runs `threads` loops of `call` for `seconds`; each loop gets its own state from `make`.
template <class Make>
round_result run_round(int threads, int seconds, Make make) {
  std::mutex m;
  std::vector<double> latencies;
  std::atomic<std::size_t> failed{0};
  std::vector<std::thread> pool;
  const auto end = steady_clock::now() + std::chrono::seconds(seconds);
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      auto call = make(i);
      std::vector<double> mine;
      while (steady_clock::now() < end) {
        const auto t0 = steady_clock::now();
        if (!call()) ++failed;
        mine.push_back(duration<double, std::micro>(steady_clock::now() - t0).count());
      }
      std::lock_guard l(m);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  for (auto& t : pool)
    t.join();
  round_result r;
  if (latencies.empty()) return r;
  std::sort(latencies.begin(), latencies.end());
  r.per_second = static_cast<double>(latencies.size()) / seconds;
  r.p50_us = latencies[latencies.size() / 2];
  r.p99_us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  r.failed = failed;
  return r;
}

void print(const char* what, int round, const round_result& r) {
  std::printf("round %d  %-7s %9.0f calls/s   p50 %7.0f us   p99 %7.0f us   failed %zu\n", round,
              what, r.per_second, r.p50_us, r.p99_us, r.failed);
  std::fflush(stdout);
}

const std::string kBody = R"({"client":"bench","user":"bench","method":"echo","data":{"n":1}})";

} // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 3;
  const int concurrency = argc > 3 ? std::atoi(argv[3]) : 8;

  troupe::test::http_backend backend; // a trivial backend: {"data": {"ok": true}}
  backend.on("/rpc", [](const troupe::test::http_request&) {
    return troupe::test::http_reply{200, R"({"data":{"ok":true}})"};
  });
  troupe::test::EngineProcess engine(
      {"--store", "memory", "--rate", "0", "--backend", backend.url()});
  engine.start();
  std::printf("engine %s, backend %s, %d threads, %d s per round\n", engine.url().c_str(),
              backend.url().c_str(), concurrency, seconds);

  for (int round = 1; round <= rounds; ++round) {
    auto through_engine = run_round(concurrency, seconds, [&](int i) {
      troupe::client::connection_options o;
      o.url = engine.url();
      o.user = "bench-" + std::to_string(i);
      auto c = std::make_shared<troupe::client::blocking_connection>(o);
      c->connect();
      auto data = troupe::client::value::from(std::map<std::string, int>{{"n", 1}});
      return [c, data] {
        try {
          c->rpc("echo", data);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      };
    });
    print("engine", round, through_engine);

    auto direct = run_round(concurrency, seconds, [&](int) {
      struct link {
        boost::asio::io_context io;
        boost::beast::tcp_stream stream{io};
        boost::beast::flat_buffer buffer;
      };
      auto l = std::make_shared<link>();
      l->stream.connect({boost::asio::ip::make_address("127.0.0.1"), backend.port()});
      return [l] {
        http::request<http::string_body> req{http::verb::post, "/rpc", 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "application/json");
        req.keep_alive(true);
        req.body() = kBody;
        req.prepare_payload();
        boost::beast::error_code ec;
        http::write(l->stream, req, ec);
        if (ec) return false;
        http::response<http::string_body> res;
        http::read(l->stream, l->buffer, res, ec);
        return !ec && res.result_int() == 200;
      };
    });
    print("direct", round, direct);
  }
  return 0;
}
