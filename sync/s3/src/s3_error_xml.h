// A tolerant reader for the small XML documents AWS answers with (S3 errors, STS responses). Not a general
// XML parser: it finds an element by name and returns its text, and it is safe on arbitrary bytes (bounded
// work, no recursion, no allocation beyond the returned text).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rocky::sync::xml {

// The raw content between <name ...> and its matching </name> of the first element called `name` (namespace
// prefixes ignored) in `doc`; nullopt if there is none or it is not closed. A self-closing <name/> gives "".
std::optional<std::string_view> FindElement(std::string_view doc, std::string_view name);

// The text of raw content: nested tags and comments dropped, CDATA kept, the five predefined entities and
// numeric character references (&#65; &#x41;) decoded, surrounding whitespace trimmed.
std::string Text(std::string_view content);

// FindElement on each name in turn, each inside the previous one: FindPath(doc, {"Error", "Code"}).
std::optional<std::string> FindText(std::string_view doc, std::initializer_list<std::string_view> path);

}  // namespace rocky::sync::xml
