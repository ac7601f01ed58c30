#pragma once
// The editing traces of tests/data/editing-traces (copied from shared/data, CC BY 4.0): real
// character-by-character editing histories, for tests and benchmarks.

#include <cstddef>
#include <string>
#include <vector>

namespace troupe::traces {

/// One edit: at code point `position`, remove `removed` code points, then insert `inserted`.
struct patch {
  std::size_t position = 0;
  std::size_t removed = 0;
  std::string inserted; ///< UTF-8
};

struct editing_trace {
  std::string start_content;  ///< UTF-8
  std::string end_content;    ///< UTF-8: the patches applied in order to start_content
  std::vector<patch> patches; ///< every transaction's patches, flattened in order
};

/// Reads a gzipped trace ({startContent, endContent, txns: [{patches: [[pos, del, ins]]}]}).
/// Throws std::runtime_error naming the file when it cannot be read or parsed.
editing_trace load_trace(const std::string& path);

/// The path of a trace by its name ("automerge-paper", "seph-blog1") in the repository's
/// copy; TROUPE_TRACE_DIR in the environment overrides the folder.
std::string trace_path(const std::string& name);

} // namespace troupe::traces
