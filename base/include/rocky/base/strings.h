// Small text helpers every layer uses for messages and wire formats. One copy each, here, so that a fix (or a
// change of quoting style) lands everywhere at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rocky::base {

// 'text': how messages name a value the user gave (a key, a table, a flag). No escaping: messages are for
// people; callers that may hold control characters or secrets clean the text first.
std::string Quoted(std::string_view text);

// Lowercase hex of each byte ("\x0a\xff" -> "0aff").
std::string Hex(std::string_view bytes);
std::string Hex(const unsigned char* data, size_t size);

// ASCII lowercase (A-Z only; other bytes, UTF-8 included, pass unchanged, so no locale is consulted).
std::string Lower(std::string_view text);

// Without leading and trailing ASCII white space (space, \t, \r, \n, \v, \f).
std::string_view Trim(std::string_view text);

// `bytes` random bytes from the kernel's generator (getrandom), as 2*bytes hex digits: unique names for
// probes, temporary keys and owners, not secrets.
std::string RandomHex(size_t bytes);

}  // namespace rocky::base
