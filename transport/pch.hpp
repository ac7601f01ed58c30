#pragma once
// Precompiled for the transport and the engine: CAF and Boost.Beast dominate build time.
#include <utility> // Boost 1.74's asio/awaitable.hpp uses std::exchange without including it
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>
