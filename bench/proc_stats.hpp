#pragma once
// Reads a process's CPU time and resident memory from /proc.
#include <optional>
#include <sys/types.h>
#include <vector>

namespace bench {

// utime + stime of every thread of `pid` (0 = this process), in seconds. The kernel counts
// in clock ticks (usually 10 ms), so measure windows of seconds, not milliseconds.
std::optional<double> process_cpu_seconds(pid_t pid);

// The same summed over several processes (a cluster's nodes and Redis); nullopt when any
// of them cannot be read (gone) or the list is empty. `each` receives every process's.
std::optional<double> processes_cpu_seconds(const std::vector<pid_t>& pids,
                                            std::vector<double>* each = nullptr);

// VmRSS of `pid` (0 = this process) in KiB.
std::optional<long> process_rss_kb(pid_t pid);

// VmHWM (peak resident set) of `pid` in KiB, and its reset to the current VmRSS
// (/proc/PID/clear_refs, value 5; false when not permitted).
std::optional<long> process_peak_rss_kb(pid_t pid);
bool reset_peak_rss(pid_t pid);

// Idle + iowait seconds of every core together, from /proc/stat, and the number of
// cores. Busy time from the same file is sampled at each timer tick, which a load paced
// in step with the tick (250 broadcasts/s against 100 Hz) aliases badly; idle time is
// measured, so busy = cores × elapsed − idle is the figure to trust.
struct IdleTimes {
  double idle_s = 0;
  int cores = 0;
};
std::optional<IdleTimes> machine_idle();

// Raises the soft open-file limit to the hard limit; returns the new soft limit.
long raise_fd_limit();

} // namespace bench
