// fuzz_ops: the input drives a sequence of operations against a std::map model, with a crash (power loss)
// injected at an input-chosen write or sync. After recovery the database must hold exactly the state of a
// commit no older than the last commit that returned success, and the integrity check (allocated pages ==
// reachable pages) must pass.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rocky/engine/db.h"
#include "rocky/engine/fault_injection_env.h"

using namespace rocky::engine;

namespace {

using Model = std::map<std::string, std::map<std::string, std::string>>;  // table -> key -> value

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_ops invariant violated: %s\n", why.c_str());
  std::abort();
}

Model ReadAll(Database& db) {
  Model out;
  auto r = db.BeginRead();
  if (!r.ok()) Fail("BeginRead after recovery: " + r.status().ToString());
  auto tables = (*r)->ListTables();
  if (!tables.ok()) Fail("ListTables after recovery: " + tables.status().ToString());
  for (const auto& name : *tables) {
    auto t = (*r)->OpenTable(name);
    if (!t.ok()) Fail("OpenTable after recovery: " + t.status().ToString());
    auto& m = out[name];
    auto c = (*t)->NewCursor();
    for (c->SeekToFirst(); c->Valid(); c->Next()) m.emplace(c->key(), c->value());
    if (!c->status().ok()) Fail("scan after recovery: " + c->status().ToString());
    if ((*t)->Len() != m.size()) Fail("Len() differs from the scan");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  FaultInjectionEnv env;
  Options o;
  o.env = &env;
  // A small cache: the default 64 MiB costs more to set up than a whole run on a small input (the fuzzer
  // made ~50 runs a second with it), and a small one exercises eviction as well.
  o.cache_bytes = 256 << 10;
  const uint32_t page_sizes[] = {512, 1024, 4096};
  o.page_size = page_sizes[in.ConsumeIntegralInRange<int>(0, 2)];
  const bool arm_crash = in.ConsumeBool();
  const uint64_t crash_after = in.ConsumeIntegralInRange<uint64_t>(0, 400);

  auto opened = Database::Open("/ops.redb", o);
  if (!opened.ok()) Fail("open of a new file: " + opened.status().ToString());
  std::unique_ptr<Database> db = std::move(opened).value();
  if (arm_crash) env.CrashAfterOps(crash_after);

  // Tables are created on first use, so the model holds every table a transaction touched, even empty.
  Model committed;              // state of the last commit that returned OK (durable or not)
  Model durable;                // state of the last durable commit that returned OK
  std::vector<Model> in_doubt;  // durable commits that failed: each may or may not have reached the disk
  Model working;                // state inside the open transaction
  std::unique_ptr<WriteTransaction> txn;
  bool txn_durable = true;
  bool failed = false;

  auto ensure_txn = [&]() -> bool {
    if (txn) return true;
    WriteOptions wo;
    txn_durable = in.ConsumeBool();
    wo.durability = txn_durable ? Durability::kDurable : Durability::kNoSync;
    auto w = db->BeginWrite(wo);
    if (!w.ok()) return false;
    txn = std::move(w).value();
    working = committed;
    return true;
  };
  // Close and Compact first make kNoSync commits durable.
  auto flushed = [&](const Status& s) {
    if (s.ok()) {
      durable = committed;
    } else {
      in_doubt.push_back(committed);
    }
    return s.ok();
  };
  auto table_name = [&]() {
    return std::string(1, static_cast<char>('a' + in.ConsumeIntegralInRange<int>(0, 2)));
  };
  // A key: input bytes, and in one case of four behind a run of 'L' of up to three pages, so long keys (past
  // the inline key limit, with overflow runs) share long prefixes and differ only near their ends, and the
  // engine must read key runs to order them.
  auto make_key = [&](size_t max_tail) {
    std::string key = in.ConsumeRandomLengthString(max_tail);
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
      key.insert(0, std::string(in.ConsumeIntegralInRange<size_t>(0, 3 * o.page_size), 'L'));
    }
    return key;
  };

  // ROCKY_FUZZ_TRACE=1 prints the operations, for reproducing a crash input by hand.
  const bool trace = std::getenv("ROCKY_FUZZ_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr, "page_size=%u crash=%d after=%llu\n", o.page_size, arm_crash,
                 (unsigned long long)crash_after);
  while (!failed && in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 9);
    if (trace)
      std::fprintf(stderr, "op %d (ops so far %llu, txn open %d)\n", op, (unsigned long long)env.OpCount(),
                   txn != nullptr);
    switch (op) {
      case 0:
      case 1:
      case 2: {  // insert
        if (!ensure_txn()) {
          failed = true;
          break;
        }
        const std::string name = table_name();
        std::string key = make_key(40);
        const size_t vlen = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(0, 64)
                                             : in.ConsumeIntegralInRange<size_t>(0, 3 * o.page_size);
        std::string value(vlen, static_cast<char>(in.ConsumeIntegral<uint8_t>()));
        auto t = txn->OpenTable(name);
        if (!t.ok()) {
          failed = true;
          break;
        }
        auto r = (*t)->Insert(key, value);
        if (!r.ok()) {
          failed = true;
          break;
        }
        auto& m = working[name];
        if (r.value() != (m.count(key) == 1)) Fail("Insert's replaced flag is wrong");
        m[key] = value;
        break;
      }
      case 3: {  // remove
        if (!ensure_txn()) {
          failed = true;
          break;
        }
        const std::string name = table_name();
        std::string key = make_key(40);
        auto t = txn->OpenTable(name);
        if (!t.ok()) {
          failed = true;
          break;
        }
        auto r = (*t)->Remove(key);
        if (!r.ok()) {
          failed = true;
          break;
        }
        auto& m = working[name];
        if (r.value() != (m.erase(key) == 1)) Fail("Remove's existed flag is wrong");
        break;
      }
      case 4: {  // get and range scan inside the transaction
        if (!ensure_txn()) {
          failed = true;
          break;
        }
        const std::string name = table_name();
        auto t = txn->OpenTable(name);
        if (!t.ok()) {
          failed = true;
          break;
        }
        auto& m = working[name];
        const std::string prefix = make_key(3);
        auto c = (*t)->NewCursor(KeyRange::Prefix(prefix));
        auto it = m.lower_bound(prefix);
        for (c->SeekToFirst(); c->Valid(); c->Next(), ++it) {
          if (it == m.end() || it->first.compare(0, prefix.size(), prefix) != 0 || it->first != c->key() ||
              it->second != c->value()) {
            Fail("prefix scan differs from the model");
          }
        }
        if (!c->status().ok()) {
          failed = true;
          break;
        }
        if (it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0)
          Fail("prefix scan stopped early");
        break;
      }
      case 5: {  // remove a range
        if (!ensure_txn()) {
          failed = true;
          break;
        }
        const std::string name = table_name();
        auto t = txn->OpenTable(name);
        if (!t.ok()) {
          failed = true;
          break;
        }
        const std::string prefix = make_key(2);
        auto r = (*t)->RemoveRange(KeyRange::Prefix(prefix));
        if (!r.ok()) {
          failed = true;
          break;
        }
        auto& m = working[name];
        uint64_t n = 0;
        for (auto it = m.lower_bound(prefix);
             it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
          it = m.erase(it);
          ++n;
        }
        if (n != r.value()) Fail("RemoveRange count differs from the model");
        break;
      }
      case 6: {  // commit
        if (!txn) break;
        Status s = txn->Commit();
        txn.reset();
        if (!s.ok()) {
          if (txn_durable) in_doubt.push_back(working);
          failed = true;
          break;
        }
        committed = working;
        if (txn_durable) durable = committed;
        break;
      }
      case 7: {  // abort
        if (txn) txn->Abort();
        txn.reset();
        working = committed;
        break;
      }
      case 8: {  // delete a table
        if (!ensure_txn()) {
          failed = true;
          break;
        }
        const std::string name = table_name();
        auto r = txn->DeleteTable(name);
        if (!r.ok()) {
          failed = true;
          break;
        }
        if (r.value() != (working.count(name) == 1)) Fail("DeleteTable's existed flag is wrong");
        working.erase(name);
        break;
      }
      case 9: {  // reopen or compact
        if (txn) {
          txn->Abort();
          txn.reset();
        }
        if (in.ConsumeBool()) {
          if (!flushed(db->Compact())) {
            failed = true;
            break;
          }
        } else {
          const bool ok = flushed(db->Close());
          db.reset();
          if (!ok) {
            failed = true;
            break;
          }
          auto again = Database::Open("/ops.redb", o);
          if (!again.ok()) {
            failed = true;
            break;
          }
          db = std::move(again).value();
        }
        break;
      }
    }
  }
  txn.reset();
  if (db) flushed(db->Close());
  db.reset();

  const auto mode = static_cast<FaultInjectionEnv::LossMode>(in.ConsumeIntegralInRange<int>(0, 2));
  if (trace)
    std::fprintf(stderr, "power loss mode %d after %llu ops, failed=%d\n", (int)mode,
                 (unsigned long long)env.OpCount(), failed);
  env.PowerLoss(mode, in.ConsumeIntegral<uint64_t>());
  auto recovered = Database::Open("/ops.redb", o);
  if (!recovered.ok()) Fail("reopen after power loss: " + recovered.status().ToString());
  auto report = (*recovered)->CheckIntegrity();
  if (!report.ok()) Fail("integrity after power loss: " + report.status().ToString());
  const Model state = ReadAll(**recovered);
  if (state == durable) return 0;
  for (const Model& m : in_doubt) {
    if (state == m) return 0;
  }
  auto describe = [](const Model& m) {
    std::string out = "{";
    for (const auto& [table, keys] : m) out += table + ":" + std::to_string(keys.size()) + " ";
    return out + "}";
  };
  std::string doubt;
  for (const Model& m : in_doubt) doubt += describe(m);
  Fail("recovered state " + describe(state) + " is neither the last durable commit " + describe(durable) +
       " nor a commit in doubt " + doubt);
}
