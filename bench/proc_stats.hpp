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

// Time a core (or, with cpu = -1, every core) spent, from /proc/stat. The kernel accounts
// interrupt and softirq time on its own (IRQ time accounting): it is in no process's
// utime/stime. On loopback that is most of the TCP receive path of every delivery, run
// on the sending core.
struct CoreTimes {
  double busy = 0;     // user + nice + system + steal, in seconds
  double softirq = 0;  // irq + softirq, in seconds
};
std::optional<CoreTimes> core_times(int cpu = -1);

// The one CPU `pid` is pinned to, or -1 when it may run on several.
int pinned_cpu(pid_t pid);

// Raises the soft open-file limit to the hard limit; returns the new soft limit.
long raise_fd_limit();

}  // namespace bench
