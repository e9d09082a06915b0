// TLS for hiredis 0.14, which has none of its own: hiredis speaks plaintext over one end of a socket pair
// (redisConnectFd), and a pump thread moves the bytes between the other end and an OpenSSL connection to the
// server. Internal to the Valkey client (valkey_client.cc).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "rocky/base/status.h"
#include "rocky/sync/remote_state.h"

namespace rocky::sync {

class TlsTunnel {
 public:
  // Takes ownership of `tcp_fd` (connected to the server) and completes the TLS handshake on it by
  // `deadline`, verifying the server's certificate against `ca_file` (PEM; empty: the system's store) and its
  // name or IP address against `host`. Then starts the pump. Errors (`what` prefixes them: "Valkey at
  // host:port"):
  //   kInvalidArgument  the CA file cannot be read
  //   kPermissionDenied the certificate is not trusted or does not name `host` (retrying cannot help)
  //   kTimedOut         the handshake did not finish by the deadline
  //   kIOError          any other handshake failure (reset, a server that does not speak TLS)
  // On error `tcp_fd` is closed. `stoppable`: whether a stop request (transfer_stop.h) ends the handshake.
  static Result<std::unique_ptr<TlsTunnel>> Open(int tcp_fd, const std::string& host,
                                                 const std::string& ca_file, Deadline deadline,
                                                 const std::string& what, bool stoppable = true);

  // Stops the pump and closes everything it owns (not the fd TakePlaintextFd handed out).
  ~TlsTunnel();
  TlsTunnel(const TlsTunnel&) = delete;
  TlsTunnel& operator=(const TlsTunnel&) = delete;

  // The plaintext end for redisConnectFd; the caller owns it from then on (hiredis closes it in redisFree).
  // Closing it ends the tunnel: the pump sends close_notify and stops. Call once.
  int TakePlaintextFd();

 private:
  TlsTunnel() = default;
  // The pump's loop: the only user of ssl_ once the handshake is done.
  void Pump();

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int tcp_fd_ = -1;
  int pump_fd_ = -1;       // the pump's end of the socket pair
  int plaintext_fd_ = -1;  // hiredis's end, until taken
  int stop_fd_ = -1;       // an eventfd the destructor signals
  std::thread pump_;
};

}  // namespace rocky::sync
