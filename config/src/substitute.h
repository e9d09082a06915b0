// ${VAR} substitution in rocky.toml string values. Internal to the config library.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rocky/config/config.h"

namespace rocky::config::internal {

struct Substituted {
  std::string text;
  // The variables whose environment value went into `text`: when non-empty, `text` may hold a secret and must
  // never be echoed in a message.
  std::vector<std::string> from_env;
};

// Expands ${VAR}, ${VAR:-default} and $$ in `raw`. The default is literal text (no nesting) and is used when
// VAR is unset or empty; an inserted value is never re-scanned. Any other '$' is an error, so a shell-style
// $VAR never silently stays as text. Errors are kInvalidArgument without a position (the caller adds file,
// line, column and key) and never contain a variable's value.
Result<Substituted> SubstituteVariables(std::string_view raw, const EnvLookup& env);

}  // namespace rocky::config::internal
