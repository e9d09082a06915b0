// Starting a test server (redis-server, PostgreSQL) on a free port of 127.0.0.1 when test binaries run in
// parallel: FreePort's port is free when it returns, but another binary may take it before the server binds
// it; the server then exits saying so, and StartOnFreePort starts it again on another port. One copy for the
// fixtures that had one each.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <string_view>

namespace rocky_test {

// A port nothing listens on right now (bound then released: another process could take it in between, which
// StartOnFreePort's retry covers).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Calls start(port) until it returns true, and returns that port: first with `port` when it is not 0 (a
// restart on the server's old port), then with a new FreePort() each time. start must start the server and
// wait until it runs (true), return false only when the server exited because the port was taken, and fail
// the test itself on any other failure. After `attempts` ports all taken, fails the test naming `server` and
// showing log() (the server's log).
inline int StartOnFreePort(std::string_view server, const std::function<bool(int port)>& start,
                           const std::function<std::string()>& log, int port = 0, int attempts = 5) {
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (port == 0 || attempt > 0) port = FreePort();
    if (start(port)) return port;
  }
  FAIL(server << " found no free port in " << attempts << " attempts: " << log());
  return 0;
}

}  // namespace rocky_test
