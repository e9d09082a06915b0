// A small synchronous Valkey (Redis-protocol) client: connect (plaintext, or TLS with OpenSSL: Debian's
// hiredis 0.14 has none), AUTH, SELECT, then one command at a time, encoded and parsed by hiredis's protocol
// functions (redisFormatCommandArgv, redisReader) over our own non-blocking socket, every wait a poll with a
// deadline. What the Valkey state backend needs, nothing more.
//
// Errors follow the retry contract of remote_state.h, each naming the server ("Valkey at host:port") and
// never the password:
//   kIOError           the host name does not resolve, connection refused, the connection was lost
//   kTimedOut          connect, handshake or a reply did not come within its timeout (or the Deadline)
//   kPermissionDenied  WRONGPASS / NOAUTH / NOPERM, or the server's TLS certificate is not trusted
//   kNotFound          the database number does not exist on the server
//   kInvalidArgument   any other error reply (a bad command or argument, WRONGTYPE), or a reply above
//                      max_reply_bytes
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rocky/base/status.h"
#include "rocky/sync/remote_state.h"
#include "rocky/sync/valkey_url.h"

struct redisReply;

namespace rocky::sync {

// A read-only view of one reply (or one element of an array reply); valid while the ValkeyReply it came from
// lives.
class ValkeyReplyView {
 public:
  enum class Type : unsigned char { kString, kArray, kInteger, kNil, kStatus, kError };

  explicit ValkeyReplyView(const redisReply* reply) : reply_(reply) {}

  Type type() const;
  bool is_nil() const { return type() == Type::kNil; }
  // The bytes of a string, status or error reply (binary safe); empty for the others.
  std::string_view str() const;
  long long integer() const;                   // 0 unless an integer reply
  size_t size() const;                         // elements of an array reply; 0 for the others
  ValkeyReplyView operator[](size_t i) const;  // requires i < size()

 private:
  const redisReply* reply_;
};

// An owned reply. Movable, not copyable (a value may be hundreds of megabytes).
class ValkeyReply : public ValkeyReplyView {
 public:
  explicit ValkeyReply(redisReply* reply);
  ~ValkeyReply();
  ValkeyReply(ValkeyReply&& other) noexcept;
  ValkeyReply& operator=(ValkeyReply&&) = delete;
  ValkeyReply(const ValkeyReply&) = delete;
  ValkeyReply& operator=(const ValkeyReply&) = delete;

 private:
  redisReply* owned_;
};

struct ValkeyClientOptions {
  ValkeyUrl url;
  std::string ca_file;  // PEM CAs for TLS; empty: the system's store. Verification is always on.
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect + TLS handshake + AUTH + SELECT
  // Each wait for the server while sending a command or reading its reply (a stall, not the total: a 500 MB
  // value may take longer than this to move, as long as bytes keep flowing).
  std::chrono::milliseconds command_timeout{60'000};
  // Whether a stop request (Ctrl-C, SIGTERM: transfer_stop.h) ends a wait at once. Only the lease's renewals
  // and release turn it off (they must go out while a stopping command winds down, within their deadline).
  bool stoppable = true;
  // When set, a wait for the server ends (within 50 ms) once it turns true, as a failure ("canceled"): how
  // the lease's renewal thread is stopped mid-command. Not owned; must outlive the client's commands.
  const std::atomic<bool>* cancel = nullptr;
  // A reply is refused (kInvalidArgument, the connection dropped) once more than this of it is waiting to be
  // parsed, so a server cannot make the client hold more: Valkey's largest value (512 MB) and its framing.
  size_t max_reply_bytes = (size_t{512} << 20) + 1024;
};

// Not thread-safe: one caller at a time (it owns one connection, and no thread).
class ValkeyClient {
 public:
  // Does not connect: the first Command (or Connect) does.
  explicit ValkeyClient(ValkeyClientOptions options);
  ~ValkeyClient();
  ValkeyClient(const ValkeyClient&) = delete;
  ValkeyClient& operator=(const ValkeyClient&) = delete;

  // Connects, logs in and selects the database, unless already connected. Every wait is capped by what
  // remains until `deadline`.
  Status Connect(Deadline deadline);

  // Sends one command (binary-safe arguments) and reads its reply, connecting first if needed. An error reply
  // is a Status (see the codes above; the server's text is in the message, which never holds an argument).
  // Any failure other than an error reply drops the connection, so the next call starts afresh; so does a
  // kTimedOut (the reply may still arrive and would be taken for the next command's).
  Result<ValkeyReply> Command(const std::vector<std::string_view>& args, Deadline deadline);

  // Closes the connection (discarding any WATCH or MULTI state on the server). Harmless when not connected.
  void Disconnect();

  void set_stoppable(bool stoppable) { options_.stoppable = stoppable; }
  void set_cancel(const std::atomic<bool>* cancel) { options_.cancel = cancel; }

  // "Valkey at host:port", the prefix of every message.
  const std::string& what() const { return what_; }
  const ValkeyUrl& url() const { return options_.url; }

 private:
  struct Connection;  // the socket, its TLS session (rediss://) and the reply parser: valkey_client.cc

  Result<int> ConnectTcp(Deadline deadline);
  // The TLS handshake on conn_'s socket, verifying the server's certificate against ca_file (or the system's
  // store) and its name or IP address against the URL's host: kPermissionDenied when it is not trusted,
  // kInvalidArgument when the CA file cannot be read, kTimedOut at `deadline`, kIOError otherwise.
  Status StartTls(Deadline deadline);
  Status Login(Deadline deadline);
  // Waits until the connection is ready for `events` (POLLIN, POLLOUT): kTimedOut after command_timeout or at
  // the deadline, kIOError "interrupted" as soon as a stop is requested (transfer_stop.h).
  Status WaitFor(short events, Deadline deadline);
  // Writes all of `bytes`, or reads one whole reply (an error reply too): kIOError when the connection is
  // lost.
  Status Send(std::string_view bytes, Deadline deadline);
  Result<ValkeyReply> Receive(Deadline deadline);
  // `raw` is the server's error reply; the Status holds it redacted (config::Redact, with the password).
  Status ReplyError(std::string_view raw) const;

  ValkeyClientOptions options_;
  std::string what_;
  std::unique_ptr<Connection> conn_;  // null when not connected
};

}  // namespace rocky::sync
