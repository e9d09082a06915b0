// SigV4: the official AWS signing test suite (../shared/vectors/sigv4/, from aws-c-auth) case by case, plus
// the S3-mode rules the suite does not cover (already-encoded paths, re-signing, payload hash header).
#include "sigv4.h"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace rocky::sync;
namespace fs = std::filesystem;

namespace {

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() + 0 && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// request.txt as the suite writes it: "METHOD URI HTTP/1.1" (the URI may hold spaces and raw UTF-8), header
// lines "Name:value" (a line starting with whitespace continues the previous value, kept with its line
// break), an empty line, the body. The raw query text is kept to rebuild the request line.
struct ParsedRequest {
  HttpRequest request;
  std::string raw_query;  // without '?'; empty when none
  bool has_query = false;
};

ParsedRequest ParseRequestFile(const std::string& text) {
  ParsedRequest out;
  size_t pos = 0;
  auto next_line = [&](std::string& line) {
    if (pos > text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos = end + 1;
    return true;
  };
  std::string line;
  REQUIRE(next_line(line));
  size_t first_space = line.find(' ');
  size_t last_space = line.rfind(' ');
  REQUIRE(first_space != std::string::npos);
  REQUIRE(last_space > first_space);
  out.request.method = line.substr(0, first_space);
  std::string uri = line.substr(first_space + 1, last_space - first_space - 1);
  size_t q = uri.find('?');
  out.request.path = uri.substr(0, q);
  if (q != std::string::npos) {
    out.has_query = true;
    out.raw_query = uri.substr(q + 1);
    std::string_view rest = out.raw_query;
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      size_t eq = pair.find('=');
      std::string name = PercentDecode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
      out.request.query.emplace_back(std::move(name), std::move(value));
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  while (pos < text.size() && next_line(line)) {
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !out.request.headers.empty()) {
      out.request.headers.back().second += "\n" + line;
      continue;
    }
    size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    out.request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  if (pos < text.size()) out.request.body = text.substr(pos);
  return out;
}

// The signed request in the suite's layout, to compare with *-signed-request.txt.
std::string Serialize(const HttpRequest& request, const std::string& query_text) {
  std::string out = request.method + " " + request.path;
  if (!query_text.empty()) out += "?" + query_text;
  out += " HTTP/1.1\n";
  for (const auto& [name, value] : request.headers) out += name + ":" + value + "\n";
  out += "\n" + request.body;
  return out;
}

std::chrono::system_clock::time_point ParseTimestamp(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  REQUIRE(strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

struct Context {
  Credentials credentials;
  SigningParams params;
  std::chrono::seconds expires{0};
};

Context ParseContext(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  Context ctx;
  std::string_view s;
  REQUIRE(doc["credentials"]["access_key_id"].get(s) == simdjson::SUCCESS);
  ctx.credentials.access_key_id = s;
  REQUIRE(doc["credentials"]["secret_access_key"].get(s) == simdjson::SUCCESS);
  ctx.credentials.secret_access_key = s;
  if (doc["credentials"]["token"].get(s) == simdjson::SUCCESS) ctx.credentials.session_token = s;
  REQUIRE(doc["region"].get(s) == simdjson::SUCCESS);
  ctx.params.region = s;
  REQUIRE(doc["service"].get(s) == simdjson::SUCCESS);
  ctx.params.service = s;
  REQUIRE(doc["timestamp"].get(s) == simdjson::SUCCESS);
  ctx.params.time = ParseTimestamp(s);
  bool normalize = false;
  REQUIRE(doc["normalize"].get(normalize) == simdjson::SUCCESS);
  ctx.params.mode = normalize ? SigningMode::kGeneric : SigningMode::kS3;
  bool sign_body = false;
  REQUIRE(doc["sign_body"].get(sign_body) == simdjson::SUCCESS);
  ctx.params.add_content_sha256_header = sign_body;
  bool omit = false;
  if (doc["omit_session_token"].get(omit) == simdjson::SUCCESS) ctx.params.sign_session_token = !omit;
  int64_t expires = 0;
  REQUIRE(doc["expiration_in_seconds"].get(expires) == simdjson::SUCCESS);
  ctx.expires = std::chrono::seconds(expires);
  return ctx;
}

std::optional<fs::path> SuiteDir() {
  const char* root = std::getenv("ROCKY_SOURCE_ROOT");
  if (root == nullptr) {
    std::cout << "SKIPPED: SigV4 test suite: ROCKY_SOURCE_ROOT is not set (run through meson test)\n";
    return std::nullopt;
  }
  fs::path dir = fs::path(root) / ".." / "shared" / "vectors" / "sigv4";
  if (!fs::is_directory(dir)) {
    std::cout << "SKIPPED: SigV4 test suite: " << dir.string() << " is absent (../shared not checked out)\n";
    return std::nullopt;
  }
  return dir;
}

// Query text of a presigned request as sent: the original query text, then the added X-Amz-* parameters.
std::string PresignedQueryText(const ParsedRequest& parsed, const HttpRequest& signed_request) {
  std::string out = parsed.raw_query;
  for (size_t i = parsed.request.query.size(); i < signed_request.query.size(); ++i) {
    if (!out.empty()) out += "&";
    out += UriEncode(signed_request.query[i].first, true) + "=" +
           UriEncode(signed_request.query[i].second, true);
  }
  return out;
}

}  // namespace

TEST_CASE("SigV4: every case of the AWS signing test suite, header and query signing") {
  std::optional<fs::path> dir = SuiteDir();
  if (!dir) return;
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(*dir)) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  REQUIRE_MESSAGE(!cases.empty(), dir->string() << " holds no test cases");
  int checked = 0;
  for (const fs::path& c : cases) {
    const std::string name = c.filename().string();
    CAPTURE(name);
    const Context ctx = ParseContext(ReadFile(c / "context.json"));
    const ParsedRequest parsed = ParseRequestFile(ReadFile(c / "request.txt"));

    HttpRequest header_request = parsed.request;
    Result<Signature> sig = SignRequest(header_request, ctx.credentials, ctx.params);
    REQUIRE_MESSAGE(sig.ok(), sig.status().ToString());
    CHECK(sig->canonical_request == ReadFile(c / "header-canonical-request.txt"));
    CHECK(sig->string_to_sign == ReadFile(c / "header-string-to-sign.txt"));
    CHECK(sig->signature == ReadFile(c / "header-signature.txt"));
    CHECK(Serialize(header_request, parsed.raw_query) == ReadFile(c / "header-signed-request.txt"));

    if (fs::exists(c / "query-signature.txt")) {
      HttpRequest query_request = parsed.request;
      SigningParams params = ctx.params;
      params.add_content_sha256_header = false;  // a presigned URL carries no extra headers
      Result<Signature> qsig = PresignRequest(query_request, ctx.credentials, params, ctx.expires);
      REQUIRE_MESSAGE(qsig.ok(), qsig.status().ToString());
      CHECK(qsig->canonical_request == ReadFile(c / "query-canonical-request.txt"));
      CHECK(qsig->string_to_sign == ReadFile(c / "query-string-to-sign.txt"));
      CHECK(qsig->signature == ReadFile(c / "query-signature.txt"));
      CHECK(Serialize(query_request, PresignedQueryText(parsed, query_request)) ==
            ReadFile(c / "query-signed-request.txt"));
    }
    ++checked;
  }
  std::cout << "SigV4 test suite: " << checked << " cases checked from " << dir->string() << "\n";
  CHECK(checked == static_cast<int>(cases.size()));
}

namespace {

Credentials TestCredentials() { return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", {}}; }

SigningParams S3Params() {
  SigningParams p;
  p.region = "us-east-1";
  p.service = "s3";
  p.time = std::chrono::system_clock::from_time_t(1440938160);  // 2015-08-30T12:36:00Z
  p.mode = SigningMode::kS3;
  p.add_content_sha256_header = true;
  return p;
}

std::string CanonicalPathLine(const Signature& sig) {
  size_t first = sig.canonical_request.find('\n');
  size_t second = sig.canonical_request.find('\n', first + 1);
  return sig.canonical_request.substr(first + 1, second - first - 1);
}

}  // namespace

TEST_CASE("SigV4 S3 mode: an already-encoded key is signed once-encoded, dot segments are kept") {
  HttpRequest r{"GET", "/bucket/a%20b/./c//d", {}, {{"Host", "s3.amazonaws.com"}}, ""};
  Result<Signature> sig = SignRequest(r, TestCredentials(), S3Params());
  REQUIRE(sig.ok());
  CHECK(CanonicalPathLine(*sig) == "/bucket/a%20b/./c//d");

  HttpRequest g{"GET", "/bucket/a%20b/./c//d", {}, {{"Host", "sts.amazonaws.com"}}, ""};
  SigningParams generic = S3Params();
  generic.mode = SigningMode::kGeneric;
  sig = SignRequest(g, TestCredentials(), generic);
  REQUIRE(sig.ok());
  CHECK(CanonicalPathLine(*sig) == "/bucket/a%2520b/c/d");
}

TEST_CASE("SigV4: the payload hash header, the session token, and re-signing without duplicates") {
  HttpRequest r{"PUT", "/bucket/key", {{"partNumber", "1"}}, {{"Host", "s3.amazonaws.com"}}, "hello"};
  Credentials creds = TestCredentials();
  creds.session_token = "TOKEN123";
  Result<Signature> first = SignRequest(r, creds, S3Params());
  REQUIRE(first.ok());
  Result<Signature> second = SignRequest(r, creds, S3Params());
  REQUIRE(second.ok());
  CHECK(first->signature == second->signature);
  auto count = [&](std::string_view name) {
    return std::count_if(r.headers.begin(), r.headers.end(), [&](const auto& h) { return h.first == name; });
  };
  CHECK(count("Authorization") == 1);
  CHECK(count("X-Amz-Date") == 1);
  CHECK(count("X-Amz-Security-Token") == 1);
  CHECK(count("x-amz-content-sha256") == 1);
  CHECK(first->canonical_request.find("x-amz-content-sha256:" + Sha256Hex("hello")) != std::string::npos);
  CHECK(first->canonical_request.find("x-amz-security-token:TOKEN123") != std::string::npos);
  CHECK(first->canonical_request.find("\npartNumber=1\n") != std::string::npos);
  // The secret never appears in anything the signer produces.
  CHECK(first->authorization.find(creds.secret_access_key) == std::string::npos);
  CHECK(first->canonical_request.find(creds.secret_access_key) == std::string::npos);

  SigningParams unsigned_payload = S3Params();
  unsigned_payload.payload_hash = "UNSIGNED-PAYLOAD";
  Result<Signature> u = SignRequest(r, creds, unsigned_payload);
  REQUIRE(u.ok());
  CHECK(u->canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));
  CHECK(u->signature != first->signature);
}

TEST_CASE("SigV4: requests that cannot be signed are errors naming the problem") {
  HttpRequest no_host{"GET", "/", {}, {{"X-Other", "1"}}, ""};
  Result<Signature> sig = SignRequest(no_host, TestCredentials(), S3Params());
  REQUIRE(!sig.ok());
  CHECK(sig.status().code() == rocky::base::Status::Code::kInvalidArgument);
  CHECK(sig.status().message().find("Host") != std::string::npos);

  HttpRequest r{"GET", "/", {}, {{"host", "x"}}, ""};
  Credentials no_key = TestCredentials();
  no_key.access_key_id.clear();
  sig = SignRequest(r, no_key, S3Params());
  REQUIRE(!sig.ok());
  CHECK(sig.status().message().find("access key id") != std::string::npos);

  sig = PresignRequest(r, TestCredentials(), S3Params(), std::chrono::seconds(0));
  CHECK(!sig.ok());
}

TEST_CASE("SigV4 helpers: SHA-256 and URI encoding") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(UriEncode("a b/c~d*e", false) == "a%20b/c~d%2Ae");
  CHECK(UriEncode("a b/c", true) == "a%20b%2Fc");
  CHECK(UriEncode("\xE1\x88\xB4", true) == "%E1%88%B4");
}
