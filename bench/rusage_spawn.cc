// rocky-bench-spawn: runs one command and prints what the whole process cost: its exit status, wall time,
// user and system CPU time (microseconds) and peak resident memory (KiB), from wait4(2).
//
//   rocky-bench-spawn OUT DIR COMMAND [ARG...]
//     OUT:  file the command's standard output goes to ("-" for /dev/null); its standard error goes to
//     OUT.err
//           (or /dev/null)
//     DIR:  working directory of the command ("-" to keep this one)
//   prints: exit=N wall_us=N user_us=N sys_us=N maxrss_kib=N
//
// Why a separate program: ru_maxrss of a child counts the memory of the process it was forked from (Linux
// records the old address space's high-water mark at exec). rocky-bench itself holds hundreds of MiB, so a
// child forked from it would report that, not its own peak. This program is plain C library code (no C++
// runtime), so a child forked from it starts from about 1 MiB, below anything it measures.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

long long Micros(const timeval& tv) { return static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec; }

long long NowMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int OpenOutput(const char* path) {
  if (std::strcmp(path, "-") == 0) return open("/dev/null", O_WRONLY | O_CLOEXEC);
  return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: rocky-bench-spawn OUT DIR COMMAND [ARG...]\n");
    return 2;
  }
  const char* out = argv[1];
  const char* dir = argv[2];
  char err_path[4096];
  if (std::strcmp(out, "-") == 0) {
    std::snprintf(err_path, sizeof err_path, "-");
  } else {
    std::snprintf(err_path, sizeof err_path, "%s.err", out);
  }
  const long long start = NowMicros();
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("rocky-bench-spawn: fork");
    return 2;
  }
  if (pid == 0) {
    const int out_fd = OpenOutput(out);
    const int err_fd = OpenOutput(err_path);
    if (out_fd < 0 || err_fd < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
      _exit(126);
    if (std::strcmp(dir, "-") != 0 && chdir(dir) != 0) _exit(126);
    execvp(argv[3], argv + 3);
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid) {
    std::perror("rocky-bench-spawn: wait4");
    return 2;
  }
  const long long wall = NowMicros() - start;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::printf("exit=%d wall_us=%lld user_us=%lld sys_us=%lld maxrss_kib=%ld\n", code, wall,
              Micros(usage.ru_utime), Micros(usage.ru_stime), usage.ru_maxrss);
  return 0;
}
