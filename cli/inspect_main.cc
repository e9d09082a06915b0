// rocky-inspect: reads a state file without the rest of rocky (no configuration, no remote state) and never
// writes to it, so it is safe to point at the file of a running or crashed replication.
//
// All decoding is the engine's inspection API (rocky/engine/inspect.h); this file only lays it out, as text
// for people or JSON for programs. Exit codes: 0 the file is healthy (a file holding no commit yet is an
// empty database, and healthy), 1 damage found, the newest commit discarded by recovery, or the file
// unreadable (everything readable is still printed), 2 usage. The verdict (which commit is current, whether
// the newest was discarded, whether Open would refuse the file) is the engine's, the same Database::Open
// reaches.
#include <simdjson.h>

#include <charconv>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>

#include "app.h"
#include "output.h"
#include "rocky/base/strings.h"
#include "rocky/engine/inspect.h"

namespace {

using rocky::cli::CommandContext;
using rocky::cli::JsonWriter;
using rocky::cli::Table;
using namespace rocky::engine;
using rocky::base::Hex;

constexpr std::string_view kProgram = "rocky-inspect";

std::string Hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// True for text a terminal shows faithfully: valid UTF-8 without control characters. Anything else is
// printed as hex so that binary keys cannot garble the output.
bool Printable(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    const int extra = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (extra < 0 || c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    if (i + static_cast<size_t>(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

// Re-indents JSON text that simdjson accepted, two spaces per level; string contents are copied untouched.
std::string PrettyJson(std::string_view json) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(2 * d), ' ');
  };
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) {
        out += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r': break;
      case '"':
        in_string = true;
        out += c;
        break;
      case '{':
      case '[': {
        // An empty object or array stays on one line.
        size_t j = i + 1;
        while (j < json.size() && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r'))
          ++j;
        if (j < json.size() && (json[j] == '}' || json[j] == ']')) {
          out += c;
          out += json[j];
          i = j;
          break;
        }
        out += c;
        newline(++depth);
        break;
      }
      case '}':
      case ']':
        newline(--depth);
        out += c;
        break;
      case ',':
        out += c;
        newline(depth);
        break;
      case ':': out += ": "; break;
      default: out += c;
    }
  }
  return out;
}

// A JSON object or array, pretty-printed; nullopt for anything else (scalars print fine as text).
std::optional<std::string> AsPrettyJson(std::string_view value) {
  const size_t first = value.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || (value[first] != '{' && value[first] != '[')) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(value.data(), value.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  return PrettyJson(value);
}

// How a key or value is shown as text: as-is when printable, else "0x" and hex.
std::string Shown(std::string_view bytes) {
  return Printable(bytes) ? std::string(bytes) : "0x" + Hex(bytes);
}

// "key"/"value" when printable, else "key_hex"/"value_hex", so JSON consumers can tell them apart.
void JsonBytes(JsonWriter& w, std::string_view name, std::string_view bytes) {
  if (Printable(bytes)) {
    w.Key(name).String(bytes);
  } else {
    w.Key(std::string(name) + "_hex").String(Hex(bytes));
  }
}

void JsonError(JsonWriter& w, const Status& s) {
  if (!s.ok()) w.Key("error").String(s.message());
}

std::string OkOr(bool ok, std::string_view bad) { return ok ? "ok" : std::string(bad); }
std::string YesNo(bool b) { return b ? "yes" : "no"; }

// --- Header and slots, shared by the dump and --page. ---

void HeaderJson(JsonWriter& w, const InspectedHeader& h) {
  w.BeginObject()
      .Key("magic_ok")
      .Bool(h.magic_ok)
      .Key("checksum_ok")
      .Bool(h.checksum_ok)
      .Key("format_version")
      .UInt(h.format_version)
      .Key("page_size")
      .UInt(h.page_size)
      .Key("effective_page_size")
      .UInt(h.effective_page_size)
      .Key("file_size")
      .UInt(h.file_size);
  JsonError(w, h.status);
  w.EndObject();
}

void HeaderText(std::ostream& out, const InspectedHeader& h) {
  Table t;
  t.AddRow({"magic", OkOr(h.magic_ok, "BAD (not a rocky database)")});
  if (h.magic_ok) {
    t.AddRow({"checksum", OkOr(h.checksum_ok, "BAD")});
    t.AddRow({"format version", std::to_string(h.format_version)});
    std::string ps = std::to_string(h.page_size);
    if (h.page_size != h.effective_page_size)
      ps += " (implausible; using " + std::to_string(h.effective_page_size) + ")";
    t.AddRow({"page size", ps});
  }
  t.AddRow({"file size", std::to_string(h.file_size) + " bytes (" +
                             std::to_string(h.file_size / h.effective_page_size) + " pages)"});
  if (!h.status.ok()) t.AddRow({"problem", h.status.message()});
  out << "Header\n" << t.Render(2);
}

void SlotJson(JsonWriter& w, const InspectedSlot& s) {
  w.BeginObject()
      .Key("name")
      .String(std::string(1, s.name))
      .Key("page")
      .UInt(s.page_id)
      .Key("txn_id")
      .UInt(s.txn_id)
      .Key("current")
      .Bool(s.current)
      .Key("checksum_ok")
      .Bool(s.checksum_ok)
      .Key("valid")
      .Bool(s.valid)
      .Key("complete")
      .Bool(s.complete)
      .Key("blank")
      .Bool(s.blank)
      .Key("synced_before_slot")
      .Bool(s.synced_before_slot)
      .Key("verify_count")
      .UInt(s.verify_count)
      .Key("page_count")
      .UInt(s.page_count)
      .Key("catalog_root")
      .UInt(s.catalog_root)
      .Key("freemap_directory")
      .UInt(s.freemap_directory)
      .Key("free_pages")
      .UInt(s.free_pages);
  w.Key("verify_list").BeginArray();
  for (uint64_t id : s.verify_list) w.UInt(id);
  w.EndArray();
  JsonError(w, s.status);
  w.EndObject();
}

void SlotsText(std::ostream& out, const std::vector<InspectedSlot>& slots) {
  Table t({"SLOT", "PAGE", "TXN", "CURRENT", "CHECKSUM", "SYNCED", "VERIFY", "PAGES", "CATALOG", "FREEMAP",
           "FREE"});
  for (size_t c = 1; c < 11; ++c) {
    if (c != 3 && c != 4 && c != 5) t.SetAlign(c, Table::Align::kRight);
  }
  for (const InspectedSlot& s : slots) {
    t.AddRow({std::string(1, s.name), std::to_string(s.page_id), std::to_string(s.txn_id), YesNo(s.current),
              s.blank ? "blank" : OkOr(s.checksum_ok, "BAD"), YesNo(s.synced_before_slot),
              std::to_string(s.verify_count), std::to_string(s.page_count), std::to_string(s.catalog_root),
              std::to_string(s.freemap_directory), std::to_string(s.free_pages)});
  }
  out << "Commit slots\n" << t.Render(2);
  for (const InspectedSlot& s : slots) {
    if (!s.status.ok()) out << "  " << s.status.message() << '\n';
  }
}

// --- The default dump. ---

int Dump(const CommandContext& ctx, const std::string& path, Inspector& inspector, bool json) {
  const InspectionReport r = inspector.Inspect();
  if (json) {
    JsonWriter w;
    w.BeginObject().Key("file").String(path).Key("header");
    HeaderJson(w, r.header);
    w.Key("slots").BeginArray();
    for (const InspectedSlot& s : r.slots) SlotJson(w, s);
    w.EndArray().Key("current_slot");
    if (r.current_slot >= 0) {
      w.String(std::string(1, r.slots[static_cast<size_t>(r.current_slot)].name));
    } else {
      w.Null();
    }
    w.Key("tables").BeginArray();
    for (const InspectedTable& t : r.tables) {
      w.BeginObject()
          .Key("name")
          .String(t.name)
          .Key("entries")
          .UInt(t.entries)
          .Key("counted")
          .UInt(t.counted)
          .Key("root")
          .UInt(t.root)
          .Key("depth")
          .UInt(t.depth)
          .Key("leaf_pages")
          .UInt(t.leaf_pages)
          .Key("branch_pages")
          .UInt(t.branch_pages)
          .Key("overflow_pages")
          .UInt(t.overflow_pages);
      JsonError(w, t.status);
      w.EndObject();
    }
    w.EndArray();
    if (r.current_slot >= 0) {
      const Stats& st = r.stats;
      w.Key("pages")
          .BeginObject()
          .Key("complete")
          .Bool(r.stats_complete)
          .Key("page_size")
          .UInt(st.page_size)
          .Key("total")
          .UInt(st.file_pages)
          .Key("header")
          .UInt(st.header_pages)
          .Key("branch")
          .UInt(st.branch_pages)
          .Key("leaf")
          .UInt(st.leaf_pages)
          .Key("overflow")
          .UInt(st.overflow_pages)
          .Key("freemap")
          .UInt(st.freemap_pages)
          .Key("free")
          .UInt(st.free_pages)
          .Key("tree_depth")
          .UInt(st.tree_depth)
          .Key("entries")
          .UInt(st.entries)
          .Key("key_bytes")
          .UInt(st.key_bytes)
          .Key("value_bytes")
          .UInt(st.value_bytes)
          .Key("fragmentation")
          .Double(st.fragmentation)
          .EndObject();
    }
    w.Key("uncommitted").Bool(r.uncommitted).Key("open_error");
    if (r.open_status.ok()) {
      w.Null();
    } else {
      w.String(r.open_status.message());
    }
    w.Key("discarded");
    if (r.discarded && r.current_slot >= 0) {
      w.BeginObject()
          .Key("txn_id")
          .UInt(r.discarded->txn_id)
          .Key("reason")
          .String(r.discarded->reason)
          .Key("opens_at_txn_id")
          .UInt(r.slots[static_cast<size_t>(r.current_slot)].txn_id)
          .EndObject();
    } else {
      w.Null();
    }
    w.Key("healthy").Bool(r.healthy()).Key("problems").BeginArray();
    for (const std::string& p : r.problems) w.String(p);
    w.EndArray().Key("warnings").BeginArray();
    for (const std::string& p : r.warnings) w.String(p);
    w.EndArray().EndObject();
    ctx.out << w.str() << '\n';
  } else {
    ctx.out << "File: " << path << '\n';
    HeaderText(ctx.out, r.header);
    if (r.header.magic_ok) {
      SlotsText(ctx.out, r.slots);
      if (r.current_slot >= 0) {
        Table t({"TABLE", "KEYS", "DEPTH", "LEAVES", "BRANCHES", "OVERFLOW", "STATUS"});
        for (size_t c = 1; c < 6; ++c) t.SetAlign(c, Table::Align::kRight);
        for (const InspectedTable& tb : r.tables) {
          t.AddRow({Shown(tb.name), std::to_string(tb.entries), std::to_string(tb.depth),
                    std::to_string(tb.leaf_pages), std::to_string(tb.branch_pages),
                    std::to_string(tb.overflow_pages),
                    tb.status.ok() ? "ok" : "DAMAGED: " + tb.status.message()});
        }
        ctx.out << "Tables (commit " << r.slots[static_cast<size_t>(r.current_slot)].txn_id << ", slot "
                << r.slots[static_cast<size_t>(r.current_slot)].name << ")\n";
        if (t.rows() == 0) {
          ctx.out << "  (none)\n";
        } else {
          ctx.out << t.Render(2);
        }
        if (!r.catalog_status.ok()) ctx.out << "  catalog DAMAGED: " << r.catalog_status.message() << '\n';
        const Stats& st = r.stats;
        Table p;
        for (size_t c = 1; c < 2; ++c) p.SetAlign(c, Table::Align::kRight);
        p.AddRow({"total", std::to_string(st.file_pages)});
        p.AddRow({"header", std::to_string(st.header_pages)});
        p.AddRow({"branch", std::to_string(st.branch_pages)});
        p.AddRow({"leaf", std::to_string(st.leaf_pages)});
        p.AddRow({"overflow", std::to_string(st.overflow_pages)});
        if (r.stats_complete) {
          p.AddRow({"freemap", std::to_string(st.freemap_pages)});
          p.AddRow({"free", std::to_string(st.free_pages)});
        }
        p.AddRow({"tree depth", std::to_string(st.tree_depth)});
        if (r.stats_complete) {
          char frag[32];
          std::snprintf(frag, sizeof frag, "%.1f%%", st.fragmentation * 100.0);
          p.AddRow({"fragmentation", frag});
        }
        ctx.out << "Pages" << (r.stats_complete ? "" : " (partial: the integrity walk stopped at damage)")
                << '\n'
                << p.Render(2);
      }
    }
    for (const std::string& warning : r.warnings) ctx.out << "Warning: " << warning << '\n';
    if (r.healthy()) {
      ctx.out << "Integrity: healthy" << (r.uncommitted ? " (no commit yet: an empty database)" : "") << '\n';
    } else {
      // A discarded newest commit is its own verdict: the file opens, but an acknowledged commit may be gone.
      const bool only_discarded = r.discarded && r.problems.size() == 1;
      ctx.out << "Integrity: "
              << (only_discarded ? "NEWEST COMMIT DISCARDED"
                  : r.discarded  ? "DAMAGED, NEWEST COMMIT DISCARDED"
                                 : "DAMAGED")
              << " (" << r.problems.size() << " problem" << (r.problems.size() == 1 ? "" : "s") << ")\n";
      for (const std::string& p : r.problems) ctx.out << "  - " << p << '\n';
    }
  }
  for (const std::string& p : r.problems) ctx.err << kProgram << ": " << p << '\n';
  return r.healthy() ? rocky::cli::kExitOk : rocky::cli::kExitFailure;
}

// --- --table NAME ---

int DumpTable(const CommandContext& ctx, Inspector& inspector, const std::string& name, bool json) {
  JsonWriter w;
  if (json) w.BeginObject().Key("table").String(name).Key("entries").BeginArray();
  uint64_t n = 0;
  const Status s = inspector.WalkTable(name, [&](std::string_view key, std::string_view value) {
    ++n;
    if (json) {
      w.BeginObject();
      JsonBytes(w, "key", key);
      JsonBytes(w, "value", value);
      w.EndObject();
    } else if (std::optional<std::string> pretty = AsPrettyJson(value)) {
      ctx.out << Shown(key) << ": " << *pretty << '\n';
    } else {
      ctx.out << Shown(key) << ": " << Shown(value) << '\n';
    }
    return true;
  });
  if (json) {
    w.EndArray().Key("count").UInt(n);
    JsonError(w, s);
    w.EndObject();
    ctx.out << w.str() << '\n';
  }
  if (!s.ok()) {
    ctx.err << kProgram << ": " << s.message() << '\n';
    return rocky::cli::kExitFailure;
  }
  return rocky::cli::kExitOk;
}

// --- --page N ---

// A page is damaged when its structure is bad, or its checksum is (a free page's bytes are not checked; a
// blank slot is not damage).
bool PageDamaged(const InspectedPage& p) {
  bool damaged = !p.structure.ok();
  if (p.header) damaged = damaged || !p.header->status.ok();
  if (p.slot) damaged = damaged || (!p.slot->checksum_ok && !p.slot->blank);
  if (!p.header && !p.slot) damaged = damaged || (!p.checksum_ok && p.kind_name != "free");
  return damaged;
}

// --page N --output json: the page's header fields, its slot or entries, and what its kind adds.
void PageJson(std::ostream& out, const InspectedPage& p) {
  const bool is_leaf = p.kind_name == "leaf";
  const bool is_branch = p.kind_name == "branch";
  JsonWriter w;
  w.BeginObject().Key("page").UInt(p.id).Key("page_size").UInt(p.page_size).Key("kind").String(p.kind_name);
  if (p.header) {
    w.Key("header");
    HeaderJson(w, *p.header);
  } else {
    w.Key("checksum")
        .String(Hex64(p.stored_checksum))
        .Key("checksum_ok")
        .Bool(p.checksum_ok)
        .Key("txn_id")
        .UInt(p.txn_id)
        .Key("kind_byte")
        .UInt(p.kind)
        .Key("flags")
        .UInt(p.flags)
        .Key("count")
        .UInt(p.count)
        .Key("aux")
        .UInt(p.aux);
  }
  if (p.slot) {
    w.Key("slot");
    SlotJson(w, *p.slot);
  }
  if (is_leaf || is_branch) {
    if (is_branch) w.Key("leftmost_child").UInt(p.leftmost_child);
    w.Key("entries").BeginArray();
    for (const InspectedEntry& e : p.entries) {
      w.BeginObject();
      JsonBytes(w, "key", e.key);
      if (is_branch) {
        w.Key("child").UInt(e.child);
      } else if (e.overflow) {
        w.Key("overflow_page").UInt(e.overflow_page).Key("value_len").UInt(e.value_len);
      } else {
        JsonBytes(w, "value", e.value);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  if (p.kind_name == "overflow")
    w.Key("run_pages").UInt(p.run_pages).Key("value_length").UInt(p.overflow_length);
  if (p.kind_name == "freemap bitmap") w.Key("used").UInt(p.bitmap_used).Key("bits").UInt(p.bitmap_bits);
  if (p.kind_name == "freemap directory") {
    w.Key("next").UInt(p.directory_next).Key("bitmap_pages").BeginArray();
    for (uint64_t b : p.directory_ids) w.UInt(b);
    w.EndArray();
  }
  if (!p.structure.ok()) w.Key("error").String(p.structure.message());
  w.EndObject();
  out << w.str() << '\n';
}

// --page N as text: the page's header fields in a table, then its entries.
void PageText(std::ostream& out, const InspectedPage& p) {
  const bool is_leaf = p.kind_name == "leaf";
  const bool is_branch = p.kind_name == "branch";
  out << "Page " << p.id << " (" << p.page_size << " bytes): " << p.kind_name << '\n';
  if (p.header) {
    HeaderText(out, *p.header);
  } else {
    Table t;
    t.AddRow({"checksum", Hex64(p.stored_checksum) + (p.checksum_ok ? " (ok)" : " (BAD)")});
    t.AddRow({"txn id", std::to_string(p.txn_id)});
    t.AddRow({"kind", std::to_string(p.kind) + " (" + p.kind_name + ")"});
    t.AddRow({"flags", std::to_string(p.flags)});
    t.AddRow({"count", std::to_string(p.count)});
    t.AddRow({"aux", std::to_string(p.aux)});
    if (p.slot) {
      const InspectedSlot& s = *p.slot;
      t.AddRow({"slot", std::string(1, s.name) + (s.current ? " (current)" : "")});
      t.AddRow({"synced before slot", YesNo(s.synced_before_slot)});
      t.AddRow({"verify list", std::to_string(s.verify_count) + " pages"});
      t.AddRow({"page count", std::to_string(s.page_count)});
      t.AddRow({"catalog root", std::to_string(s.catalog_root)});
      t.AddRow({"freemap directory", std::to_string(s.freemap_directory)});
      t.AddRow({"free pages", std::to_string(s.free_pages)});
      if (!s.status.ok()) t.AddRow({"problem", s.status.message()});
    }
    if (is_branch) t.AddRow({"leftmost child", std::to_string(p.leftmost_child)});
    if (p.kind_name == "overflow") {
      t.AddRow({"run pages", std::to_string(p.run_pages)});
      t.AddRow({"value length", std::to_string(p.overflow_length)});
    }
    if (p.kind_name == "freemap bitmap") {
      t.AddRow({"used", std::to_string(p.bitmap_used) + " of " + std::to_string(p.bitmap_bits) + " bits"});
    }
    if (p.kind_name == "freemap directory") {
      t.AddRow({"next directory", std::to_string(p.directory_next)});
      std::string ids;
      for (uint64_t b : p.directory_ids) {
        if (!ids.empty()) ids += ' ';
        ids += std::to_string(b);
      }
      t.AddRow({"bitmap pages", ids.empty() ? "(none)" : ids});
    }
    if (!p.structure.ok()) t.AddRow({"problem", p.structure.message()});
    out << t.Render(2);
    if (is_leaf || is_branch) {
      Table e(is_leaf ? std::vector<std::string>{"#", "KEY", "VALUE"}
                      : std::vector<std::string>{"#", "KEY", "CHILD"});
      e.SetAlign(0, Table::Align::kRight);
      for (size_t i = 0; i < p.entries.size(); ++i) {
        const InspectedEntry& en = p.entries[i];
        std::string right = is_branch     ? std::to_string(en.child)
                            : en.overflow ? "(overflow run at page " + std::to_string(en.overflow_page) +
                                                ", " + std::to_string(en.value_len) + " bytes)"
                                          : Shown(en.value);
        e.AddRow({std::to_string(i), Shown(en.key), right});
      }
      out << "Entries\n" << e.Render(2);
    }
  }
}

int DumpPage(const CommandContext& ctx, Inspector& inspector, uint64_t id, bool json) {
  Result<InspectedPage> described = inspector.DescribePage(id);
  if (!described.ok()) {
    ctx.err << kProgram << ": " << described.status().message() << '\n';
    return rocky::cli::kExitFailure;
  }
  const InspectedPage& p = described.value();
  const bool damaged = PageDamaged(p);
  if (json) {
    PageJson(ctx.out, p);
  } else {
    PageText(ctx.out, p);
  }
  if (damaged) {
    ctx.err << kProgram << ": page " << p.id << " is damaged"
            << (p.structure.ok() ? std::string(": checksum mismatch") : ": " + p.structure.message()) << '\n';
    return rocky::cli::kExitFailure;
  }
  return rocky::cli::kExitOk;
}

int Run(const CommandContext& ctx) {
  const auto& inv = ctx.invocation;
  const std::string path = inv.positionals.at(0);
  const bool json = rocky::cli::OutputFormatOf(inv) == rocky::cli::OutputFormat::kJson;
  if (inv.Has("table") && inv.Has("page")) {
    ctx.err << kProgram << ": --table and --page cannot be combined\nRun 'rocky-inspect --help' for usage.\n";
    return rocky::cli::kExitUsage;
  }
  std::optional<uint64_t> page;
  if (std::optional<std::string_view> text = inv.Get("page")) {
    uint64_t id = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), id);
    if (ec != std::errc() || end != text->data() + text->size() || text->empty()) {
      ctx.err << kProgram << ": --page expects a page number, got '" << *text
              << "'\nRun 'rocky-inspect --help' for usage.\n";
      return rocky::cli::kExitUsage;
    }
    page = id;
  }
  Result<std::unique_ptr<Inspector>> opened = Inspector::Open(path);
  if (!opened.ok()) {
    // The Env's message already names the file and the failing call.
    ctx.err << kProgram << ": " << opened.status().message() << '\n';
    return rocky::cli::kExitFailure;
  }
  Inspector& inspector = *opened.value();
  // A foreign file has no pages or tables to show; say so once instead of decoding garbage.
  if (!inspector.header().magic_ok && (page || inv.Has("table"))) {
    ctx.err << kProgram << ": " << inspector.header().status.message() << '\n';
    return rocky::cli::kExitFailure;
  }
  if (page) return DumpPage(ctx, inspector, *page, json);
  if (std::optional<std::string_view> table = inv.Get("table")) {
    return DumpTable(ctx, inspector, std::string(*table), json);
  }
  return Dump(ctx, path, inspector, json);
}

rocky::cli::CommandSpec InspectCommand() {
  return rocky::cli::CommandSpec{
      .name = "rocky-inspect",
      .summary = "Offline dumper of a state file; never modifies it",
      .description =
          "rocky-inspect: offline dumper of a state file; never modifies it.\n"
          "Prints the header, both commit slots, the tables, page statistics and an integrity verdict.\n"
          "Exit status: 0 healthy (a file holding no commit yet is an empty database), 1 damage found, "
          "newest\n"
          "commit discarded by recovery, or unreadable file, 2 usage.",
      .flags =
          {rocky::cli::OutputFlag(),
           {.name = "table", .value_name = "NAME", .help = "Dump the keys and values of table NAME"},
           {.name = "page", .value_name = "N", .help = "Decode page N"},
           // One spelling for JSON in every program: --output json. A removed flag still answers, naming it.
           {.name = "json", .replaced_by = "--output json"}},
      .positionals = {{.name = "FILE", .help = "The state file to read"}},
      .subcommands = {},
      .handler = Run,
  };
}

}  // namespace

int main(int argc, char** argv) { return rocky::cli::RunMain(InspectCommand(), argc, argv); }
