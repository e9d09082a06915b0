#include "doctor_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "command_support.h"
#include "output.h"
#include "rocky/base/strings.h"
#include "rocky/base/temp_file.h"
#include "rocky/engine/db.h"
#include "rocky/state/store.h"
#include "rocky/sync/remote_state_factory.h"
#include "rocky/sync/state_lease.h"
#include "rocky/sync/state_sync.h"
#include "rocky/warehouse/open.h"
#include "rocky/warehouse/schema_pattern.h"

namespace rocky::cli {

using base::RandomHex;

namespace {

using base::Status;

enum class Health : unsigned char { kHealthy, kWarning, kCritical };

std::string_view HealthName(Health h) {
  switch (h) {
    case Health::kHealthy: return "healthy";
    case Health::kWarning: return "warning";
    case Health::kCritical: return "critical";
  }
  return "critical";
}

struct Check {
  std::string name;
  Health status = Health::kHealthy;
  std::string message;
  uint64_t duration_ms = 0;
  std::vector<std::pair<std::string, std::string>> details;
};

// Runs `body` and records how long it took.
template <typename Body>
Check Timed(std::string name, Body body) {
  const auto start = std::chrono::steady_clock::now();
  Check check;
  check.name = std::move(name);
  body(check);
  check.duration_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
          .count());
  return check;
}

// What every check after `config` needs: the configuration, or why there is none.
struct Context {
  std::optional<config::Config> config;
  Status config_status;  // the load error, OK when loaded or absent
  std::string state_path;
};

Check CheckConfig(const Context& c, const Invocation& inv, std::vector<std::string>& suggestions) {
  return Timed("config", [&](Check& check) {
    if (!c.config_status.ok()) {
      check.status = Health::kCritical;
      check.message = c.config_status.message();
      suggestions.push_back("Fix " + ConfigPath(inv) + " as the message says (file:line:column).");
      return;
    }
    if (!c.config) {
      check.status = Health::kWarning;
      check.message = "no " + ConfigPath(inv) + ": the state is local and there are no pipelines";
      suggestions.push_back("Run `rocky init` to write a rocky.toml with a sample pipeline.");
      return;
    }
    check.message = c.config->source_path + " is valid: " + std::to_string(c.config->pipelines.size()) +
                    (c.config->pipelines.size() == 1 ? " pipeline" : " pipelines") + ", state backend " +
                    std::string(config::ToString(c.config->state.backend));
    check.details.emplace_back("path", c.config->source_path);
    check.details.emplace_back("backend", std::string(config::ToString(c.config->state.backend)));
  });
}

// What to do about a state file that does not open, by the kind of failure: a permission problem is not
// damage, and an I/O error is the disk's, not the file's.
std::string OpenFailureSuggestion(const Status& status, const std::string& path) {
  if (status.message().find("Permission denied") != std::string::npos) {
    return "Give this user read and write access to " + path +
           " (and its folder), or run rocky as the user that owns it.";
  }
  switch (status.code()) {
    case Status::Code::kIOError:
      return "The disk reported an error reading " + path +
             " (see `dmesg`): copy the file somewhere safe, then check the disk; rocky changed nothing.";
    case Status::Code::kNotSupported:
      return "The state file was written by a newer rocky: upgrade rocky on this machine.";
    default:
      return "Inspect the state file with `rocky-inspect " + path +
             "`; `rocky state export --salvage` saves what can still be read, and a remote backend or `rocky "
             "state import` of an export can restore it.";
  }
}

// The user's rights on the state file, as the effective ids decide them (root may write a 0444 file).
// Empty when the file can be read and written; otherwise what is missing, with the file's owner and mode.
std::string AccessProblem(const std::string& path) {
  std::string missing;
  if (::faccessat(AT_FDCWD, path.c_str(), R_OK, AT_EACCESS) != 0) missing = "read";
  if (::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) {
    const bool read_only_fs = errno == EROFS;
    missing += missing.empty() ? "write" : " or write";
    if (read_only_fs) return "cannot be written: it is on a read-only filesystem";
  }
  if (missing.empty()) return {};
  struct stat st {};
  std::string owner;
  if (::stat(path.c_str(), &st) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    owner = " (owned by uid " + std::to_string(st.st_uid) + ", mode " + mode + "; this is uid " +
            std::to_string(::geteuid()) + ")";
  }
  return "cannot be " +
         std::string(missing == "read"    ? "read"
                     : missing == "write" ? "written"
                                          : "read or written") +
         " by this user" + owner;
}

Check CheckStateFile(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("state_file", [&](Check& check) {
    check.details.emplace_back("path", c.state_path);
    if (!FileExists(c.state_path)) {
      check.message = "no state file at " + c.state_path + " yet (the first run creates it)";
      return;
    }
    // A file this user cannot write opens read-only and passes every check below, yet every command that
    // changes the state would fail on it.
    if (std::string problem = AccessProblem(c.state_path); !problem.empty()) {
      check.status = Health::kCritical;
      check.message = "the state file " + c.state_path + " " + problem +
                      ": every command that changes the state (run, plan, state set, ...) fails";
      suggestions.push_back("Give this user read and write access to " + c.state_path +
                            " (chown or chmod), or run rocky as the user that owns it.");
      return;
    }
    engine::Options options;
    options.read_only = true;
    options.create_if_missing = false;
    auto db = engine::Database::Open(c.state_path, options);
    if (!db.ok()) {
      check.status = Health::kCritical;
      check.message = db.status().message();
      suggestions.push_back(OpenFailureSuggestion(db.status(), c.state_path));
      return;
    }
    // A discarded newest commit (this open fell back from it) and kept copies of earlier ones: the state
    // opens, but an acknowledged commit may be gone, and the user must look (command_support.h).
    const StateFileNotice notice = NoticeFor(c.state_path, db->get());
    const std::vector<std::string> notice_lines = NoticeLines(notice);
    if (notice.discarded) {
      check.details.emplace_back("discarded_txn", std::to_string(notice.discarded->txn_id));
      check.details.emplace_back("discarded_reason", notice.discarded->reason);
    }
    for (const std::string& copy : notice.discarded_copies)
      check.details.emplace_back("discarded_copy", copy);
    auto report = (*db)->CheckIntegrity();
    if (report.ok() && !notice_lines.empty()) {
      check.status = Health::kWarning;
      std::string message;
      for (const std::string& line : notice_lines) message += (message.empty() ? "" : " ") + line;
      check.message = message;
      suggestions.push_back(
          "Compare the state with the kept copy (rocky-inspect " +
          (notice.discarded_copies.empty() ? c.state_path : notice.discarded_copies.front()) +
          "); if watermarks went back, the next run copies those rows again (harmless), or `rocky state set` "
          "moves them; delete the copy to acknowledge.");
      check.details.emplace_back("tables", std::to_string(report->tables_checked));
      return;
    }
    if (!report.ok()) {
      check.status = Health::kCritical;
      check.message = "integrity check failed: " + report.status().message();
      suggestions.push_back(
          report.status().code() == Status::Code::kIOError
              ? OpenFailureSuggestion(report.status(), c.state_path)
              : "The state file " + c.state_path + " is damaged: run `rocky-inspect " + c.state_path +
                    "` for details; `rocky state export --salvage FILE` saves every entry "
                    "that can still be read; restore from the remote backend or an export.");
      return;
    }
    check.message = "opens and passes the integrity check (" + std::to_string(report->tables_checked) +
                    " tables, " + std::to_string(report->entries_checked) + " entries, " +
                    std::to_string(report->pages_checked) + " pages)";
    check.details.emplace_back("tables", std::to_string(report->tables_checked));
    check.details.emplace_back("entries", std::to_string(report->entries_checked));
    check.details.emplace_back("pages", std::to_string(report->pages_checked));
  });
}

// What to do about a warehouse that does not open, by what the server (or libpq) said.
std::string WarehouseOpenSuggestion(const config::AdapterConfig& adapter, const std::string& message) {
  const std::string where = "[adapter" + (adapter.name == "default" ? "" : "." + adapter.name) + "]";
  if (adapter.type != "postgres") return "Check " + where + " path.";
  if (message.find("password authentication failed") != std::string::npos ||
      message.find("no password supplied") != std::string::npos) {
    return "The server refused the credentials: check the user and password in " + where +
           " url (or PGPASSWORD, ~/.pgpass).";
  }
  if (message.find("SSL") != std::string::npos || message.find("certificate") != std::string::npos) {
    return "TLS failed: check sslmode and sslrootcert in " + where + " url against the server's TLS setup.";
  }
  if (message.find("does not exist") != std::string::npos) {
    return "Check the database and user named in " + where + " url.";
  }
  return "The server was not reached: is it running and reachable from here at the host and port of " +
         where + " url (firewall, pg_hba.conf, listen_addresses)?";
}

// The warehouse the pipelines read and write, once per adapter pair they use: it opens (for PostgreSQL, each
// server is reached and accepts the credentials; for SQLite, the folder exists and can be read: it is never
// created here), and each pipeline's schema_pattern matches at least one schema of its source catalog
// (none: a warning, since a run then copies nothing). Nothing is written.
Check CheckWarehouse(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("warehouse", [&](Check& check) {
    if (!c.config) {
      check.status = Health::kWarning;
      check.message = "not run: there is no rocky.toml, so no adapter is configured";
      return;
    }
    const config::Config& config = *c.config;
    using Pair = std::pair<const config::AdapterConfig*, const config::AdapterConfig*>;
    std::vector<Pair> pairs;
    for (const config::PipelineConfig& p : config.pipelines) {
      const Pair pair{config::FindAdapter(config, p.source_adapter),
                      config::FindAdapter(config, p.target_adapter)};
      if (pair.first == nullptr || pair.second == nullptr) continue;  // refused at load
      if (std::find(pairs.begin(), pairs.end(), pair) == pairs.end()) pairs.push_back(pair);
    }
    if (pairs.empty()) pairs.emplace_back(&config.adapter, &config.adapter);
    std::vector<std::string> said;
    auto worsen = [&](Health h, std::string text) {
      check.status = std::max(check.status, h);
      said.push_back(std::move(text));
    };
    // OpenSqliteWarehouse would create a missing folder; the doctor only looks. False (said why) when the
    // folder is not there to read.
    auto folder_ok = [&](const config::AdapterConfig& adapter) {
      std::error_code ec;
      const auto status = std::filesystem::status(adapter.path, ec);
      if (!std::filesystem::exists(status)) {
        worsen(Health::kCritical, "the SQLite warehouse folder " + adapter.path + " does not exist");
        suggestions.push_back(
            "Set [adapter] path to the folder holding the SQLite warehouse (one file per catalog and "
            "schema), or run `rocky init` to make a sample one.");
        return false;
      }
      if (!std::filesystem::is_directory(status)) {
        worsen(Health::kCritical, "the SQLite warehouse path " + adapter.path + " is not a folder");
        suggestions.push_back("Set [adapter] path to the folder holding the SQLite warehouse.");
        return false;
      }
      if (::access(adapter.path.c_str(), R_OK | X_OK) != 0) {
        worsen(Health::kCritical, "the SQLite warehouse folder " + adapter.path +
                                      " cannot be read by this user: " + std::strerror(errno));
        suggestions.push_back("Give this user read access to " + adapter.path +
                              " and its files, or run rocky as the user that owns them.");
        return false;
      }
      return true;
    };
    for (const auto& [source, target] : pairs) {
      bool folders = true;
      if (source->type == "sqlite") folders = folder_ok(*source);
      if (target != source && target->type == "sqlite") folders = folder_ok(*target) && folders;
      if (!folders) continue;
      const std::string name = warehouse::DescribeAdapter(*source) +
                               (source == target ? "" : " -> " + warehouse::DescribeAdapter(*target));
      check.details.emplace_back("warehouse", name);
      auto opened = warehouse::OpenWarehouse(*source, *target);
      if (!opened.ok()) {
        worsen(Health::kCritical, opened.status().message());
        const bool source_failed =
            source != target &&
            opened.status().message().find(warehouse::DescribeAdapter(*source)) != std::string::npos;
        suggestions.push_back(
            WarehouseOpenSuggestion(source_failed ? *source : *target, opened.status().message()));
        continue;
      }
      said.push_back(name + " opens");
      for (const config::PipelineConfig& p : config.pipelines) {
        if (config::FindAdapter(config, p.source_adapter) != source ||
            config::FindAdapter(config, p.target_adapter) != target)
          continue;
        auto schemas = (*opened)->ListSchemas(p.source_catalog);
        if (!schemas.ok()) {
          worsen(Health::kCritical, "pipeline " + p.name + ": " + schemas.status().message());
          suggestions.push_back("Check [pipeline." + p.name + ".source] catalog: `rocky plan` fails on it.");
          continue;
        }
        size_t matched = 0;
        for (const std::string& schema : *schemas) {
          if (warehouse::MatchSchema(p.schema_pattern, schema)) ++matched;
        }
        check.details.emplace_back("pipeline." + p.name + ".schemas", std::to_string(matched));
        if (matched == 0) {
          std::string some;
          for (size_t i = 0; i < schemas->size() && i < 5; ++i) some += (i > 0 ? ", " : "") + (*schemas)[i];
          worsen(Health::kWarning, "pipeline " + p.name + ": no schema of catalog '" + p.source_catalog +
                                       "' matches its schema_pattern (prefix '" + p.schema_pattern.prefix +
                                       "'), so a run copies nothing");
          suggestions.push_back("Check [pipeline." + p.name +
                                ".source] schema_pattern against the schemas of '" + p.source_catalog + "'" +
                                (some.empty() ? " (it has none)" : ": " + some) + ".");
        } else {
          said.push_back("pipeline " + p.name + " matches " + std::to_string(matched) +
                         (matched == 1 ? " schema" : " schemas"));
        }
      }
    }
    for (const std::string& text : said) check.message += (check.message.empty() ? "" : "; ") + text;
  });
}

Check CheckStateSchema(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("state_schema", [&](Check& check) {
    check.details.emplace_back("supported", std::to_string(state::kSchemaVersion));
    auto store =
        state::StateStore::Open(c.state_path, state::StoreOptions{.mode = state::OpenMode::kReadOnly});
    if (!store.ok()) {
      check.status = Health::kCritical;
      check.message = store.status().message();
      if (store.status().code() == Status::Code::kNotSupported) {
        suggestions.push_back("The state was written by a newer rocky: upgrade rocky on this machine.");
      }
      return;
    }
    auto version = (*store)->SchemaVersionOnDisk();
    if (!version.ok()) {
      check.status = Health::kCritical;
      check.message = version.status().message();
      return;
    }
    if (!*version) {
      check.message =
          "no schema version stamped yet (stamped by the first write); this build writes version " +
          std::to_string(state::kSchemaVersion);
      return;
    }
    check.details.emplace_back("on_disk", std::to_string(**version));
    check.message = "schema version " + std::to_string(**version) + " (this build supports up to " +
                    std::to_string(state::kSchemaVersion) + ")";
  });
}

// For the local backend: the folder of the state file must take a new file (the engine writes the state in
// place, but the remote download and `state import` need to create files beside it). Never throws: this is
// the path that diagnoses an unusable folder, so every filesystem call reports its error instead.
void ProbeLocal(const Context& c, Check& check, std::vector<std::string>& suggestions) {
  std::filesystem::path dir = std::filesystem::path(c.state_path).parent_path();
  if (dir.empty()) dir = ".";
  const std::string probe = (dir / (".rocky-doctor-probe-" + RandomHex(8))).string();
  check.details.emplace_back("backend", "local");
  check.details.emplace_back("location", dir.string());
  const std::string payload = "rocky doctor probe " + RandomHex(16);
  auto cannot = [&](const std::string& what, int err) {
    check.status = Health::kCritical;
    check.message =
        "cannot " + what + " a file in " + dir.string() + " (the state's folder): " + std::strerror(err);
    suggestions.push_back(
        err == EACCES || err == EPERM || err == EROFS
            ? "Make " + dir.string() + " writable by this user, or pass --state-path elsewhere."
            : "Check " + dir.string() +
                  " (does it exist, is it a folder, is the disk healthy?), or pass --state-path elsewhere.");
  };
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return cannot("create", errno);
  const bool written = ::write(fd, payload.data(), payload.size()) == static_cast<ssize_t>(payload.size());
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(probe.c_str());
    return cannot("write", write_errno);
  }
  std::string back(payload.size() + 1, '\0');
  const int in = ::open(probe.c_str(), O_RDONLY | O_CLOEXEC);
  ssize_t got = -1;
  if (in >= 0) {
    got = ::read(in, back.data(), back.size());
    ::close(in);
  }
  const bool same =
      got == static_cast<ssize_t>(payload.size()) && back.compare(0, payload.size(), payload) == 0;
  const bool removed = ::unlink(probe.c_str()) == 0;
  const int unlink_errno = errno;
  if (!same) {
    check.status = Health::kCritical;
    check.message = "a probe file in " + dir.string() + " read back differently than written";
    return;
  }
  if (!removed) {
    check.status = Health::kWarning;
    check.message = "cannot delete the probe file " + probe + ": " + std::strerror(unlink_errno);
    return;
  }
  check.message = "wrote, read back and deleted a probe file in " + dir.string();
}

// The configured remote backend, or null with `check` made critical saying why it cannot be opened.
std::unique_ptr<sync::RemoteStateBackend> OpenBackend(const config::StateConfig& state, Check& check) {
  auto backend = sync::OpenRemoteStateBackend(state, sync::ProcessEnvironment());
  if (!backend.ok()) {
    check.status = Health::kCritical;
    check.message = backend.status().message();
    return nullptr;
  }
  return std::move(*backend);
}

// The deadline a run gives one transfer: transfer_timeout_seconds from now.
std::chrono::steady_clock::time_point TransferDeadline(const config::StateConfig& state) {
  return std::chrono::steady_clock::now() + std::chrono::seconds(state.transfer_timeout_seconds);
}

Check CheckStateRw(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("state_rw", [&](Check& check) {
    if (!c.config || c.config->state.backend == config::StateBackend::kLocal) {
      ProbeLocal(c, check, suggestions);
      return;
    }
    const config::StateConfig& state = c.config->state;
    std::unique_ptr<sync::RemoteStateBackend> backend = OpenBackend(state, check);
    if (backend == nullptr) {
      suggestions.push_back("Complete [state] in " + c.config->source_path + " as the message says.");
      return;
    }
    check.details.emplace_back("backend", std::string(backend->Kind()));
    const auto deadline = TransferDeadline(state);
    std::vector<sync::ProbeLeg> legs = backend->Probe(deadline);
    std::string message;
    for (const sync::ProbeLeg& leg : legs) {
      check.details.emplace_back(leg.backend + "_location", leg.location);
      check.details.emplace_back(leg.backend + "_latency_ms", std::to_string(leg.latency.count()));
      if (!message.empty()) message += "; ";
      if (leg.status.ok()) {
        message += leg.backend + ": wrote, read back and deleted a probe object in " +
                   std::to_string(leg.latency.count()) + " ms";
        continue;
      }
      // For tiered, Valkey is the cache: its failure slows runs down but loses nothing.
      const bool cache_leg = backend->Kind() == "tiered" && leg.backend == "valkey";
      const Health leg_health = cache_leg ? Health::kWarning : Health::kCritical;
      if (leg_health > check.status) check.status = leg_health;
      message += leg.backend + " failed (" + std::string(base::CodeName(leg.status.code())) +
                 "): " + leg.status.message();
      check.details.emplace_back(leg.backend + "_error", std::string(base::CodeName(leg.status.code())));
      if (!leg.hint.empty()) suggestions.push_back(leg.backend + ": " + leg.hint);
    }
    check.message = message.empty() ? "the backend reported no probe" : message;
    if (legs.empty()) check.status = Health::kCritical;
  });
}

// The remote state object itself: downloaded (without retries, within transfer_timeout_seconds) into a
// temporary folder and verified in full, as a run's download is. A corrupt or foreign object makes every
// run's download fail and so skip its upload, for good: this names it and the way out.
Check CheckRemoteState(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("remote_state", [&](Check& check) {
    if (!c.config || c.config->state.backend == config::StateBackend::kLocal) {
      check.message = "the state is local: there is no remote state to check";
      return;
    }
    const config::StateConfig& state = c.config->state;
    std::unique_ptr<sync::RemoteStateBackend> backend = OpenBackend(state, check);
    if (backend == nullptr) return;
    const std::string location = backend->Location();
    check.details.emplace_back("location", location);
    auto folder = base::TempFolder::Create("doctor");
    if (!folder.ok()) {
      check.status = Health::kCritical;
      check.message = folder.status().message();
      return;
    }
    const auto deadline = TransferDeadline(state);
    auto fetched = backend->Download(folder->path() + "/state.redb", deadline);
    if (fetched.ok()) {
      if (!fetched->has_value()) {
        check.message = "no remote state at " + location + " yet (the first run uploads it)";
        return;
      }
      check.details.emplace_back("bytes", std::to_string((*fetched)->bytes));
      check.message = "the remote state at " + location + " downloads and passes verification (" +
                      std::to_string((*fetched)->bytes) + " bytes)";
      return;
    }
    const Status& error = fetched.status();
    check.status = Health::kCritical;
    check.details.emplace_back("error", std::string(base::CodeName(error.code())));
    if (error.IsCorruption() || error.code() == Status::Code::kNotSupported) {
      check.message =
          "the remote state at " + location + " cannot be used: " + error.message() +
          ". Every run's download fails on it, so every run skips its upload and the remote state "
          "stays like this";
      suggestions.push_back("If the local state file " + c.state_path +
                            " is the state to keep (check it with `rocky state` and " + "`rocky-inspect " +
                            c.state_path + "`), replace the remote one with it: `rocky state push --force`.");
      return;
    }
    check.message = "the remote state at " + location + " could not be downloaded: " + error.message() +
                    " (state_rw says why the backend cannot be reached)";
  });
}

// The lease on the remote state (sync/state_lease.h), as the server judges it; for a local state, its file's
// writer lock. A lease held by a run is normal (healthy); one that expired without being released means its
// holder died (warning: the next command takes it over); one that cannot be read fails every command that
// changes the state (critical).
Check CheckLease(const Context& c, std::vector<std::string>& suggestions) {
  return Timed("lease", [&](Check& check) {
    if (!c.config || c.config->state.backend == config::StateBackend::kLocal) {
      const std::optional<int64_t> pid = StateFileWriterPid(c.state_path);
      check.details.emplace_back("backend", "local");
      check.details.emplace_back("state", pid ? "held" : "free");
      if (pid) check.details.emplace_back("pid", std::to_string(*pid));
      check.message = "the state is local: its lock is the state file's writer lock, " +
                      (pid ? "held by process " + std::to_string(*pid) + " now"
                           : std::string("free (no process has the file open for writing)"));
      return;
    }
    const config::StateConfig& state = c.config->state;
    std::unique_ptr<sync::RemoteStateBackend> backend = OpenBackend(state, check);
    if (backend == nullptr) return;
    auto store = backend->OpenLease();
    if (!store.ok()) {
      check.status = Health::kCritical;
      check.message = store.status().message();
      return;
    }
    const std::string location = (*store)->Location();
    check.details.emplace_back("location", location);
    const auto deadline = TransferDeadline(state);
    auto seen = (*store)->Inspect(deadline);
    if (!seen.ok()) {
      check.status = Health::kCritical;
      check.details.emplace_back("error", std::string(base::CodeName(seen.status().code())));
      check.message = "the lease at " + location + " cannot be read: " + seen.status().message() +
                      "; every command that changes the state must take it first (state_rw says why the "
                      "backend cannot be reached)";
      return;
    }
    const sync::LeaseInfo& info = *seen;
    check.details.emplace_back("state", std::string(sync::LeaseStateName(info.state)));
    auto who = [](const sync::LeaseRecord& r) {
      return r.host + ", pid " + std::to_string(r.pid) + " (rocky " + r.command + ", since " + r.started_at +
             ")";
    };
    if (info.holder) {
      check.details.emplace_back("host", info.holder->host);
      check.details.emplace_back("pid", std::to_string(info.holder->pid));
      check.details.emplace_back("command", info.holder->command);
      check.details.emplace_back("started_at", info.holder->started_at);
    }
    if (!info.expires_at.empty()) check.details.emplace_back("expires_at", info.expires_at);
    if (!info.unreadable.empty()) {
      check.status = Health::kCritical;
      check.message = "something that is not a rocky lease is at " + location + " (" + info.unreadable +
                      "): every command that changes the state refuses to take it";
      suggestions.push_back("Look at it, then remove it with `rocky state unlock --yes`.");
      return;
    }
    switch (info.state) {
      case sync::LeaseInfo::State::kFree:
        if (info.last_expired && info.holder) {
          check.status = Health::kWarning;
          check.details.emplace_back("last_expired", "true");
          check.message = "free, but the last lease (" + who(*info.holder) +
                          ") expired instead of being released: its holder crashed or was cut off";
          suggestions.push_back("Check what happened to " + info.holder->host + " (pid " +
                                std::to_string(info.holder->pid) +
                                "); the next command takes the lease as usual.");
        } else {
          check.message = "free: no command holds the lease on " + location;
        }
        return;
      case sync::LeaseInfo::State::kHeld:
        check.details.emplace_back("expires_in_ms", std::to_string(info.expires_in.count()));
        check.message = "held by " + (info.holder ? who(*info.holder) : std::string("?")) +
                        "; it expires in " + std::to_string((info.expires_in.count() + 999) / 1000) +
                        " s by the server's clock unless renewed";
        return;
      case sync::LeaseInfo::State::kExpired:
        check.status = Health::kWarning;
        check.message = "expired: the lease of " + (info.holder ? who(*info.holder) : std::string("?")) +
                        " was not renewed in time (its holder crashed or was cut off); the next command "
                        "takes it over";
        suggestions.push_back("Nothing to do for the lease itself; check what happened to its holder.");
        return;
    }
  });
}

int RunDoctor(const CommandContext& ctx) {
  const Invocation& inv = ctx.invocation;
  // The parser has already refused a name that is not one of kCheckNames (the flag's choices).
  std::optional<std::string_view> only = inv.Get("check");
  Context c;
  c.state_path = StatePath(inv);
  auto loaded = LoadConfigIfPresent(inv);
  if (loaded.ok()) {
    c.config = std::move(*loaded);
  } else {
    c.config_status = loaded.status();
  }

  std::vector<std::string> suggestions;
  std::vector<Check> checks;
  auto wanted = [&](std::string_view name) { return !only || *only == name; };
  if (wanted("config")) checks.push_back(CheckConfig(c, inv, suggestions));
  // The checks that need the configuration: when it does not load, each is critical and says it did not run
  // (`why` is added to that message).
  auto needing_config = [&](std::string_view name, const std::string& why, auto run) {
    if (!wanted(name)) return;
    if (c.config_status.ok()) {
      checks.push_back(run());
      return;
    }
    checks.push_back(Check{.name = std::string(name),
                           .status = Health::kCritical,
                           .message = "not run: the configuration does not load" + why,
                           .duration_ms = 0,
                           .details = {}});
  };
  needing_config("warehouse", "", [&] { return CheckWarehouse(c, suggestions); });
  if (wanted("state_file")) checks.push_back(CheckStateFile(c, suggestions));
  if (wanted("state_schema")) checks.push_back(CheckStateSchema(c, suggestions));
  needing_config("remote_state", "", [&] { return CheckRemoteState(c, suggestions); });
  needing_config("lease", "", [&] { return CheckLease(c, suggestions); });
  needing_config("state_rw", " (" + c.config_status.message() + ")",
                 [&] { return CheckStateRw(c, suggestions); });
  Health overall = Health::kHealthy;
  for (const Check& check : checks) overall = std::max(overall, check.status);
  // Messages carry servers' words and URLs: redacted once, here, before anything is printed.
  for (Check& check : checks) {
    check.message = ForOutput(check.message);
    for (auto& [key, value] : check.details) value = ForOutput(value);
  }
  for (std::string& s : suggestions) s = ForOutput(s);

  if (FormatOf(inv) == OutputFormat::kJson) {
    JsonWriter json = BeginJson("doctor");
    json.Key("overall").String(HealthName(overall));
    json.Key("checks").BeginArray();
    for (const Check& check : checks) {
      json.BeginObject()
          .Key("name")
          .String(check.name)
          .Key("status")
          .String(HealthName(check.status))
          .Key("message")
          .String(check.message)
          .Key("duration_ms")
          .UInt(check.duration_ms);
      json.Key("details").BeginArray();
      for (const auto& [key, value] : check.details) json.BeginArray().String(key).String(value).EndArray();
      json.EndArray().EndObject();
    }
    json.EndArray();
    json.Key("suggestions").BeginArray();
    for (const std::string& s : suggestions) json.String(s);
    json.EndArray().EndObject();
    ctx.out << json.str() << '\n';
  } else {
    Table table({"check", "status", "ms", "message"});
    table.SetAlign(2, Table::Align::kRight);
    for (const Check& check : checks) {
      table.AddRow({check.name, std::string(HealthName(check.status)), std::to_string(check.duration_ms),
                    check.message});
    }
    ctx.out << table.Render();
    for (const std::string& s : suggestions) ctx.out << "Suggestion: " << s << '\n';
    ctx.out << "Overall: " << HealthName(overall) << '\n';
  }
  return overall == Health::kCritical ? kExitFailure : kExitOk;
}

}  // namespace

CommandSpec DoctorCommand() {
  return CommandSpec{
      .name = "doctor",
      .summary = "Check the configuration, the state file and the state backend",
      .description =
          "Run health checks and say what to fix. Checks: config (rocky.toml loads), warehouse (each\n"
          "adapter pair the pipelines use opens: a PostgreSQL server reached with its credentials accepted,\n"
          "an SQLite folder that exists and can be read; each pipeline's schema_pattern matches a schema),\n"
          "state_file (opens,\n"
          "passes the integrity check, and no commit was discarded), state_schema (a supported version),\n"
          "remote_state (the remote state object downloads and verifies), lease (the remote state's lease:\n"
          "free, held by whom, or expired, by the server's clock; for a local state, its file's writer\n"
          "lock), state_rw (a probe object written, read back and deleted on the configured backend).\n"
          "Remote checks make no retries and are bounded by transfer_timeout_seconds. Exit 1 when any check\n"
          "is critical.",
      .flags = {FlagSpec{.name = "check",
                         .value_name = "NAME",
                         .help = "Run only this check",
                         .choices = {"config", "warehouse", "state_file", "state_schema", "remote_state",
                                     "lease", "state_rw"}}},
      .handler = RunDoctor,
  };
}

}  // namespace rocky::cli
