// The C++ OT library (troupe_ot) behind a line protocol, so that the reference tests
// (ot.test.mjs) can compare it with ot-text-unicode case by case in one process:
//   stdin:  one JSON case per line
//     {"fn":"transform","a":OP,"b":OP,"side":"left"|"right"}
//     {"fn":"compose","a":OP,"b":OP}
//     {"fn":"apply","text":"..","op":OP}
//     {"fn":"transform_position","pos":N,"op":OP}
//   stdout: one JSON line per case, {"result": OP | "text" | N} or {"error": "why"}
// OP is the wire form: n > 0 retains, -n removes, a string inserts.
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "ot/text_operation.hpp"
#include "ot/utf8.hpp"

namespace ot = troupe::ot;
using json = nlohmann::json;

namespace {

ot::operation operation_of(const json& j) {
  if (!j.is_array()) throw std::invalid_argument("an operation must be an array");
  std::vector<ot::wire_component> wire;
  wire.reserve(j.size());
  for (const auto& c : j) {
    if (c.is_number_integer())
      wire.emplace_back(c.get<std::int64_t>());
    else if (c.is_string())
      wire.emplace_back(c.get<std::string>());
    else
      throw std::invalid_argument("a component must be an integer or a string: " + c.dump());
  }
  auto parsed = ot::parse(wire);
  if (!parsed.op) throw std::invalid_argument(parsed.error);
  return std::move(*parsed.op);
}

json wire_of(const ot::operation& op) {
  json out = json::array();
  for (const auto& c : op.to_wire()) {
    if (const auto* n = std::get_if<std::int64_t>(&c))
      out.push_back(*n);
    else
      out.push_back(std::get<std::string>(c));
  }
  return out;
}

json run(const json& in) {
  const std::string fn = in.at("fn").get<std::string>();
  if (fn == "transform") {
    const std::string side = in.at("side").get<std::string>();
    if (side != "left" && side != "right")
      throw std::invalid_argument("side must be left or right");
    return wire_of(ot::transform(operation_of(in.at("a")), operation_of(in.at("b")),
                                 side == "left" ? ot::side::left : ot::side::right));
  }
  if (fn == "compose")
    return wire_of(ot::compose(operation_of(in.at("a")), operation_of(in.at("b"))));
  if (fn == "apply") {
    const auto text = in.at("text").get<std::string>();
    const auto op = operation_of(in.at("op"));
    // apply()'s precondition.
    if (!ot::fits(op, ot::utf8_count(text)))
      throw std::invalid_argument("the operation does not fit the text");
    return ot::apply(text, op);
  }
  if (fn == "transform_position")
    return ot::transform_position(in.at("pos").get<std::size_t>(), operation_of(in.at("op")));
  throw std::invalid_argument("unknown fn " + fn);
}

} // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json out;
    try {
      out["result"] = run(json::parse(line));
    } catch (const std::exception& e) {
      // One answer per case whatever happens, so the caller's lines stay paired.
      out = json{{"error", e.what()}};
    }
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  }
  return 0;
}
