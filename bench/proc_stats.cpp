#include "proc_stats.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace bench {
namespace {

std::string proc_path(pid_t pid, const char* file) {
  return pid == 0 ? std::string("/proc/self/") + file : "/proc/" + std::to_string(pid) + "/" + file;
}

} // namespace

std::optional<double> process_cpu_seconds(pid_t pid) {
  std::ifstream in(proc_path(pid, "stat"));
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  // Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime.
  std::string skip;
  for (int i = 3; i <= 13; ++i)
    fields >> skip;
  unsigned long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return static_cast<double>(utime + stime) / ticks;
}

std::optional<double> processes_cpu_seconds(const std::vector<pid_t>& pids,
                                            std::vector<double>* each) {
  if (pids.empty()) return std::nullopt;
  double sum = 0;
  if (each) each->clear();
  for (pid_t pid : pids) {
    auto s = process_cpu_seconds(pid);
    if (!s) return std::nullopt;
    sum += *s;
    if (each) each->push_back(*s);
  }
  return sum;
}

namespace {

std::optional<long> status_kb(pid_t pid, const std::string& field) {
  std::ifstream in(proc_path(pid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return std::nullopt;
}

} // namespace

std::optional<long> process_rss_kb(pid_t pid) { return status_kb(pid, "VmRSS:"); }

std::optional<long> process_peak_rss_kb(pid_t pid) { return status_kb(pid, "VmHWM:"); }

bool reset_peak_rss(pid_t pid) {
  std::ofstream out(proc_path(pid, "clear_refs"));
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::optional<IdleTimes> machine_idle() {
  std::ifstream in("/proc/stat");
  std::string line;
  IdleTimes t;
  bool total = false;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (std::getline(in, line) && line.rfind("cpu", 0) == 0) {
    std::istringstream fields(line);
    std::string name;
    unsigned long long user, nice, system, idle, iowait;
    if (!(fields >> name >> user >> nice >> system >> idle >> iowait)) return std::nullopt;
    if (name == "cpu") {
      t.idle_s = static_cast<double>(idle + iowait) / ticks;
      total = true;
    } else {
      ++t.cores;
    }
  }
  if (!total || t.cores == 0) return std::nullopt;
  return t;
}

long raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<long>(rl.rlim_cur);
}

} // namespace bench
