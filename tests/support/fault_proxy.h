// A fault-injecting TCP proxy for tests: listens on 127.0.0.1 (an ephemeral port) and relays every connection
// to a real server on 127.0.0.1 (the S3 fixture, redis-server), or misbehaves as networks and servers do:
//
//   PassThrough()           relay bytes both ways
//   Delay(d)                relay, but only after `d`: the client connects at once, then hears nothing
//   Hold()                  like Delay, until Release(): the test decides when, so nothing depends on timing
//   Blackhole()             accept, read and discard, never answer (a dead peer behind a live port)
//   Reset()                 accept, wait for the request's first bytes, then reset the connection (RST)
//   ServiceUnavailable(n)   answer the next n connections with an S3-style HTTP 503 (SlowDown or
//                           ServiceUnavailable) without contacting the server, then relay again
//   CutShort(n)             relay, but close the connection after n bytes of the server's response
//   PassNext(n)             on top of the mode: the next n connections relay
//   LoseReply(marker, n)    on top of the mode, for every relayed connection, open ones included (a Valkey
//                           client keeps one): when a request containing `marker` ("PUT /", "$4\r\nEXEC")
//                           has reached the server, drop the server's reply to it and close the connection:
//                           the write happened, the client never hears so (a lost reply). n times
//
// The mode is switchable at any time and applies to connections accepted afterwards. Counters say what the
// proxy saw, so a test can assert that a permanent error was not retried. HTTP clients that open one
// connection per request (rocky's transport does) make "connection" and "request" the same thing; requests()
// counts HTTP request heads anyway.
//
// Threads and poll(2) only. Thread-safe: every method may be called from any thread while connections run.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rocky_test {

class FaultProxy {
 public:
  enum class Mode : unsigned char {
    kPass,
    kDelay,
    kHold,
    kBlackhole,
    kReset,
    kServiceUnavailable,
    kCutShort
  };

  // Starts listening and accepting. ok() is false (and error() says why) when it cannot listen.
  explicit FaultProxy(int target_port);
  // Stops accepting, closes every connection and joins every thread.
  ~FaultProxy();

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string Endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void PassThrough();
  void Delay(std::chrono::milliseconds delay);
  // Connections accepted from now on wait, connected and unanswered, until Release() (or the proxy stops).
  void Hold();
  void Release();
  void Blackhole();
  void Reset();
  // `s3_code` is the <Code> of the error body: "SlowDown" or "ServiceUnavailable".
  void ServiceUnavailable(int connections, std::string s3_code = "SlowDown");
  void CutShort(size_t response_bytes);
  void LoseReply(std::string request_marker, int times = 1);
  // Whatever the mode, the next `connections` accepted relay (and do not use up a ServiceUnavailable budget):
  // e.g. the lease's request goes through, and the transfer after it meets the fault.
  void PassNext(int connections);

  Mode mode() const;
  // Connections accepted, HTTP request heads received from clients, and 503s answered since the start or the
  // last ResetCounters.
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  int answered_503() const { return answered_503_.load(); }
  int lost_replies() const { return lost_replies_.load(); }
  void ResetCounters();
  // Waits until connections() >= n; false when `limit` passes first (the caller fails clearly, instead of
  // spinning forever on a connection that never comes).
  bool AwaitConnections(int n, std::chrono::milliseconds limit = std::chrono::seconds(60)) const;

 private:
  struct RequestCounter;  // counts HTTP request heads in a client's byte stream
  struct Plan {
    Mode mode = Mode::kPass;
    std::chrono::milliseconds delay{0};
    size_t cut_after = 0;
    std::string s3_code;
  };

  void AcceptLoop();
  void Serve(int client, Plan plan);
  void Relay(int client, const Plan& plan);
  void Answer503(int client, const std::string& s3_code);
  void DiscardUntilClosed(int client, std::chrono::milliseconds limit);
  // Reads once from `fd` into `buf` and counts the request heads in it. 0 on EOF, -1 on error or stop.
  ssize_t ReadCounting(int fd, char* buf, size_t size, RequestCounter& counter);
  // Sleeps up to `d`, in slices, returning false early when the proxy stops.
  bool SleepUnlessStopping(std::chrono::milliseconds d) const;

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_pipe_[2] = {-1, -1};
  std::string error_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> released_{true};  // false between Hold() and Release()

  mutable std::mutex mu_;
  Plan plan_;                         // guarded by mu_
  int unavailable_left_ = 0;          // guarded by mu_: 503s still to answer in kServiceUnavailable
  int pass_left_ = 0;                 // guarded by mu_: connections still to relay whatever the mode
  std::vector<std::thread> workers_;  // guarded by mu_

  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> answered_503_{0};
  std::atomic<int> lost_replies_{0};
  std::atomic<int> lose_left_{0};  // LoseReply: replies still to lose, over every connection
  std::string lose_marker_;        // guarded by mu_
  std::thread acceptor_;
};

}  // namespace rocky_test
