// The Valkey lease (state_lease.h): a key the server expires (SET NX PX), renewed and released only by its
// holder, which Lua scripts check inside the server (EVAL runs atomically: no other command runs between the
// comparison and the write).
#include "valkey_lease_store.h"

#include <cstdlib>

#include "rocky/base/timestamp.h"

namespace rocky::sync {

namespace {

using std::chrono::milliseconds;

// KEYS[1] the lease, KEYS[2] the last take's record. Returns {value or nil, PTTL, TIME, last or nil}.
constexpr std::string_view kReadScript =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('TIME'), "
    "redis.call('GET', KEYS[2])}";

// ARGV[1] the holder's current value, ARGV[2] the renewed one, ARGV[3] the TTL in ms. 1 when renewed (the
// value is ARGV[1], or already ARGV[2]: this renewal's earlier attempt landed and its reply was lost), else
// 0.
constexpr std::string_view kRenewScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] or v == ARGV[2] then "
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 "
    "end "
    "return 0";

// ARGV[1] the holder's current value, ARGV[2] its record at take time (what KEYS[2] holds while nobody else
// took the lease since), ARGV[3] the value of a renewal whose reply never came (it may have landed). 1
// released, 0 absent, -1 another holder's.
constexpr std::string_view kReleaseScript =
    "local v = redis.call('GET', KEYS[1]) "
    "local r = 0 "
    "if v == ARGV[1] or v == ARGV[3] then redis.call('DEL', KEYS[1]) r = 1 elseif v then r = -1 end "
    "if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end "
    "return r";

// ARGV[1] the lease's value as seen ('' when it was free). 1 broken (both keys gone), -1 it changed.
constexpr std::string_view kBreakScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if ARGV[1] ~= '' and v and v ~= ARGV[1] then return -1 end "
    "if ARGV[1] == '' and v then return -1 end "
    "redis.call('DEL', KEYS[1], KEYS[2]) return 1";

class ValkeyLeaseStore final : public LeaseStore {
 public:
  ValkeyLeaseStore(ValkeyClientOptions options, const std::string& prefix)
      : key_(prefix + "state.redb.lease"), last_key_(key_ + ".last"), client_(std::move(options)) {}

  std::string_view Kind() const override { return "valkey"; }
  std::string Key() const override { return key_; }
  std::string Location() const override { return client_.url().redacted + " key " + key_; }
  void set_stoppable(bool stoppable) override { client_.set_stoppable(stoppable); }
  void set_cancel(const std::atomic<bool>* cancel) override { client_.set_cancel(cancel); }

  Result<TakeResult> TryTake(const LeaseRecord& mine, Deadline deadline) override {
    const std::string value = mine.ToJson();
    const std::string ttl = std::to_string(mine.lease_ms);
    for (int round = 0; round < 4; ++round) {
      auto set = client_.Command({"SET", key_, value, "NX", "PX", ttl}, deadline);
      if (!set.ok()) return set.status();  // the caller names the lease
      bool ours = !set->is_nil();
      if (!ours) {
        ROCKY_ASSIGN_OR_RETURN(LeaseInfo seen, Read(deadline));
        if (seen.state == LeaseInfo::State::kFree) continue;  // expired or released in between: again
        // This same record: an earlier attempt landed and its reply was lost.
        ours = seen.version == value;
        if (!ours) {
          if (!seen.unreadable.empty()) {
            return Status::Corruption("the lease " + Location() + " is not a rocky lease (" +
                                      seen.unreadable +
                                      "): nothing takes it over; `rocky state unlock --yes` removes it");
          }
          return TakeResult{Taken::kBusy, seen};
        }
      }
      value_ = value;
      first_value_ = value;
      // The previous take's record, still there when its holder never released it: its lease expired.
      auto last = client_.Command({"SET", last_key_, value, "GET"}, deadline);
      if (!last.ok()) return last.status();
      if (!last->is_nil() && last->str() != value) {
        TakeResult over{Taken::kTakenOver, {}};
        over.seen.state = LeaseInfo::State::kExpired;
        auto record = LeaseRecord::FromJson(last->str());
        if (record.ok()) over.seen.holder = *record;
        return over;
      }
      return TakeResult{Taken::kAcquired, {}};
    }
    return Status::IOError("taking the lease " + Location() +
                           ": it kept changing while being read (contention)");
  }

  Result<std::optional<LeaseInfo>> Renew(const LeaseRecord& next, Deadline deadline) override {
    const std::string value = next.ToJson();
    pending_value_ = value;
    auto renewed = client_.Command(
        {"EVAL", kRenewScript, "1", key_, value_, value, std::to_string(next.lease_ms)}, deadline);
    if (!renewed.ok()) return renewed.status().WithContext("renewing the lease " + Location());
    if (renewed->integer() == 1) {
      value_ = value;
      return std::optional<LeaseInfo>();
    }
    ROCKY_ASSIGN_OR_RETURN(LeaseInfo seen, Read(deadline));
    return std::optional<LeaseInfo>(std::move(seen));
  }

  Result<Released> Release(Deadline deadline) override {
    auto released = client_.Command(
        {"EVAL", kReleaseScript, "2", key_, last_key_, value_, first_value_, pending_value_}, deadline);
    if (!released.ok()) return released.status().WithContext("releasing the lease " + Location());
    switch (released->integer()) {
      case 1: return Released::kReleased;
      case 0: return Released::kAbsent;
      default: return Released::kNotOurs;
    }
  }

  Result<LeaseInfo> Inspect(Deadline deadline) override { return Read(deadline); }

  Status Break(const LeaseInfo& seen, Deadline deadline) override {
    const std::string expected = seen.state == LeaseInfo::State::kFree ? std::string() : seen.version;
    auto broken = client_.Command({"EVAL", kBreakScript, "2", key_, last_key_, expected}, deadline);
    if (!broken.ok()) return broken.status().WithContext("breaking the lease " + Location());
    if (broken->integer() != 1) {
      return Status::Busy(
          "the lease " + Location() +
          " changed while it was being broken (renewed, or taken by another runner): look again");
    }
    return Status::OK();
  }

 private:
  // The lease, its TTL and the server's time, in one script (one instant of the server's clock).
  Result<LeaseInfo> Read(Deadline deadline) {
    auto reply = client_.Command({"EVAL", kReadScript, "2", key_, last_key_}, deadline);
    if (!reply.ok()) return reply.status().WithContext("reading the lease " + Location());
    if (reply->size() != 4 || (*reply)[2].size() != 2) {
      return Status::IOError(client_.what() + ": unexpected reply reading the lease " + key_);
    }
    LeaseInfo info;
    const ValkeyReplyView value = (*reply)[0], last = (*reply)[3];
    const long long ttl_ms = (*reply)[1].integer();
    if (value.is_nil()) {
      // Free. A last record still there is a holder that never released: its lease expired.
      if (!last.is_nil()) {
        auto record = LeaseRecord::FromJson(last.str());
        if (record.ok()) {
          info.holder = *record;
          info.last_expired = true;
        }
      }
      return info;
    }
    info.state = LeaseInfo::State::kHeld;
    info.version = std::string(value.str());
    auto record = LeaseRecord::FromJson(value.str());
    if (record.ok()) {
      info.holder = *record;
    } else {
      info.unreadable = record.status().message();
    }
    if (ttl_ms >= 0) {
      info.expires_in = milliseconds(ttl_ms);
      const long long seconds = std::strtoll(std::string((*reply)[2][0].str()).c_str(), nullptr, 10);
      const long long micros = std::strtoll(std::string((*reply)[2][1].str()).c_str(), nullptr, 10);
      const auto server_now = std::chrono::system_clock::time_point(std::chrono::seconds(seconds) +
                                                                    std::chrono::microseconds(micros));
      info.expires_at =
          base::FormatUtc(server_now + milliseconds(ttl_ms) + milliseconds(999));  // rounded up to a second
    } else if (info.unreadable.empty()) {
      // -1: a key without a TTL that parses as a lease, written by hand: it never expires.
      info.unreadable = "the key has no TTL, so it would never expire";
    }
    return info;
  }

  std::string key_;
  std::string last_key_;
  ValkeyClient client_;
  std::string value_;          // this holder's current value
  std::string first_value_;    // its value at take time (what last_key_ holds)
  std::string pending_value_;  // the last renewal sent (landed or not)
};

}  // namespace

std::unique_ptr<LeaseStore> NewValkeyLeaseStore(ValkeyClientOptions options, const std::string& prefix) {
  return std::make_unique<ValkeyLeaseStore>(std::move(options), prefix);
}

}  // namespace rocky::sync
