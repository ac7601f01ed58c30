// Precompiled header of the client library: the heavy, stable headers.
#pragma once
#include <utility> // first: Boost 1.74's asio needs std::exchange under C++20

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <msgpack.hpp>
