// troupe: the real-time collaborative session engine.

#include <csignal>
#include <iostream>

#include "engine/engine.hpp"
#include "engine/options.hpp"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    auto options = troupe::engine::parse_options(argc, argv, std::cout);
    if (!options) return 0;
    troupe::engine::engine engine(*options);
    const auto port = engine.start();
    std::cout << "troupe: listening on " << options->host << ':' << port << std::endl;
    engine.run_until_signal();
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "troupe: " << error.what() << std::endl;
    return 1;
  }
}
