// valkey_url of rocky.toml: where the Valkey (or Redis) server holding the state is, and how to log in.
//
//   redis://[[user]:password@]host[:port][/db]     plaintext
//   valkey://...                                    the same
//   rediss://... and valkeys://...                  TLS (verified: valkey_client.h)
//
// The host may be a name, an IPv4 address or an IPv6 address in brackets ("redis://[::1]:6380"); the port
// defaults to 6379 and the database to 0. The user name and password are percent-decoded, so a password
// holding
// ':' '@' or '/' is written %3A %40 %2F. No user name means Valkey's default user (AUTH <password>).
#pragma once

#include <string>
#include <string_view>

#include "rocky/base/status.h"

namespace rocky::sync {

using base::Result;

inline constexpr int kValkeyDefaultPort = 6379;

struct ValkeyUrl {
  bool tls = false;
  std::string user;      // decoded; empty: the default user
  std::string password;  // decoded; empty with has_password false: no AUTH. A secret: never print it
  bool has_password = false;
  std::string host;  // without brackets
  int port = kValkeyDefaultPort;
  int db = 0;
  // The URL as written with its secrets replaced by "***" (config::RedactUrl: the password, a userinfo
  // without ':', any query value): the only form that may appear
  // in a message, a log line or JSON.
  std::string redacted;

  // "host:port", "[::1]:port" for IPv6: for messages.
  std::string HostPort() const;
};

// kInvalidArgument naming what is wrong and showing the URL redacted (never the password, even a malformed
// one: the message is built from the redacted form and the parts before the password only).
Result<ValkeyUrl> ParseValkeyUrl(std::string_view url);

}  // namespace rocky::sync
