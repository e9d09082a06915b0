// The S3 lease (state_lease.h): one small JSON object beside the state object, written only with conditions.
#include "s3_lease_store.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "rocky/base/timestamp.h"

namespace rocky::sync {

namespace {

using std::chrono::milliseconds;

int Digits(std::string_view s) {
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 10 + (c - '0');
  }
  return s.empty() ? -1 : v;
}

class S3LeaseStore final : public LeaseStore {
 public:
  S3LeaseStore(S3Config config, CredentialsSource credentials, std::shared_ptr<CredentialsProvider> keepalive)
      : key_(config.prefix + "state.redb.lease"),
        location_("s3://" + config.bucket + "/" + key_ +
                  (config.endpoint.empty() ? std::string() : " at " + config.endpoint)),
        keepalive_(std::move(keepalive)),
        client_(std::move(config), std::move(credentials)) {}

  std::string_view Kind() const override { return "s3"; }
  std::string Key() const override { return key_; }
  std::string Location() const override { return location_; }
  void set_stoppable(bool stoppable) override { client_.set_stoppable(stoppable); }
  void set_cancel(const std::atomic<bool>* cancel) override { client_.set_cancel(cancel); }

  Result<TakeResult> TryTake(const LeaseRecord& mine, Deadline deadline) override {
    ScopedDeadline scoped(client_, deadline);
    token_ = mine.token;
    const std::string body = mine.ToJson();
    auto created = client_.PutBytes(key_, body, WriteCondition::IfAbsent());
    if (created.ok()) {
      etag_ = created->etag;
      return TakeResult{Taken::kAcquired, {}};
    }
    if (!created.status().IsBusy()) return created.status();
    // Someone's lease is there (or was, an instant ago). Read it and judge it by the server's clock; the
    // reads and writes below can race with other takers, so a few rounds are allowed before giving the
    // contention back to the caller's retry policy as a transient failure.
    for (int round = 0; round < 4; ++round) {
      ROCKY_ASSIGN_OR_RETURN(Fetched seen, Fetch());
      if (seen.record && seen.record->token == mine.token && seen.record->renewal == mine.renewal) {
        // Our own write landed and its reply was lost (the caller's retry found its condition failed).
        etag_ = seen.info.version;
        return TakeResult{Taken::kAcquired, {}};
      }
      if (seen.info.state == LeaseInfo::State::kFree) {
        auto again = client_.PutBytes(key_, body, WriteCondition::IfAbsent());
        if (again.ok()) {
          etag_ = again->etag;
          return TakeResult{Taken::kAcquired, {}};
        }
        if (!again.status().IsBusy()) return again.status();
        continue;
      }
      if (!seen.info.unreadable.empty()) {
        return Status::Corruption("the lease " + location_ + " is not a rocky lease (" +
                                  seen.info.unreadable +
                                  "): nothing takes it over; `rocky state unlock --yes` removes it");
      }
      if (seen.info.state == LeaseInfo::State::kHeld) return TakeResult{Taken::kBusy, seen.info};
      // Expired by the server's clock: replace exactly the object judged, so of two takers one wins.
      auto over = client_.PutBytes(key_, body, WriteCondition::IfMatch(seen.info.version));
      if (over.ok()) {
        etag_ = over->etag;
        return TakeResult{Taken::kTakenOver, seen.info};
      }
      // The condition failed: another taker won (the next round finds its live lease), or the lease was
      // released in between (the next round finds none).
      if (!over.status().IsBusy() && !over.status().IsNotFound()) return over.status();
    }
    return Status::IOError("taking the lease " + location_ +
                           ": it kept changing while being read (contention)");
  }

  Result<std::optional<LeaseInfo>> Renew(const LeaseRecord& next, Deadline deadline) override {
    ScopedDeadline scoped(client_, deadline);
    auto put = client_.PutBytes(key_, next.ToJson(), WriteCondition::IfMatch(etag_));
    if (put.ok()) {
      etag_ = put->etag;
      return std::optional<LeaseInfo>();
    }
    if (!put.status().IsBusy() && !put.status().IsNotFound()) return put.status();
    ROCKY_ASSIGN_OR_RETURN(Fetched seen, Fetch());
    if (seen.record && seen.record->token == next.token && seen.record->renewal == next.renewal) {
      etag_ = seen.info.version;  // this renewal's earlier attempt landed; its reply was lost
      return std::optional<LeaseInfo>();
    }
    return std::optional<LeaseInfo>(seen.info);
  }

  Result<Released> Release(Deadline deadline) override {
    ScopedDeadline scoped(client_, deadline);
    Status deleted = client_.DeleteObjectIfMatch(key_, etag_);
    if (deleted.ok()) return Released::kReleased;
    if (deleted.IsNotFound()) return Released::kAbsent;
    if (!deleted.IsBusy()) return deleted;
    // Another ETag: a renewal whose reply never came (canceled, or lost) may have landed. Still ours if the
    // record carries our token.
    ROCKY_ASSIGN_OR_RETURN(Fetched seen, Fetch());
    if (seen.info.state == LeaseInfo::State::kFree) return Released::kAbsent;
    if (!seen.record || seen.record->token != token_) return Released::kNotOurs;
    deleted = client_.DeleteObjectIfMatch(key_, seen.info.version);
    if (deleted.ok()) return Released::kReleased;
    if (deleted.IsNotFound()) return Released::kAbsent;
    if (!deleted.IsBusy()) return deleted;
    return Released::kNotOurs;
  }

  Result<LeaseInfo> Inspect(Deadline deadline) override {
    ScopedDeadline scoped(client_, deadline);
    ROCKY_ASSIGN_OR_RETURN(Fetched seen, Fetch());
    return seen.info;
  }

  Status Break(const LeaseInfo& seen, Deadline deadline) override {
    if (seen.state == LeaseInfo::State::kFree) return Status::OK();
    ScopedDeadline scoped(client_, deadline);
    Status deleted = client_.DeleteObjectIfMatch(key_, seen.version);
    if (deleted.ok() || deleted.IsNotFound()) return Status::OK();
    if (deleted.IsBusy()) {
      return Status::Busy(
          "the lease " + location_ +
          " changed while it was being broken (renewed, or taken by another runner): look again");
    }
    return deleted;
  }

 private:
  struct Fetched {
    LeaseInfo info;
    std::optional<LeaseRecord> record;  // parsed, when it is a rocky lease
  };

  // GET of the lease, judged by the server's clock: taken over only once the server's Date is at least
  // Last-Modified + lease_ms + 1 s (both are whole seconds, truncated: the true write instant is within a
  // second after Last-Modified, the true "now" within a second after Date, so this never judges early).
  Result<Fetched> Fetch() {
    auto object = client_.GetSmallObject(key_);
    if (!object.ok()) return object.status();
    Fetched out;
    if (!object->has_value()) return out;
    const SmallObject& o = **object;
    out.info.version = o.etag;
    out.info.state = LeaseInfo::State::kHeld;
    auto record = LeaseRecord::FromJson(o.body);
    if (!record.ok()) {
      out.info.unreadable = record.status().message();
      return out;
    }
    out.record = *record;
    out.info.holder = *record;
    const auto modified = ParseHttpDate(o.last_modified);
    const auto now = ParseHttpDate(o.date);
    if (!modified || !now) {
      out.info.unreadable = "the server sent no usable Last-Modified and Date headers (\"" + o.last_modified +
                            "\", \"" + o.date + "\"), so the lease's expiry cannot be judged by its clock";
      return out;
    }
    const auto whole_seconds = std::chrono::seconds((record->lease_ms + 999) / 1000);
    const auto takeover_at = *modified + whole_seconds + std::chrono::seconds(1);
    out.info.expires_at = base::FormatUtc(takeover_at);
    const auto left = std::chrono::duration_cast<milliseconds>(takeover_at - *now);
    if (left.count() <= 0) {
      out.info.state = LeaseInfo::State::kExpired;
    } else {
      out.info.expires_in = left;
    }
    return out;
  }

  std::string key_;
  std::string location_;
  std::shared_ptr<CredentialsProvider> keepalive_;
  S3Client client_;
  std::string etag_;   // of this store's last write
  std::string token_;  // of the record this store took the lease with
};

}  // namespace

std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters, fixed positions (RFC 9110, 5.6.7).
  if (text.size() != 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto month = std::find(kMonths.begin(), kMonths.end(), text.substr(8, 3));
  const int day = Digits(text.substr(5, 2)), year = Digits(text.substr(12, 4));
  const int hour = Digits(text.substr(17, 2)), minute = Digits(text.substr(20, 2)),
            second = Digits(text.substr(23, 2));
  if (month == kMonths.end() || day < 1 || day > 31 || year < 1970 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(month - kMonths.begin());
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const time_t t = ::timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::unique_ptr<LeaseStore> NewS3LeaseStore(S3Config config, CredentialsSource credentials,
                                            std::shared_ptr<CredentialsProvider> keepalive) {
  return std::make_unique<S3LeaseStore>(std::move(config), std::move(credentials), std::move(keepalive));
}

}  // namespace rocky::sync
