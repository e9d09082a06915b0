#include "rocky/sync/valkey_client.h"

#include <errno.h>
#include <fcntl.h>
// hiredis's sds.h has no C++ guard of its own, and hiredis.h includes it outside its own: first, as C.
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "rocky/config/config.h"
#include "rocky/sync/transfer_stop.h"
#include "tls_tunnel.h"

namespace rocky::sync {

namespace {

std::chrono::milliseconds Remaining(Deadline deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

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

void ValkeyClient::Disconnect() {
  if (context_ != nullptr) {
    redisFree(context_);  // closes the socket (for TLS, the plaintext end: the pump then stops)
    context_ = nullptr;
  }
  tunnel_.reset();
}

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
  // hiredis reads and writes in blocking mode, bounded by socket timeouts (ArmTimeout).
  int flags = ::fcntl(result, F_GETFL, 0);
  ::fcntl(result, F_SETFL, flags & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(result, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return result;
}

Status ValkeyClient::Connect(Deadline deadline) {
  if (context_ != nullptr) return Status::OK();
  const Deadline connect_deadline =
      std::min(deadline, std::chrono::steady_clock::now() + options_.connect_timeout);
  if (Remaining(connect_deadline).count() <= 0) {
    return Status::TimedOut(what_ + ": no time left to connect before the transfer's deadline");
  }
  auto tcp = ConnectTcp(connect_deadline);
  if (!tcp.ok()) return tcp.status();
  int fd = *tcp;
  if (options_.url.tls) {
    auto tunnel =
        TlsTunnel::Open(fd, options_.url.host, options_.ca_file, connect_deadline, what_, options_.stoppable);
    if (!tunnel.ok()) return tunnel.status();
    tunnel_ = std::move(*tunnel);
    fd = tunnel_->TakePlaintextFd();
  }
  context_ = redisConnectFd(fd);
  if (context_ == nullptr) {
    ::close(fd);
    tunnel_.reset();
    return Status::IOError(what_ + ": out of memory creating the connection");
  }
  if (context_->err != 0) {
    Status s = Status::IOError(what_ + ": " + context_->errstr);
    Disconnect();
    return s;
  }
  Status login = Login(connect_deadline);
  if (!login.ok()) Disconnect();
  return login;
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

Status ValkeyClient::ArmTimeout(std::chrono::milliseconds limit, Deadline deadline) {
  auto wait = std::min(limit, Remaining(deadline));
  if (wait.count() <= 0) return Status::TimedOut(what_ + ": the transfer's deadline passed");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(wait.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((wait.count() % 1000) * 1000);
  if (redisSetTimeout(context_, tv) != REDIS_OK)
    return Status::IOError(what_ + ": cannot set the socket timeout");
  return Status::OK();
}

Status ValkeyClient::ContextError(int saved_errno) {
  std::string detail = context_->errstr;
  Status s;
  if (context_->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    s = Status::TimedOut(what_ + ": no reply within the command timeout");
  } else if (context_->err == REDIS_ERR_EOF || context_->err == REDIS_ERR_IO) {
    s = Status::IOError(what_ + ": connection lost: " + detail);
  } else if (context_->err == REDIS_ERR_OOM) {
    s = Status::IOError(what_ + ": out of memory reading the reply");
  } else {
    s = Status::IOError(what_ + ": " + detail);
  }
  return s;
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
    pollfd fds[2] = {{context_->fd, events, 0}, {stop_fd, POLLIN, 0}};
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

Result<ValkeyReply> ValkeyClient::Command(const std::vector<std::string_view>& args, Deadline deadline) {
  if (options_.stoppable && TransferStopRequested()) {
    return Status::IOError(what_ + ": interrupted (Ctrl-C or SIGTERM) before the command was sent");
  }
  if (options_.cancel != nullptr && options_.cancel->load()) {
    return Status::IOError(what_ + ": canceled before the command was sent");
  }
  ROCKY_RETURN_IF_ERROR(Connect(deadline));
  // The socket timeouts stay as a backstop; the waits below are what bound a command (and let a stop request
  // end it at once).
  Status armed = ArmTimeout(options_.command_timeout, deadline);
  if (!armed.ok()) {
    Disconnect();
    return armed;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  // hiredis formats the whole command into its output buffer: a copy of every argument. It is sent here
  // rather than by hiredis so that every wait polls the stop request too, and without hiredis's memmove of
  // the rest of the buffer after each partial write (quadratic on a value of hundreds of megabytes).
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()) !=
      REDIS_OK) {
    Status s = ContextError(errno);
    Disconnect();
    return s;
  }
  auto fail = [this](Status s) {
    Disconnect();
    return s;
  };
  const char* out = context_->obuf;
  const size_t length = sdslen(context_->obuf);
  size_t sent = 0;
  while (sent < length) {
    const ssize_t n = ::send(context_->fd, out + sent, length - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      Status ready = WaitFor(POLLOUT, deadline);
      if (!ready.ok()) return fail(ready);
      continue;
    }
    return fail(Status::IOError(what_ + ": connection lost: " + std::strerror(n < 0 ? errno : EPIPE)));
  }
  sdsfree(context_->obuf);
  context_->obuf = sdsempty();
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return fail(ContextError(errno));
    if (raw != nullptr) {
      ValkeyReply reply(static_cast<redisReply*>(raw));
      if (reply.type() == ValkeyReplyView::Type::kError) return ReplyError(reply.str());
      return reply;
    }
    Status ready = WaitFor(POLLIN, deadline);
    if (!ready.ok()) return fail(ready);
    errno = 0;
    if (redisBufferRead(context_) != REDIS_OK) return fail(ContextError(errno));
  }
}

}  // namespace rocky::sync
