// troupe_chat: a command-line chat room.
//
//   troupe_chat --url ws://127.0.0.1:8080/ws --room lobby --name alice
//
// Prints the room's messages in order with their user, publishes every line read from
// stdin, and tells what the connection is doing (reconnects, recovery). Messages are
// published as {text: "<line>"}; messages from others are shown as their `text`, a plain
// string as itself, anything else as MessagePack rendered as JSON.
// Shows who comes and goes (grouped by user: a second tab of someone already here is not
// news) and who is typing. Commands: /who lists who is online (with their tab counts,
// status and typing); /status <text> sets yours; /typing tells the others you are typing
// (until you send a line, or for 6 s); /ping measures a round trip; /quit (or end of input)
// leaves.
#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>

#include "clients/cpp/connection.hpp"

namespace po = boost::program_options;
using namespace troupe::client;

namespace {

std::mutex out_m;

template <class... A>
void say(const A&... parts) {
  std::lock_guard<std::mutex> l(out_m);
  (std::cout << ... << parts) << std::endl;
}

std::string clock_of(std::int64_t ts_ms) {
  std::time_t t = static_cast<std::time_t>(ts_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

std::string text_of(const value& v) {
  if (auto s = v.str()) return std::string(*s);
  if (v.type() == msgpack::type::MAP) {
    map_view m(v.object());
    if (auto t = m.str("text")) return std::string(*t);
  }
  return v.to_string();
}

void show(const message& m) {
  say(clock_of(m.ts), " #", m.seq, " ", m.user, ": ", text_of(m.data));
}

// "alice (2 tabs, away), bob, carol (typing)"
std::string who_is_here(const presence_view& v) {
  const auto& list = v.list();
  const auto typing = v.typing_users();
  std::string out;
  for (const auto& user : list.users()) {
    std::string notes;
    auto note = [&](const std::string& n) { notes += (notes.empty() ? "" : ", ") + n; };
    const auto entries = list.entries_of(user);
    if (entries.size() > 1) note(std::to_string(entries.size()) + " tabs");
    for (const auto* e : entries) {
      if (e->state.type() != msgpack::type::MAP) continue;
      if (auto st = map_view(e->state.object()).str("status")) {
        note(std::string(*st));
        break;
      }
    }
    if (std::find(typing.begin(), typing.end(), user) != typing.end()) note("typing");
    if (const auto* self = v.self(); self && self->user == user) note("you");
    const auto name = entries.front()->name.value_or(user);
    out += (out.empty() ? "" : ", ") + name + (notes.empty() ? "" : " (" + notes + ")");
  }
  return out.empty() ? "nobody" : out;
}

} // namespace

int main(int argc, char** argv) {
  std::string url, room, name, token;
  po::options_description desc("troupe_chat options");
  desc.add_options()("help,h", "show this help")(
      "url", po::value(&url)->default_value("ws://127.0.0.1:8080/ws"),
      "engine WebSocket URL")("room", po::value(&room)->default_value("lobby"), "room to join")(
      "name", po::value(&name)->default_value(""),
      "your name (user id on an open engine)")("token", po::value(&token)->default_value(""),
                                               "connection token (JWT), if the engine needs one");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "troupe_chat: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }

  connection_options opts;
  opts.url = url;
  opts.user = name;
  opts.name = name;
  opts.token = token;

  boost::asio::io_context io(1);
  auto work = boost::asio::make_work_guard(io);
  connection client(io.get_executor(), opts);

  std::promise<void> closed;
  auto closed_f = closed.get_future();
  bool quitting = false;   // touched on the client's strand only
  bool closed_set = false; // likewise

  client.on_state([&](const state_event& ev) {
    switch (ev.state) {
    case connection_state::connecting:
      say("* connecting to ", url,
          ev.attempt ? " (attempt " + std::to_string(ev.attempt + 1) + ")" : "");
      break;
    case connection_state::connected:
      say("* connected as ", ev.info.user, " (connection ", ev.info.client, ")");
      break;
    case connection_state::disconnected:
      say("* disconnected", ev.close_code ? " (" + std::to_string(ev.close_code) + ")" : "",
          ev.reason.empty() ? "" : ": " + ev.reason,
          ev.retry_in.count() ? "; reconnecting in " + std::to_string(ev.retry_in.count()) + " ms"
                              : "");
      break;
    case connection_state::closed:
      if (!quitting) say("* closed: ", ev.reason.empty() ? "by the server" : ev.reason);
      if (!closed_set) {
        closed_set = true;
        closed.set_value();
      }
      break;
    case connection_state::idle:
      break;
    }
  });
  client.on_error(
      [](const error& e) { say("* error: ", e.code, e.reason.empty() ? "" : ": " + e.reason); });

  room_handlers h;
  h.on_message = [](const message& m) { show(m); };
  h.on_subscribed = [room](const subscribed_event& ev) {
    switch (ev.kind) {
    case subscribe_kind::initial:
      say("* joined ", room, " (", ev.msgs.size(), " recent message",
          ev.msgs.size() == 1 ? "" : "s", ")");
      for (const auto& m : ev.msgs)
        show(m);
      break;
    case subscribe_kind::recovered:
      say("* back in ", room, ": recovered ", ev.msgs.size(), " missed message",
          ev.msgs.size() == 1 ? "" : "s");
      break;
    case subscribe_kind::rebuilt:
      say("* back in ", room,
          ": missed messages could not be recovered (history lost); the latest ", ev.msgs.size(),
          ":");
      for (const auto& m : ev.msgs)
        show(m);
      break;
    }
  };
  h.on_error = [room](const error& e) { say("* left ", room, ": ", e.code, " ", e.reason); };
  h.on_presence = [](const presence_event& ev) {
    if (ev.kind != presence_event_kind::diff) {
      if (ev.kind == presence_event_kind::snapshot || !ev.users_joined.empty() ||
          !ev.users_left.empty())
        say("* online: ", who_is_here(*ev.view));
      return;
    }
    // Users, not connections: another tab of someone already here is not news.
    for (const auto& u : ev.users_joined)
      say("* ", u, " joined");
    for (const auto& u : ev.users_left)
      say("* ", u, " left");
  };
  h.on_typing = [](const typing_event& t) {
    if (t.on) say("* ", t.user, " is typing…");
  };
  client.subscribe(room, std::move(h), [room](result<subscribed_event> r) {
    if (!r.ok()) say("* cannot join ", room, ": ", r.error().code, " ", r.error().reason);
  });

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    say("* leaving");
    std::fflush(stdout);
    std::_Exit(0); // stdin may be blocked in getline; the engine sees the connection drop
  });

  std::thread io_thread([&] { io.run(); });
  client.start();

  std::mutex pending_m;
  std::condition_variable pending_cv;
  int pending = 0; // publishes not yet acknowledged
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (line == "/quit") break;
    if (line == "/who") {
      client.with_presence(room, [](const presence_view* v) {
        if (v) say("* online: ", who_is_here(*v));
      });
      continue;
    }
    if (line == "/typing") {
      client.typing(room, true);
      continue;
    }
    if (line.rfind("/status ", 0) == 0) {
      std::map<std::string, std::string> state{{"status", line.substr(8)}};
      client.set_state(room, value::from(state), [](result<nothing> r) {
        if (!r.ok()) say("* status not set: ", r.error().code);
      });
      continue;
    }
    if (line == "/ping") {
      const auto t0 = std::chrono::steady_clock::now();
      client.ping([t0](result<nothing> r) {
        if (!r.ok()) return say("* ping: ", r.error().code);
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - t0);
        say("* pong in ", us.count(), " us");
      });
      continue;
    }
    client.typing(room, false);
    std::map<std::string, std::string> data{{"text", line}};
    {
      std::lock_guard<std::mutex> l(pending_m);
      ++pending;
    }
    client.publish(room, value::from(data), [&](result<ack> r) {
      if (!r.ok())
        say("* not sent: ", r.error().code,
            r.error().reason.empty() ? "" : " (" + r.error().reason + ")");
      std::lock_guard<std::mutex> l(pending_m);
      --pending;
      pending_cv.notify_all();
    });
  }
  {
    // End of input: let what was typed go out (each publish ends within the request timeout).
    std::unique_lock<std::mutex> l(pending_m);
    pending_cv.wait_for(l, opts.request_timeout + std::chrono::seconds(1),
                        [&] { return pending == 0; });
  }

  boost::asio::post(client.executor(), [&] { quitting = true; });
  client.close();
  closed_f.wait_for(std::chrono::seconds(3));
  work.reset();
  signals.cancel();
  io.stop();
  io_thread.join();
  return 0;
}
