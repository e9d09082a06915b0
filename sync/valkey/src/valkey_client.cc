#include "rocky/sync/valkey_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "rocky/config/config.h"
#include "rocky/dynload/dynload.h"
#include "rocky/sync/transfer_stop.h"

namespace rocky::sync {

namespace {

std::chrono::milliseconds Remaining(Deadline deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
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

// OpenSSL writes with write(2) (in SSL_write, and in SSL_read, SSL_connect and SSL_shutdown too: alerts,
// close_notify), which raises SIGPIPE once the server has gone. A library must not kill its process for that
// (the CLI ignores SIGPIPE, other callers may not), so while an `active` guard lives SIGPIPE is blocked in
// this thread and one raised meanwhile is taken back; the write itself fails with EPIPE.
class SigpipeGuard {
 public:
  explicit SigpipeGuard(bool active) : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (!active_) return;
    const timespec now{};
    if (!was_pending_) {
      while (sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  const bool active_;
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

// One step of moving bytes on the connection: `bytes` moved, or none and `wait` (POLLIN, POLLOUT) to poll for
// before trying again, or none and no wait: the server closed the connection (`error` empty) or it broke.
struct IoStep {
  size_t bytes = 0;
  short wait = 0;
  std::string error;
};

}  // namespace

// The socket (non-blocking: every wait is a poll with a deadline), the TLS session over it for rediss://, and
// the parser of the replies read from it.
struct ValkeyClient::Connection {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;  // null for plaintext
  redisReader* reader = nullptr;
  // False once anything failed on it: OpenSSL forbids SSL_shutdown after a fatal error, and a close_notify
  // behind a half-sent command or an unread reply means nothing.
  bool healthy = true;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (ssl != nullptr) {
      if (healthy && SSL_is_init_finished(ssl)) {
        SigpipeGuard guard(true);
        SSL_shutdown(ssl);  // best effort close_notify: the socket does not wait
      }
      SSL_free(ssl);
    }
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (reader != nullptr) redisReaderFree(reader);
    if (fd >= 0) ::close(fd);
  }

  IoStep Write(const char* data, size_t size) {
    IoStep step;
    if (ssl == nullptr) {
      const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n > 0) {
        step.bytes = static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        step.wait = POLLOUT;
      } else {
        step.error = std::strerror(n < 0 ? errno : EPIPE);
      }
      return step;
    }
    ERR_clear_error();
    const int n = SSL_write(ssl, data, static_cast<int>(std::min<size_t>(size, 1 << 30)));
    return n > 0 ? IoStep{static_cast<size_t>(n), 0, ""} : TlsStep(n);
  }

  IoStep Read(char* buf, size_t size) {
    IoStep step;
    if (ssl == nullptr) {
      const ssize_t n = ::recv(fd, buf, size, 0);
      if (n > 0) {
        step.bytes = static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        step.wait = POLLIN;
      } else if (n < 0) {
        step.error = std::strerror(errno);
      }
      return step;
    }
    ERR_clear_error();
    const int n = SSL_read(ssl, buf, static_cast<int>(std::min<size_t>(size, 1 << 30)));
    return n > 0 ? IoStep{static_cast<size_t>(n), 0, ""} : TlsStep(n);
  }

 private:
  // What a failed SSL_read or SSL_write (returning `rc`) means.
  IoStep TlsStep(int rc) {
    IoStep step;
    const int saved_errno = errno;
    const int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
      step.wait = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      step.wait = POLLOUT;
    } else {
      // The server's close_notify (ZERO_RETURN), or a close without one: the connection ended (error empty).
      const bool closed = err == SSL_ERROR_ZERO_RETURN ||
                          ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
      step.error = OpenSslError();
      if (closed) {
        step.error.clear();
      } else if (step.error.empty()) {
        step.error = saved_errno != 0 ? std::strerror(saved_errno) : "the server closed the connection";
      }
    }
    return step;
  }
};

ValkeyReplyView::Type ValkeyReplyView::type() const {
  switch (reply_->type) {
    case REDIS_REPLY_STRING: return Type::kString;
    case REDIS_REPLY_ARRAY: return Type::kArray;
    case REDIS_REPLY_INTEGER: return Type::kInteger;
    case REDIS_REPLY_STATUS: return Type::kStatus;
    case REDIS_REPLY_ERROR: return Type::kError;
    default: return Type::kNil;
  }
}

std::string_view ValkeyReplyView::str() const {
  switch (reply_->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string_view(reply_->str, reply_->len);
    default: return {};
  }
}

long long ValkeyReplyView::integer() const {
  return reply_->type == REDIS_REPLY_INTEGER ? reply_->integer : 0;
}

size_t ValkeyReplyView::size() const { return reply_->type == REDIS_REPLY_ARRAY ? reply_->elements : 0; }

ValkeyReplyView ValkeyReplyView::operator[](size_t i) const { return ValkeyReplyView(reply_->element[i]); }

ValkeyReply::ValkeyReply(redisReply* reply) : ValkeyReplyView(reply), owned_(reply) {}

ValkeyReply::~ValkeyReply() {
  if (owned_ != nullptr) freeReplyObject(owned_);
}

ValkeyReply::ValkeyReply(ValkeyReply&& other) noexcept : ValkeyReplyView(other), owned_(other.owned_) {
  other.owned_ = nullptr;
}

ValkeyClient::ValkeyClient(ValkeyClientOptions options)
    : options_(std::move(options)), what_("Valkey at " + options_.url.HostPort()) {}

ValkeyClient::~ValkeyClient() { Disconnect(); }

void ValkeyClient::Disconnect() { conn_.reset(); }

Result<int> ValkeyClient::ConnectTcp(Deadline deadline) {
  const ValkeyUrl& url = options_.url;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  // The system resolver has its own timeouts (resolv.conf); getaddrinfo cannot be given ours.
  int rc = ::getaddrinfo(url.host.c_str(), std::to_string(url.port).c_str(), &hints, &addresses);
  if (rc != 0) {
    return Status::IOError(what_ + ": cannot resolve host name '" + url.host + "': " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  bool refused = false;
  int result = -1;
  for (addrinfo* a = addresses; a != nullptr && result < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        auto wait = std::min(Remaining(deadline), options_.connect_timeout);
        const int stop_fd = options_.stoppable ? TransferStopFd() : -1;
        pollfd p[2] = {{fd, POLLOUT, 0}, {stop_fd, POLLIN, 0}};
        int ready = wait.count() > 0 ? ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(wait.count())) : 0;
        if (options_.stoppable && TransferStopRequested()) {
          ::close(fd);
          ::freeaddrinfo(addresses);
          return Status::IOError(what_ + ": interrupted (Ctrl-C or SIGTERM) while connecting");
        }
        if (ready == 0) {
          ::close(fd);
          ::freeaddrinfo(addresses);
          return Status::TimedOut(what_ + ": connecting timed out after " + std::to_string(wait.count()) +
                                  " ms");
        }
        socklen_t len = sizeof err;
        if (ready < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err != 0) {
      refused = refused || err == ECONNREFUSED;
      last_error = std::strerror(err);
      ::close(fd);
      continue;
    }
    result = fd;
  }
  ::freeaddrinfo(addresses);
  if (result < 0) {
    return Status::IOError(what_ + (refused
                                        ? ": connection refused (is the server up, and is the port right?)"
                                        : ": cannot connect: " + last_error));
  }
  // Left non-blocking: every read and write that cannot proceed waits in WaitFor.
  int one = 1;
  ::setsockopt(result, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return result;
}

Status ValkeyClient::Connect(Deadline deadline) {
  if (conn_ != nullptr) return Status::OK();
  SigpipeGuard guard(options_.url.tls);
  const Deadline connect_deadline =
      std::min(deadline, std::chrono::steady_clock::now() + options_.connect_timeout);
  if (Remaining(connect_deadline).count() <= 0) {
    return Status::TimedOut(what_ + ": no time left to connect before the transfer's deadline");
  }
  auto tcp = ConnectTcp(connect_deadline);
  if (!tcp.ok()) return tcp.status();
  conn_ = std::make_unique<Connection>();
  conn_->fd = *tcp;
  conn_->reader = redisReaderCreate();
  Status s = conn_->reader == nullptr ? Status::IOError(what_ + ": out of memory creating the connection")
                                      : (options_.url.tls ? StartTls(connect_deadline) : Status::OK());
  if (s.ok()) s = Login(connect_deadline);
  if (!s.ok() && conn_ != nullptr) {
    conn_->healthy = false;
    Disconnect();
  }
  return s;
}

Status ValkeyClient::StartTls(Deadline deadline) {
  const std::string& host = options_.url.host;
  const std::string& ca_file = options_.ca_file;
  ROCKY_RETURN_IF_ERROR(dynload::Require(dynload::Library::kSsl).WithContext(what_));
  ERR_clear_error();
  conn_->ctx = SSL_CTX_new(TLS_client_method());
  if (conn_->ctx == nullptr)
    return Status::IOError(what_ + ": cannot create a TLS context: " + OpenSslError());
  SSL_CTX_set_min_proto_version(conn_->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(conn_->ctx, SSL_VERIFY_PEER, nullptr);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(conn_->ctx, ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument(what_ + ": cannot load the CA file " + ca_file +
                                     " (valkey_ca_file): " + OpenSslError());
    }
  } else if (SSL_CTX_set_default_verify_paths(conn_->ctx) != 1) {
    return Status::IOError(what_ + ": cannot load the system's trusted CAs: " + OpenSslError());
  }
  SSL* ssl = conn_->ssl = SSL_new(conn_->ctx);
  if (ssl == nullptr) return Status::IOError(what_ + ": cannot create a TLS connection: " + OpenSslError());
  // Send writes whatever part of a value one TLS record takes, and tries again with the rest.
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (IsIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI: only for names, never for addresses (RFC 6066)
  }
  if (SSL_set_fd(ssl, conn_->fd) != 1) {
    return Status::IOError(what_ + ": cannot set up the TLS socket: " + OpenSslError());
  }
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl);
    if (rc == 1) return Status::OK();
    const int err = SSL_get_error(ssl, rc);
    const int saved_errno = errno;
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      const long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        return Status::PermissionDenied(
            what_ + ": TLS certificate verification failed: " + X509_verify_cert_error_string(verify) +
            (ca_file.empty() ? " (checked against the system's trusted CAs; set valkey_ca_file to the CA "
                               "that signed the server's certificate)"
                             : " (checked against " + ca_file + ")"));
      }
      std::string detail = OpenSslError();
      if (detail.empty()) {
        detail = err == SSL_ERROR_SYSCALL && saved_errno != 0 ? std::strerror(saved_errno)
                                                              : "the server closed the connection";
      }
      return Status::IOError(what_ + ": TLS handshake failed (is the server's TLS port right?): " + detail);
    }
    Status ready = WaitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    if (ready.code() == Status::Code::kTimedOut) {
      return Status::TimedOut(what_ + ": the TLS handshake did not finish within the timeout");
    }
    ROCKY_RETURN_IF_ERROR(ready);
  }
}

Status ValkeyClient::Login(Deadline deadline) {
  const ValkeyUrl& url = options_.url;
  if (url.has_password) {
    std::vector<std::string_view> args = {"AUTH"};
    if (!url.user.empty()) args.push_back(url.user);
    args.push_back(url.password);
    auto reply = Command(args, deadline);
    if (!reply.ok()) {
      const Status& s = reply.status();
      if (s.code() != Status::Code::kPermissionDenied) return s;
      // The server's words ("invalid username-password pair") plus which login was refused: never the
      // password.
      return Status::PermissionDenied(
          what_ + ": the password was refused for " +
          (url.user.empty() ? std::string("the default user") : "user '" + url.user + "'") +
          ": check the password in valkey_url (" +
          s.message().substr(std::min(s.message().size(), what_.size() + 2)) + ")");
    }
  }
  if (url.db != 0) {
    const std::string db = std::to_string(url.db);
    auto reply = Command({"SELECT", db}, deadline);
    if (!reply.ok()) {
      if (reply.status().code() == Status::Code::kInvalidArgument) {
        return Status::NotFound(what_ + ": database " + db + " does not exist on the server (" +
                                reply.status().message() + ")");
      }
      return reply.status();
    }
  }
  return Status::OK();
}

Status ValkeyClient::ReplyError(std::string_view raw) const {
  // A server's words may echo what it was sent (Redis: "unknown command 'AUTH', with args beginning with:
  // 'password'"): redacted before anything else sees them, with the password this client knows.
  std::vector<std::string> secrets;
  if (options_.url.has_password && !options_.url.password.empty()) secrets.push_back(options_.url.password);
  const std::string text = config::Redact(raw, secrets);
  const std::string message = what_ + ": " + text;
  if (StartsWith(text, "WRONGPASS") || StartsWith(text, "NOPERM") ||
      StartsWith(text, "ERR invalid password") || StartsWith(text, "ERR invalid username-password")) {
    return Status::PermissionDenied(message);
  }
  if (StartsWith(text, "NOAUTH")) {
    return Status::PermissionDenied(message +
                                    " (the server needs a password: redis://:PASSWORD@host in valkey_url)");
  }
  // Transient states of the server: worth a retry.
  if (StartsWith(text, "LOADING") || StartsWith(text, "BUSY") || StartsWith(text, "TRYAGAIN") ||
      StartsWith(text, "MASTERDOWN") || StartsWith(text, "CLUSTERDOWN")) {
    return Status::IOError(message);
  }
  return Status::InvalidArgument(message);
}

Status ValkeyClient::WaitFor(short events, Deadline deadline) {
  const int stop_fd = options_.stoppable ? TransferStopFd() : -1;
  const auto slice_start = std::chrono::steady_clock::now();  // command_timeout counts from here
  for (;;) {
    if (options_.stoppable && TransferStopRequested()) {
      return Status::IOError(what_ + ": interrupted (Ctrl-C or SIGTERM) while waiting for the server");
    }
    if (options_.cancel != nullptr && options_.cancel->load()) {
      return Status::IOError(what_ + ": canceled while waiting for the server");
    }
    auto wait = std::min(options_.command_timeout, Remaining(deadline));
    // A cancel flag has no descriptor to poll: look at it every 50 ms.
    if (options_.cancel != nullptr) wait = std::min(wait, std::chrono::milliseconds(50));
    if (wait.count() <= 0) {
      return Remaining(deadline).count() <= 0
                 ? Status::TimedOut(what_ + ": the transfer's deadline passed")
                 : Status::TimedOut(what_ + ": no reply within the command timeout");
    }
    pollfd fds[2] = {{conn_->fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int ready = ::poll(fds, stop_fd >= 0 ? 2 : 1, static_cast<int>(wait.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;  // a signal: look at the stop request again
      return Status::IOError(what_ + ": poll: " + std::strerror(errno));
    }
    if (ready == 0) {
      if (options_.cancel != nullptr && Remaining(deadline).count() > 0 &&
          std::chrono::steady_clock::now() < slice_start + options_.command_timeout) {
        continue;  // only the 50 ms slice ran out
      }
      return Remaining(deadline).count() <= 0
                 ? Status::TimedOut(what_ + ": the transfer's deadline passed")
                 : Status::TimedOut(what_ + ": no reply within the command timeout");
    }
    if (fds[0].revents != 0)
      return Status::OK();  // ready, or an error/hang-up the next read or write reports
  }
}

Status ValkeyClient::Send(std::string_view bytes, Deadline deadline) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    IoStep step = conn_->Write(bytes.data() + sent, bytes.size() - sent);
    sent += step.bytes;
    if (step.bytes > 0) continue;
    if (step.wait == 0) {
      return Status::IOError(what_ + ": connection lost: " +
                             (step.error.empty() ? "the server closed the connection" : step.error));
    }
    ROCKY_RETURN_IF_ERROR(WaitFor(step.wait, deadline));
  }
  return Status::OK();
}

Result<ValkeyReply> ValkeyClient::Receive(Deadline deadline) {
  redisReader* reader = conn_->reader;
  char buf[64 * 1024];
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
      return Status::IOError(what_ + ": not a Valkey reply (protocol error: " + reader->errstr + ")");
    }
    if (raw != nullptr) return ValkeyReply(static_cast<redisReply*>(raw));
    // The reader keeps the unparsed rest of the reply, a value in the making: bounded before reading more.
    if (reader->len - reader->pos > options_.max_reply_bytes) {
      return Status::InvalidArgument(what_ + ": a reply above " + std::to_string(options_.max_reply_bytes) +
                                     " bytes, more than the largest value Valkey stores; not read further");
    }
    IoStep step = conn_->Read(buf, sizeof buf);
    if (step.bytes > 0) {
      if (redisReaderFeed(reader, buf, step.bytes) != REDIS_OK) {
        return Status::IOError(what_ + ": out of memory reading the reply");
      }
      continue;
    }
    if (step.wait == 0) {
      return Status::IOError(what_ + ": connection lost: " +
                             (step.error.empty() ? "the server closed the connection" : step.error));
    }
    ROCKY_RETURN_IF_ERROR(WaitFor(step.wait, deadline));
  }
}

Result<ValkeyReply> ValkeyClient::Command(const std::vector<std::string_view>& args, Deadline deadline) {
  if (options_.stoppable && TransferStopRequested()) {
    return Status::IOError(what_ + ": interrupted (Ctrl-C or SIGTERM) before the command was sent");
  }
  if (options_.cancel != nullptr && options_.cancel->load()) {
    return Status::IOError(what_ + ": canceled before the command was sent");
  }
  SigpipeGuard guard(options_.url.tls);
  ROCKY_RETURN_IF_ERROR(Connect(deadline));
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  // The whole command in RESP, a copy of every argument (hiredis formats nothing in place).
  char* command = nullptr;
  const int length =
      redisFormatCommandArgv(&command, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length < 0) {
    Disconnect();
    return Status::IOError(what_ + ": out of memory formatting the command");
  }
  Status sent = Send(std::string_view(command, static_cast<size_t>(length)), deadline);
  redisFreeCommand(command);
  auto reply = sent.ok() ? Receive(deadline) : Result<ValkeyReply>(sent);
  // Any failure but an error reply leaves the connection in an unknown state: dropped, the next command
  // connects afresh.
  if (!reply.ok()) {
    conn_->healthy = false;
    Disconnect();
    return reply.status();
  }
  if (reply->type() == ValkeyReplyView::Type::kError) return ReplyError(reply->str());
  return reply;
}

}  // namespace rocky::sync
