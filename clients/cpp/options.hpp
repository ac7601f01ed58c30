// How a client connects and behaves.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "clients/cpp/backoff.hpp"

namespace troupe::client {

struct connection_options {
  std::string url = "ws://127.0.0.1:8080/ws";
  // Other nodes of a cluster: after a connection ends, the next attempt goes to the next URL
  // in turn (url, then these), so a client whose node died or drains (4503) resumes on
  // another one and recovers with `since`. Behind a load balancer leave it empty.
  std::vector<std::string> fallback_urls;
  std::string token; // JWT; empty: none
  std::string user;  // only honoured by an engine running without a secret
  std::string name;

  bool auto_reconnect = true;
  backoff_options backoff;
  std::chrono::milliseconds connect_timeout{10'000}; // TCP + WebSocket handshake + `connected`
  std::chrono::milliseconds request_timeout{10'000}; // a reply must come within this
  // Declare the server dead after this long without a frame from it (it pings every `ping`
  // seconds). 0: derive from the server's ping interval (2 × ping + 5 s).
  std::chrono::milliseconds idle_timeout{0};

  // typing(room, true) sends `on:true` at most this often (the engine lets it lapse after 6 s).
  std::chrono::milliseconds typing_refresh{2'000};

  std::size_t max_batch = 256 * 1024;          // maps queued while writing share a frame up to this
  std::size_t max_incoming = 64 * 1024 * 1024; // largest frame accepted from the server
  int receive_buffer = 0; // SO_RCVBUF of the socket; 0: the system's (auto-tuned) default
};

} // namespace troupe::client
