#include "rocky/sync/valkey_url.h"

#include <charconv>

#include "rocky/base/strings.h"
#include "rocky/config/config.h"

namespace rocky::sync {

using base::Lower;

namespace {

using base::Status;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// False on a malformed %XX escape; `out` is then unspecified.
bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    int hi = i + 1 < in.size() ? HexDigit(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? HexDigit(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

// A decimal in [min, max], digits only (no sign, no spaces).
bool ParseNumber(std::string_view text, int min, int max, int* out) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value < min || value > max) return false;
  *out = value;
  return true;
}

}  // namespace

std::string ValkeyUrl::HostPort() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<ValkeyUrl> ParseValkeyUrl(std::string_view url) {
  ValkeyUrl out;
  out.redacted = config::RedactUrl(url);  // password, a userinfo without ':', any query value
  auto invalid = [&](const std::string& why) {
    return Status::InvalidArgument("invalid Valkey URL '" + out.redacted + "': " + why);
  };

  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return invalid("expected redis://, rediss://, valkey:// or valkeys:// followed by the host");
  }
  const std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme == "redis" || scheme == "valkey") {
    out.tls = false;
  } else if (scheme == "rediss" || scheme == "valkeys") {
    out.tls = true;
  } else {
    return invalid("unknown scheme '" + scheme + "' (use redis://, rediss://, valkey:// or valkeys://)");
  }
  std::string_view rest = url.substr(scheme_end + 3);

  // The userinfo runs to the LAST '@', as RedactUrl reads it, so what we parse is exactly what it hides.
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return invalid("a user name or password without ':' before '@' (it is not shown): write " + scheme +
                     "://:PASSWORD@host for the default user, or " + scheme + "://USER:PASSWORD@host");
    }
    if (!PercentDecode(userinfo.substr(0, colon), &out.user)) {
      return invalid("a malformed %-escape in the user name");
    }
    // Never quote the password or its position: only say that it is malformed.
    if (!PercentDecode(userinfo.substr(colon + 1), &out.password)) {
      return invalid("a malformed %-escape in the password (write '%' as %25)");
    }
    out.has_password = true;
  }

  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid("an IPv6 address without its closing ']'");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (out.host.empty()) return invalid("no host");
  if (has_port && !ParseNumber(port_text, 1, 65535, &out.port)) {
    return invalid("the port must be a number from 1 to 65535, got '" + std::string(port_text) + "'");
  }

  if (path.find_first_of("?#") != std::string_view::npos) {
    return invalid("query strings and fragments are not supported; the only path is /DB (a database number)");
  }
  if (path.size() > 1) {
    std::string_view db = path.substr(1);
    if (!ParseNumber(db, 0, 1 << 30, &out.db)) {
      return invalid("the path must be /DB, a database number, got '" + std::string(path) + "'");
    }
  }
  return out;
}

}  // namespace rocky::sync
