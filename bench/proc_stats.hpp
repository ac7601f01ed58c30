#pragma once
// Reads a process's CPU time and resident memory from /proc.
#include <optional>
#include <sys/types.h>

namespace bench {

// utime + stime of every thread of `pid` (0 = this process), in seconds. The kernel counts
// in clock ticks (usually 10 ms), so measure windows of seconds, not milliseconds.
std::optional<double> process_cpu_seconds(pid_t pid);

// VmRSS of `pid` (0 = this process) in KiB.
std::optional<long> process_rss_kb(pid_t pid);

// CPU seconds the whole machine spent busy (every core, everything but idle and iowait),
// from /proc/stat: what is left after the server and the generator is interference.
std::optional<double> machine_busy_seconds();

// Raises the soft open-file limit to the hard limit; returns the new soft limit.
long raise_fd_limit();

}  // namespace bench
