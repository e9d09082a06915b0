// fuzz_config: arbitrary bytes as rocky.toml. ParseConfig must never crash, leak or throw; an accepted config
// must satisfy every rule the validation promises, and no error may ever show a variable's value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "rocky/config/config.h"

using namespace rocky::config;

namespace {

// Letters only, so OneLine() would not escape it: a message holding it can only have come from substitution
// (the check below is skipped when the input itself contains it).
constexpr std::string_view kSecret = "q9Zsecretq9Z";

const EnvLookup& Env() {
  static const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    static const std::map<std::string, std::string, std::less<>> vars = {
        {"SECRET", std::string(kSecret)},
        {"URL", "redis://u:" + std::string(kSecret) + "@h:6379/0"},
        {"EMPTY", ""},
        {"BUCKET", "bkt"},
        {"COMP", "tenant"},
        {"DOLLAR", "$${X}"},
    };
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  return env;
}

void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config invariant: %s: %s\n", what, detail.c_str());
  std::abort();
}

void CheckAccepted(const Config& c) {
  if (c.adapter.path.empty()) Fail("empty adapter.path", "");
  const StateConfig& s = c.state;
  bool s3 = s.backend == StateBackend::kS3 || s.backend == StateBackend::kTiered;
  bool valkey = s.backend == StateBackend::kValkey || s.backend == StateBackend::kTiered;
  if (s3 && s.s3_bucket.empty()) Fail("s3 backend without bucket", "");
  if (valkey && s.valkey_url.empty()) Fail("valkey backend without url", "");
  if (s.transfer_timeout_seconds == 0) Fail("zero transfer timeout", "");
  if (!(s.retry.backoff_multiplier >= 1.0)) Fail("backoff_multiplier < 1", "");
  if (s.retry.max_backoff_ms < s.retry.initial_backoff_ms) Fail("max_backoff < initial", "");
  if (s.retry.circuit_breaker_recovery_timeout_seconds == 0) Fail("zero recovery timeout", "");
  for (size_t i = 0; i < c.pipelines.size(); ++i) {
    const PipelineConfig& p = c.pipelines[i];
    if (i > 0 && !(c.pipelines[i - 1].name < p.name)) Fail("pipelines not in name order", p.name);
    if (p.source_catalog.empty() || p.catalog_template.empty() || p.schema_template.empty()) {
      Fail("empty required pipeline key", p.name);
    }
    if (p.schema_pattern.components.empty() || p.schema_pattern.separator.empty())
      Fail("bad pattern", p.name);
    if (p.checks.history_length == 0 || p.checks.min_history == 0 ||
        p.checks.min_history > p.checks.history_length) {
      Fail("bad history bounds", p.name);
    }
    if (!(p.checks.anomaly_threshold_pct > 0)) Fail("anomaly_threshold_pct <= 0", p.name);
    if (p.checks.freshness.has_value() && p.checks.freshness->threshold_seconds == 0)
      Fail("zero freshness", p.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = ParseConfig(text, "fuzz.toml", "/base", Env());
  if (config.ok()) {
    CheckAccepted(*config);
    (void)RedactUrl(config->state.valkey_url);
  } else {
    const Status status = config.status();
    const std::string& message = status.message();
    if (status.code() != Status::Code::kInvalidArgument) Fail("not kInvalidArgument", message);
    if (message.rfind("fuzz.toml:", 0) != 0) Fail("message without the file name", message);
    if (message.find('\n') != std::string::npos) Fail("multi-line message", message);
    if (text.find(kSecret) == std::string_view::npos && message.find(kSecret) != std::string::npos) {
      Fail("a variable's value in a message", message);
    }
  }
  // Redacting twice changes nothing more.
  std::string once = RedactUrl(text);
  if (RedactUrl(once) != once) Fail("RedactUrl not idempotent", once);
  std::string redacted = Redact(text, {"secret"});
  if (Redact(redacted, {"secret"}) != redacted) Fail("Redact not idempotent", redacted);
  return 0;
}
