#pragma once
// The heavy headers of the actors layer, compiled once: CAF and Asio (no Beast here).
#include <utility> // Boost 1.74's asio/awaitable.hpp uses std::exchange without including it
#include <boost/asio.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>
