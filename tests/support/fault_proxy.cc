#include "fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace rocky_test {

namespace {

constexpr std::chrono::milliseconds kPollSlice{25};

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

int ConnectLocal(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Closes with an RST instead of a FIN: SO_LINGER with a zero timeout discards unsent data and resets.
void ResetFd(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

}  // namespace

// Finds request heads ("...\r\n\r\n") in a client's stream and skips their Content-Length bodies, so requests
// on a kept-alive connection are counted too. Chunked request bodies are not parsed (rocky never sends them).
struct FaultProxy::RequestCounter {
  std::string head;
  uint64_t body_left = 0;
  bool gave_up = false;  // not HTTP (e.g. RESP to redis): stop looking
  int completed = 0;     // heads seen so far

  // Returns the number of heads completed in these bytes.
  int Feed(const char* data, size_t size) {
    int completed_here = 0;
    while (size > 0 && !gave_up) {
      if (body_left > 0) {
        const size_t skip = static_cast<size_t>(std::min<uint64_t>(body_left, size));
        body_left -= skip;
        data += skip;
        size -= skip;
        continue;
      }
      head.push_back(*data++);
      --size;
      if (head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0) {
        ++completed_here;
        ++completed;
        body_left = ContentLength(head);
        head.clear();
      } else if (head.size() > 64 * 1024) {
        gave_up = true;
      }
    }
    return completed_here;
  }

  static uint64_t ContentLength(const std::string& head) {
    std::string lower = head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = lower.find("\r\ncontent-length:");
    if (at == std::string::npos) return 0;
    return std::strtoull(lower.c_str() + at + 17, nullptr, 10);
  }
};

FaultProxy::FaultProxy(int target_port) : target_port_(target_port) {
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error_ = std::string("listening on 127.0.0.1: ") + std::strerror(errno);
    ::close(fd);
    return;
  }
  port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  if (wake_pipe_[1] >= 0) {
    const char byte = 'x';
    (void)!::write(wake_pipe_[1], &byte, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& worker : workers) worker.join();
  CloseFd(listen_fd_);
  CloseFd(wake_pipe_[0]);
  CloseFd(wake_pipe_[1]);
}

void FaultProxy::PassThrough() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
}

void FaultProxy::Delay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kDelay;
  plan_.delay = delay;
}

void FaultProxy::Hold() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kHold;
  released_ = false;
}

void FaultProxy::Release() { released_ = true; }

bool FaultProxy::AwaitConnections(int n, std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (connections_.load() < n) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void FaultProxy::Blackhole() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kBlackhole;
}

void FaultProxy::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kReset;
}

void FaultProxy::ServiceUnavailable(int connections, std::string s3_code) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kServiceUnavailable;
  plan_.s3_code = std::move(s3_code);
  unavailable_left_ = connections;
}

void FaultProxy::CutShort(size_t response_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan{};
  plan_.mode = Mode::kCutShort;
  plan_.cut_after = response_bytes;
}

void FaultProxy::PassNext(int connections) {
  std::lock_guard<std::mutex> lock(mu_);
  pass_left_ = connections;
}

void FaultProxy::LoseReply(std::string request_marker, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  lose_marker_ = std::move(request_marker);
  lose_left_ = times;
}

FaultProxy::Mode FaultProxy::mode() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plan_.mode;
}

void FaultProxy::ResetCounters() {
  connections_ = 0;
  requests_ = 0;
  answered_503_ = 0;
  lost_replies_ = 0;
}

void FaultProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || stopping_ || (fds[1].revents & POLLIN) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    Plan plan;
    {
      std::lock_guard<std::mutex> lock(mu_);
      plan = plan_;
      if (pass_left_ > 0) {
        --pass_left_;
        plan = Plan{};
      } else if (plan.mode == Mode::kServiceUnavailable) {
        // The budget of 503s is spent per connection; once it is gone, relay again.
        if (unavailable_left_ > 0) {
          --unavailable_left_;
        } else {
          plan = Plan{};
          plan_ = Plan{};
        }
      }
      workers_.emplace_back([this, client, plan] { Serve(client, plan); });
    }
    // Counted once its plan is fixed, so a test that switches modes when it sees a connection never changes
    // what that connection gets.
    ++connections_;
  }
}

bool FaultProxy::SleepUnlessStopping(std::chrono::milliseconds d) const {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, kPollSlice));
  }
  return false;
}

ssize_t FaultProxy::ReadCounting(int fd, char* buf, size_t size, RequestCounter& counter) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) requests_ += counter.Feed(buf, static_cast<size_t>(n));
    return n;
  }
}

void FaultProxy::Serve(int client, Plan plan) {
  switch (plan.mode) {
    case Mode::kPass:
    case Mode::kCutShort: Relay(client, plan); break;
    case Mode::kDelay:
      if (SleepUnlessStopping(plan.delay)) {
        Relay(client, plan);
      } else {
        ::close(client);
      }
      break;
    case Mode::kHold:
      while (!stopping_ && !released_) std::this_thread::sleep_for(kPollSlice);
      if (stopping_) {
        ::close(client);
      } else {
        Relay(client, plan);
      }
      break;
    case Mode::kBlackhole:
      DiscardUntilClosed(client, std::chrono::hours(1));
      ::close(client);
      break;
    case Mode::kReset: {
      // Wait for the request to start, so the client sees a reset mid-exchange rather than a refused connect.
      RequestCounter counter;
      char buf[4096];
      for (int waited = 0; !stopping_ && waited < 40; ++waited) {
        pollfd p{client, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(kPollSlice.count())) > 0) {
          (void)ReadCounting(client, buf, sizeof buf, counter);
          break;
        }
      }
      ResetFd(client);
      break;
    }
    case Mode::kServiceUnavailable: Answer503(client, plan.s3_code); break;
  }
}

void FaultProxy::Relay(int client, const Plan& plan) {
  int upstream = ConnectLocal(target_port_);
  if (upstream < 0) {
    ResetFd(client);
    return;
  }
  RequestCounter counter;
  char buf[16384];
  bool client_open = true;
  bool upstream_open = true;
  size_t relayed_back = 0;
  std::string recent;        // LoseReply: the client's last bytes, to find the marker across reads
  bool marker_sent = false;  // LoseReply: a request with the marker went to the server
  while (!stopping_ && (client_open || upstream_open)) {
    pollfd fds[2] = {{client, static_cast<short>(client_open ? POLLIN : 0), 0},
                     {upstream, static_cast<short>(upstream_open ? POLLIN : 0), 0}};
    int ready = ::poll(fds, 2, static_cast<int>(kPollSlice.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    if (ready == 0) continue;
    if (client_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ReadCounting(client, buf, sizeof buf, counter);
      if (n <= 0) {
        client_open = false;
        ::shutdown(upstream, SHUT_WR);
      } else {
        if (!marker_sent && lose_left_.load() > 0) {
          std::string marker;
          {
            std::lock_guard<std::mutex> lock(mu_);
            marker = lose_marker_;
          }
          recent.append(buf, static_cast<size_t>(n));
          if (!marker.empty() && recent.find(marker) != std::string::npos) marker_sent = true;
          if (recent.size() > marker.size()) recent.erase(0, recent.size() - marker.size());
        }
        if (!WriteAll(upstream, buf, static_cast<size_t>(n))) break;
      }
    }
    if (upstream_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::recv(upstream, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        upstream_open = false;
        ::shutdown(client, SHUT_WR);
        if (!client_open) break;
        continue;
      }
      if (marker_sent && lose_left_.fetch_sub(1) > 0) {
        // The server answered the marked request, so it did the work: the client never hears it.
        ++lost_replies_;
        break;
      }
      size_t forward = static_cast<size_t>(n);
      bool cut = false;
      if (plan.mode == Mode::kCutShort && relayed_back + forward >= plan.cut_after) {
        forward = plan.cut_after - relayed_back;
        cut = true;
      }
      if (!WriteAll(client, buf, forward)) break;
      relayed_back += forward;
      if (cut) break;  // a FIN after a partial response: the client sees it end early
    }
  }
  ::close(upstream);
  ::close(client);
}

void FaultProxy::Answer503(int client, const std::string& s3_code) {
  // Read the request's head and its body, so closing afterwards does not reset the connection under the
  // client's feet (unread data at close turns a FIN into an RST) before it read the answer.
  RequestCounter counter;
  char buf[16384];
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!stopping_ && std::chrono::steady_clock::now() < give_up) {
    pollfd p{client, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(kPollSlice.count()));
    if (ready <= 0) continue;
    if (ReadCounting(client, buf, sizeof buf, counter) <= 0) break;
    if (counter.completed > 0 && counter.body_left == 0) break;
  }
  const std::string message =
      s3_code == "SlowDown" ? "Please reduce your request rate." : "Service Unavailable";
  const std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + s3_code +
                           "</Code><Message>" + message +
                           "</Message><RequestId>FAULTPROXY</RequestId></Error>";
  const std::string response =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  // Counted before the answer goes out: the client may read it, and the test look at the count, before this
  // thread runs again (seen under a loaded machine as one 503 counted of two answered). Uncounted if it never
  // went out.
  ++answered_503_;
  if (WriteAll(client, response.data(), response.size())) {
    ::shutdown(client, SHUT_WR);
    DiscardUntilClosed(client, std::chrono::seconds(2));
  } else {
    --answered_503_;
  }
  ::close(client);
}

void FaultProxy::DiscardUntilClosed(int client, std::chrono::milliseconds limit) {
  RequestCounter counter;
  char buf[16384];
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!stopping_ && std::chrono::steady_clock::now() < until) {
    pollfd p{client, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(kPollSlice.count()));
    if (ready < 0 && errno != EINTR) return;
    if (ready <= 0) continue;
    if (ReadCounting(client, buf, sizeof buf, counter) <= 0) return;
  }
}

}  // namespace rocky_test
