#include "tls_tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "rocky/sync/transfer_stop.h"

namespace rocky::sync {

namespace {

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// The oldest queued OpenSSL error, for a message ("" when the queue is empty), then clears the queue.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

int RemainingMs(Deadline deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

}  // namespace

Result<std::unique_ptr<TlsTunnel>> TlsTunnel::Open(int tcp_fd, const std::string& host,
                                                   const std::string& ca_file, Deadline deadline,
                                                   const std::string& what, bool stoppable) {
  // The destructor frees whatever was set up when we return early.
  std::unique_ptr<TlsTunnel> tunnel(new TlsTunnel());
  tunnel->tcp_fd_ = tcp_fd;
  ERR_clear_error();
  tunnel->ctx_ = SSL_CTX_new(TLS_client_method());
  if (tunnel->ctx_ == nullptr)
    return Status::IOError(what + ": cannot create a TLS context: " + OpenSslError());
  SSL_CTX_set_min_proto_version(tunnel->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(tunnel->ctx_, SSL_VERIFY_PEER, nullptr);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(tunnel->ctx_, ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument(what + ": cannot load the CA file " + ca_file +
                                     " (valkey_ca_file): " + OpenSslError());
    }
  } else if (SSL_CTX_set_default_verify_paths(tunnel->ctx_) != 1) {
    return Status::IOError(what + ": cannot load the system's trusted CAs: " + OpenSslError());
  }

  SSL* ssl = SSL_new(tunnel->ctx_);
  if (ssl == nullptr) return Status::IOError(what + ": cannot create a TLS connection: " + OpenSslError());
  tunnel->ssl_ = ssl;
  // The pump writes whatever part of its buffer SSL accepts and retries from a moved buffer.
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI: only for names, never for addresses (RFC 6066)
  }
  if (!SetNonBlocking(tcp_fd) || SSL_set_fd(ssl, tcp_fd) != 1) {
    return Status::IOError(what + ": cannot set up the TLS socket: " + std::strerror(errno));
  }

  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(ssl);
    if (rc == 1) break;
    int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      int wait = RemainingMs(deadline);
      if (wait == 0) return Status::TimedOut(what + ": the TLS handshake did not finish within the timeout");
      if (stoppable && TransferStopRequested()) {
        return Status::IOError(what + ": interrupted (Ctrl-C or SIGTERM) during the TLS handshake");
      }
      // The stop pipe beside the socket: Ctrl-C ends the handshake's wait at once.
      const int stop_fd = stoppable ? TransferStopFd() : -1;
      pollfd p[2] = {{tcp_fd, static_cast<short>(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0},
                     {stop_fd, POLLIN, 0}};
      if (::poll(p, stop_fd >= 0 ? 2 : 1, wait) < 0 && errno != EINTR) {
        return Status::IOError(what + ": TLS handshake: poll: " + std::strerror(errno));
      }
      continue;
    }
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      return Status::PermissionDenied(
          what + ": TLS certificate verification failed: " + X509_verify_cert_error_string(verify) +
          (ca_file.empty() ? " (checked against the system's trusted CAs; set "
                             "valkey_ca_file to the CA that signed the server's "
                             "certificate)"
                           : " (checked against " + ca_file + ")"));
    }
    int saved_errno = errno;
    std::string detail = OpenSslError();
    if (detail.empty()) {
      detail = err == SSL_ERROR_SYSCALL && saved_errno != 0 ? std::strerror(saved_errno)
                                                            : "the server closed the connection";
    }
    return Status::IOError(what + ": TLS handshake failed (is the server's TLS port right?): " + detail);
  }

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return Status::IOError(what + ": socketpair: " + std::strerror(errno));
  }
  tunnel->pump_fd_ = pair[0];
  tunnel->plaintext_fd_ = pair[1];
  tunnel->stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (tunnel->stop_fd_ < 0 || !SetNonBlocking(tunnel->pump_fd_)) {
    return Status::IOError(what + ": setting up the TLS pump: " + std::strerror(errno));
  }
  tunnel->pump_ = std::thread([t = tunnel.get()] { t->Pump(); });
  return tunnel;
}

TlsTunnel::~TlsTunnel() {
  if (pump_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = ::write(stop_fd_, &one, sizeof one);
    (void)ignored;
    pump_.join();
  }
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  for (int fd : {tcp_fd_, pump_fd_, plaintext_fd_, stop_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

int TlsTunnel::TakePlaintextFd() {
  int fd = plaintext_fd_;
  plaintext_fd_ = -1;
  return fd;
}

void TlsTunnel::Pump() {
  // One buffer each way, refilled only once drained, so memory stays at two chunks whatever the value's size.
  static constexpr size_t kChunk = 64 * 1024;
  std::string to_server, to_client;
  size_t to_server_done = 0, to_client_done = 0;
  char buf[kChunk];

  for (;;) {
    bool progress = false;
    short tcp_events = 0, local_events = 0;

    // Server -> hiredis.
    if (to_client_done == to_client.size()) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        to_client.assign(buf, static_cast<size_t>(n));
        to_client_done = 0;
        progress = true;
      } else {
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_READ) {
          tcp_events |= POLLIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
          tcp_events |= POLLOUT;
        } else {
          break;  // the server closed the connection, or it broke: hiredis sees EOF and reports it
        }
      }
    }
    if (to_client_done < to_client.size()) {
      ssize_t n = ::write(pump_fd_, to_client.data() + to_client_done, to_client.size() - to_client_done);
      if (n > 0) {
        to_client_done += static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        local_events |= POLLOUT;
      } else {
        break;  // hiredis's end is closed: nobody is listening any more
      }
    }

    // hiredis -> server.
    if (to_server_done == to_server.size()) {
      ssize_t n = ::read(pump_fd_, buf, sizeof buf);
      if (n > 0) {
        to_server.assign(buf, static_cast<size_t>(n));
        to_server_done = 0;
        progress = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        local_events |= POLLIN;
      } else {
        break;  // hiredis closed its end (redisFree): the connection is over
      }
    }
    if (to_server_done < to_server.size()) {
      ERR_clear_error();
      int n = SSL_write(ssl_, to_server.data() + to_server_done,
                        static_cast<int>(to_server.size() - to_server_done));
      if (n > 0) {
        to_server_done += static_cast<size_t>(n);
        progress = true;
      } else {
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_READ) {
          tcp_events |= POLLIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
          tcp_events |= POLLOUT;
        } else {
          break;
        }
      }
    }
    if (progress) continue;

    pollfd fds[3] = {{tcp_fd_, tcp_events, 0}, {pump_fd_, local_events, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) break;
    // Hang-ups are reported whatever was asked for; without this check a closed end would make poll return at
    // once, forever, while the other side waits.
    if ((fds[0].revents & (POLLHUP | POLLERR)) != 0 || (fds[1].revents & (POLLHUP | POLLERR)) != 0) break;
  }
  // Best effort: tell the server we are done, then make hiredis see EOF (if it is still there).
  SSL_shutdown(ssl_);
  ::shutdown(pump_fd_, SHUT_RDWR);
}

}  // namespace rocky::sync
