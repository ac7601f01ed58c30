// The plain-text OT library replaying a real editing trace in process: one operation per
// patch applied to a rope, against the same patches applied to the rope directly, to show
// what the OT layer costs. One JSON object per line.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "ot/rope.hpp"
#include "ot/text_operation.hpp"
#include "tests/support/editing_trace.hpp"

using namespace troupe;

namespace {

constexpr int runs = 5;

struct result {
  double best_ms = 0;
  double median_ms = 0;
  bool ok = true;
};

/// Times `replay` (which returns the final text) `runs` times and checks every outcome.
template <class Replay>
result measure(const traces::editing_trace& trace, Replay replay) {
  std::vector<double> times;
  result r;
  for (int run = 0; run < runs; ++run) {
    ot::rope text(trace.start_content);
    const auto start = std::chrono::steady_clock::now();
    replay(text);
    const auto stop = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    r.ok = r.ok && text.to_string() == trace.end_content;
  }
  std::sort(times.begin(), times.end());
  r.best_ms = times.front();
  r.median_ms = times[times.size() / 2];
  return r;
}

void print(const char* bench, const std::string& trace_name, std::size_t patches, const result& r) {
  std::printf("{\"bench\":\"%s\",\"trace\":\"%s\",\"patches\":%zu,\"best_ms\":%.2f,"
              "\"median_ms\":%.2f,\"ok\":%s}\n",
              bench, trace_name.c_str(), patches, r.best_ms, r.median_ms, r.ok ? "true" : "false");
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "automerge-paper";
  traces::editing_trace trace;
  try {
    trace = traces::load_trace(traces::trace_path(name));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
  const std::size_t patches = trace.patches.size();

  /// A patch as an operation: retain to it, remove, insert.
  auto operation_of = [](const traces::patch& patch) {
    ot::operation op;
    op.retain(patch.position).remove(patch.removed).insert(patch.inserted);
    return op;
  };

  // (a) What the document actor does per keystroke: build an operation, check it, apply it.
  const result through_ot = measure(trace, [&](ot::rope& text) {
    for (const auto& patch : trace.patches) {
      const ot::operation op = operation_of(patch);
      if (ot::fits(op, text.size())) ot::apply(text, op);
    }
  });
  print("ot_apply", name, patches, through_ot);

  // (b) The rope alone, patch by patch.
  const result rope_only = measure(trace, [&](ot::rope& text) {
    for (const auto& patch : trace.patches) {
      text.erase(patch.position, patch.removed);
      text.insert(patch.position, patch.inserted);
    }
  });
  print("rope_apply", name, patches, rope_only);

  // (c) As it arrives from the wire: parse (UTF-8 checked), fit, apply. The wire components
  // are built before the clock starts.
  std::vector<std::vector<ot::wire_component>> wire;
  wire.reserve(patches);
  for (const auto& patch : trace.patches)
    wire.push_back(operation_of(patch).to_wire());
  const result from_wire = measure(trace, [&](ot::rope& text) {
    for (const auto& components : wire) {
      auto parsed = ot::parse(components);
      if (parsed.op && ot::fits(*parsed.op, text.size())) ot::apply(text, *parsed.op);
    }
  });
  print("ot_parse_apply", name, patches, from_wire);

  return through_ot.ok && rope_only.ok && from_wire.ok ? 0 : 1;
}
