#include "output.h"

#include <algorithm>

namespace rocky::cli {

FlagSpec OutputFlag() {
  return FlagSpec{
      .name = "output",
      .value_name = "FORMAT",
      .help =
          "Output format: table for people, json for programs (default: json when stdout is not a terminal)",
      .choices = {"table", "json"}};
}

OutputFormat OutputFormatOf(const Invocation& invocation) {
  return invocation.Get("output") == "json" ? OutputFormat::kJson : OutputFormat::kTable;
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::SetAlign(size_t column, Align align) {
  if (aligns_.size() <= column) aligns_.resize(column + 1, Align::kLeft);
  aligns_[column] = align;
}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string Table::Render(size_t indent) const {
  std::vector<const std::vector<std::string>*> lines;
  if (!headers_.empty()) lines.push_back(&headers_);
  for (const auto& row : rows_) lines.push_back(&row);

  std::vector<size_t> widths;
  for (const auto* line : lines) {
    if (widths.size() < line->size()) widths.resize(line->size(), 0);
    for (size_t column = 0; column < line->size(); ++column) {
      widths[column] = std::max(widths[column], DisplayWidth((*line)[column]));
    }
  }

  std::string rendered;
  for (const auto* line : lines) {
    std::string text(indent, ' ');
    for (size_t column = 0; column < widths.size(); ++column) {
      const std::string empty;
      const std::string& cell = column < line->size() ? (*line)[column] : empty;
      const size_t padding = widths[column] - DisplayWidth(cell);
      const Align align = column < aligns_.size() ? aligns_[column] : Align::kLeft;
      if (column > 0) text += "  ";
      if (align == Align::kRight) text.append(padding, ' ');
      text += cell;
      if (align == Align::kLeft) text.append(padding, ' ');
    }
    // Left-aligned last columns and blank cells leave spaces at the end; terminals and diffs want none.
    text.erase(text.find_last_not_of(' ') + 1);
    rendered += text;
    rendered += '\n';
  }
  return rendered;
}

size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace rocky::cli
