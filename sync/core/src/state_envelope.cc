#include "rocky/sync/state_envelope.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "rocky/base/temp_file.h"
#include "rocky/engine/options.h"

namespace rocky::sync {
namespace {

constexpr size_t kBufferSize = size_t{1} << 20;
// The export commits after about this many bytes of keys and values, so dirty pages never pile up in memory.
constexpr uint64_t kExportBatchBytes = uint64_t{16} << 20;
// The state file's super-header (format-spec/FORMAT.md): magic, then the format version at offset 8.
constexpr char kStateMagic[8] = {'\x89', 'R', 'K', 'Y', '\r', '\n', '\x1a', '\n'};
constexpr size_t kStateHeaderBytes = 12;
constexpr int kZstdLevel = 3;

std::string ErrnoText(int err) { return std::strerror(err); }

// How a state file is opened to be snapshotted or verified: read-only (no writer lock, so a concurrent writer
// is fine), never created, with a small cache.
engine::Options ReadOnlyOptions() {
  engine::Options options;
  options.read_only = true;
  options.create_if_missing = false;
  options.cache_bytes = size_t{8} << 20;
  return options;
}

// Owns a file descriptor, so every early return closes it.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error close() may return (the last chance to hear of a failed write-back).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Deletes a temporary file unless Keep() is called: no failure path leaves one behind.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Keep() { path_.clear(); }

 private:
  std::string path_;
};

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      if (err == ENOSPC || err == EDQUOT) return Status::NoSpace("writing " + path + ": " + ErrnoText(err));
      return Status::IOError("writing " + path + ": " + ErrnoText(err));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

// Reads up to n bytes, fewer only at end of file.
Result<size_t> ReadUpTo(int fd, char* data, size_t n, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, data + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError("reading " + path + ": " + ErrnoText(errno));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::IOError("opening directory " + dir + ": " + ErrnoText(errno));
  if (::fsync(fd.get()) != 0) return Status::IOError("syncing directory " + dir + ": " + ErrnoText(errno));
  return Status::OK();
}

// Syncs and closes a file we wrote.
Status SyncAndClose(Fd& fd, const std::string& path) {
  if (::fsync(fd.get()) != 0) return Status::IOError("syncing " + path + ": " + ErrnoText(errno));
  if (fd.Close() != 0) return Status::IOError("closing " + path + ": " + ErrnoText(errno));
  return Status::OK();
}

// A unique temporary file next to `path` (same directory, so a rename onto `path` is atomic).
Result<std::pair<std::string, int>> MakeTempNextTo(const std::string& path, std::string_view tag) {
  std::string templ = path + "." + std::string(tag) + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0) return Status::IOError("creating a temporary file next to " + path + ": " + ErrnoText(errno));
  return std::make_pair(std::string(buf.data()), fd);
}

}  // namespace

Status WriteStateSnapshot(engine::Database& db, const std::string& snapshot_path) {
  const std::string context = "snapshot of " + db.path() + " into " + snapshot_path;
  if (::unlink(snapshot_path.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError(context + ": removing the old file: " + ErrnoText(errno));
  }
  TempFileGuard guard(snapshot_path);
  auto read = db.BeginRead();
  if (!read.ok()) return read.status().WithContext(context);
  auto names = (*read)->ListTables();
  if (!names.ok()) return names.status().WithContext(context);

  engine::Options options;
  options.create_if_missing = true;
  options.durability = engine::Durability::kNoSync;  // one durable commit at the end is enough
  options.cache_bytes = size_t{8} << 20;
  auto out = engine::Database::Open(snapshot_path, options);
  if (!out.ok()) return out.status().WithContext(context);

  auto write = (*out)->BeginWrite();
  if (!write.ok()) return write.status().WithContext(context);
  uint64_t batch = 0;
  for (const std::string& name : *names) {
    auto table = (*read)->OpenTable(name);
    if (!table.ok()) return table.status().WithContext(context);
    auto target = (*write)->OpenTable(name);  // creates it, so empty tables are kept too
    if (!target.ok()) return target.status().WithContext(context);
    std::unique_ptr<engine::Cursor> cursor = (*table)->NewCursor();
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
      auto inserted = (*target)->Insert(cursor->key(), cursor->value());
      if (!inserted.ok()) return inserted.status().WithContext(context);
      batch += cursor->key().size() + cursor->value().size();
      if (batch >= kExportBatchBytes) {
        // The cursor reads the source snapshot, untouched by commits to the target.
        ROCKY_RETURN_IF_ERROR((*write)->Commit().WithContext(context));
        write = (*out)->BeginWrite();
        if (!write.ok()) return write.status().WithContext(context);
        target = (*write)->OpenTable(name);
        if (!target.ok()) return target.status().WithContext(context);
        batch = 0;
      }
    }
    if (!cursor->status().ok()) return cursor->status().WithContext(context);
  }
  engine::WriteOptions durable;
  durable.durability = engine::Durability::kDurable;
  ROCKY_RETURN_IF_ERROR((*write)->Commit().WithContext(context));
  write = (*out)->BeginWrite(durable);
  if (!write.ok()) return write.status().WithContext(context);
  ROCKY_RETURN_IF_ERROR((*write)->Commit().WithContext(context));
  write = Status::Busy("released");  // the transaction must not outlive its database
  ROCKY_RETURN_IF_ERROR((*out)->Close().WithContext(context));
  guard.Keep();
  return Status::OK();
}

Status WriteStateSnapshot(const std::string& state_path, const std::string& snapshot_path) {
  auto db = engine::Database::Open(state_path, ReadOnlyOptions());
  if (!db.ok()) return db.status().WithContext("opening " + state_path + " for a snapshot");
  ROCKY_RETURN_IF_ERROR(WriteStateSnapshot(**db, snapshot_path));
  return (*db)->Close();
}

Result<EnvelopeInfo> EncodeEnvelope(const std::string& content_path, const std::string& envelope_path) {
  Fd in(::open(content_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Status::IOError("opening " + content_path + ": " + ErrnoText(errno));
  std::vector<char> in_buf(kBufferSize);
  std::vector<char> out_buf(ZSTD_CStreamOutSize());

  auto first = ReadUpTo(in.get(), in_buf.data(), in_buf.size(), content_path);
  if (!first.ok()) return first.status();
  if (*first < kStateHeaderBytes || std::memcmp(in_buf.data(), kStateMagic, sizeof kStateMagic) != 0) {
    return Status::InvalidArgument(content_path +
                                   " is not a rocky state file (no state magic); not uploading it");
  }
  EnvelopeInfo info;
  info.envelope_version = kEnvelopeVersion;
  info.state_format_version = GetU32(in_buf.data() + 8);

  Fd out(::open(envelope_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.get() < 0) return Status::IOError("creating " + envelope_path + ": " + ErrnoText(errno));
  TempFileGuard guard(envelope_path);
  // The header is written last, at offset 0, once the length and hash are known.
  char header[kEnvelopeHeaderSize] = {};
  ROCKY_RETURN_IF_ERROR(WriteAll(out.get(), header, sizeof header, envelope_path));

  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), &XXH3_freeState);
  if (!cctx || !hash) return Status::IOError("encoding " + content_path + ": out of memory");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  XXH3_64bits_reset(hash.get());
  uint64_t encoded = kEnvelopeHeaderSize;

  size_t have = *first;
  bool last = false;
  while (true) {
    if (have < in_buf.size()) last = true;  // a short read means end of file (ReadUpTo fills otherwise)
    XXH3_64bits_update(hash.get(), in_buf.data(), have);
    info.content_length += have;
    ZSTD_inBuffer input{in_buf.data(), have, 0};
    ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    bool done = false;
    while (!done) {
      ZSTD_outBuffer output{out_buf.data(), out_buf.size(), 0};
      size_t remaining = ZSTD_compressStream2(cctx.get(), &output, &input, mode);
      if (ZSTD_isError(remaining)) {
        return Status::IOError("compressing " + content_path + ": " + ZSTD_getErrorName(remaining));
      }
      ROCKY_RETURN_IF_ERROR(WriteAll(out.get(), out_buf.data(), output.pos, envelope_path));
      encoded += output.pos;
      done = last ? remaining == 0 : input.pos == input.size;
    }
    if (last) break;
    auto next = ReadUpTo(in.get(), in_buf.data(), in_buf.size(), content_path);
    if (!next.ok()) return next.status();
    have = *next;
  }
  info.content_xxh3 = XXH3_64bits_digest(hash.get());
  info.encoded_length = encoded;

  std::memcpy(header, kEnvelopeMagic, sizeof kEnvelopeMagic);
  PutU32(header + 8, info.envelope_version);
  PutU32(header + 12, info.state_format_version);
  PutU64(header + 16, info.content_length);
  PutU64(header + 24, info.content_xxh3);
  PutU64(header + 32, XXH3_64bits(header, 32));
  if (::pwrite(out.get(), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) {
    return Status::IOError("writing the header of " + envelope_path + ": " + ErrnoText(errno));
  }
  ROCKY_RETURN_IF_ERROR(SyncAndClose(out, envelope_path));
  guard.Keep();
  return info;
}

Result<EnvelopeInfo> EncodeStateEnvelope(const std::string& state_path, const std::string& envelope_path,
                                         const char* snapshot_tag) {
  base::Unlinker snapshot{base::TempNextTo(state_path, snapshot_tag)};  // removed on return
  ROCKY_RETURN_IF_ERROR(WriteStateSnapshot(state_path, snapshot.path));
  return EncodeEnvelope(snapshot.path, envelope_path);
}

namespace {

// Reads and checks the envelope header at the start of `fd`: magic, length, checksum, a version this build
// reads. Leaves the file offset at the compressed content. encoded_length is not known yet.
Result<EnvelopeInfo> ReadEnvelopeHeader(int fd, const std::string& envelope_path, const std::string& what) {
  char header[kEnvelopeHeaderSize];
  auto got = ReadUpTo(fd, header, sizeof header, envelope_path);
  if (!got.ok()) return got.status();
  if (*got < sizeof kEnvelopeMagic || std::memcmp(header, kEnvelopeMagic, sizeof kEnvelopeMagic) != 0) {
    return Status::Corruption(what + " is not a rocky state envelope (wrong magic): a foreign object");
  }
  if (*got < sizeof header) {
    return Status::Corruption(what + " is truncated: " + std::to_string(*got) + " bytes, shorter than the " +
                              std::to_string(sizeof header) + "-byte envelope header");
  }
  if (GetU64(header + 32) != XXH3_64bits(header, 32)) {
    return Status::Corruption(what + " is corrupt: envelope header checksum mismatch");
  }
  EnvelopeInfo info;
  info.envelope_version = GetU32(header + 8);
  info.state_format_version = GetU32(header + 12);
  info.content_length = GetU64(header + 16);
  info.content_xxh3 = GetU64(header + 24);
  if (info.envelope_version == 0 || info.envelope_version > kEnvelopeVersion) {
    return Status::NotSupported(what + " has envelope version " + std::to_string(info.envelope_version) +
                                ", this build reads version " + std::to_string(kEnvelopeVersion));
  }
  return info;
}

// What decompressing the content produced, for the checks against the header.
struct DecodedContent {
  uint64_t encoded = kEnvelopeHeaderSize;  // envelope bytes read, header included
  uint64_t produced = 0;                   // state bytes written
  uint64_t xxh3 = 0;                       // of the state bytes
  std::string state_head;                  // the first bytes: the state file's magic and format version
  bool frame_done = false;                 // the zstd frame ended
};

// Decompresses the rest of `in_fd` (one zstd frame, nothing after it) into `out_fd` (`temp_path`), hashing
// what it writes; refuses more than `content_length` bytes as soon as they appear.
Result<DecodedContent> DecompressContent(int in_fd, const std::string& envelope_path, int out_fd,
                                         const std::string& temp_path, uint64_t content_length,
                                         const std::string& what) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), &XXH3_freeState);
  if (!dctx || !hash) return Status::IOError("decoding " + envelope_path + ": out of memory");
  XXH3_64bits_reset(hash.get());
  std::vector<char> in_buf(kBufferSize);
  std::vector<char> out_buf(ZSTD_DStreamOutSize());
  DecodedContent d;
  while (true) {
    auto n = ReadUpTo(in_fd, in_buf.data(), in_buf.size(), envelope_path);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    d.encoded += *n;
    if (d.frame_done) {
      return Status::Corruption(what + " is corrupt: bytes after the end of the compressed state");
    }
    ZSTD_inBuffer input{in_buf.data(), *n, 0};
    while (input.pos < input.size) {
      ZSTD_outBuffer output{out_buf.data(), out_buf.size(), 0};
      // ZSTD_decompressStream returns 0 once a frame is complete.
      const size_t frame_state = ZSTD_decompressStream(dctx.get(), &output, &input);
      if (ZSTD_isError(frame_state)) {
        return Status::Corruption(what + " is corrupt: zstd: " + ZSTD_getErrorName(frame_state));
      }
      d.produced += output.pos;
      if (d.produced > content_length) {
        return Status::Corruption(what + " is corrupt: it decompresses to more than the " +
                                  std::to_string(content_length) + " bytes its header announces");
      }
      XXH3_64bits_update(hash.get(), out_buf.data(), output.pos);
      for (size_t i = 0; i < output.pos && d.state_head.size() < kStateHeaderBytes; ++i) {
        d.state_head.push_back(out_buf[i]);
      }
      ROCKY_RETURN_IF_ERROR(WriteAll(out_fd, out_buf.data(), output.pos, temp_path));
      if (frame_state == 0) {
        d.frame_done = true;
        if (input.pos < input.size) {
          return Status::Corruption(what + " is corrupt: bytes after the end of the compressed state");
        }
        break;
      }
    }
  }
  d.xxh3 = XXH3_64bits_digest(hash.get());
  return d;
}

// The decompressed content against the header: whole, the announced length and XXH3, and a state file of
// the announced format version.
Status CheckDecodedContent(const DecodedContent& d, const EnvelopeInfo& info, const std::string& what) {
  if (!d.frame_done) {
    return Status::Corruption(what + " is truncated: the compressed state ends early (" +
                              std::to_string(d.encoded) + " bytes, " + std::to_string(d.produced) + " of " +
                              std::to_string(info.content_length) + " state bytes)");
  }
  if (d.produced != info.content_length) {
    return Status::Corruption(what + " is corrupt: " + std::to_string(d.produced) +
                              " state bytes, the header says " + std::to_string(info.content_length));
  }
  if (d.xxh3 != info.content_xxh3) {
    return Status::Corruption(what + " is corrupt: the state's XXH3 does not match the header");
  }
  if (d.state_head.size() < kStateHeaderBytes ||
      std::memcmp(d.state_head.data(), kStateMagic, sizeof kStateMagic) != 0) {
    return Status::Corruption(what + " does not hold a rocky state file (no state magic)");
  }
  if (GetU32(d.state_head.data() + 8) != info.state_format_version) {
    return Status::Corruption(what + " is corrupt: its header says state format version " +
                              std::to_string(info.state_format_version) + ", the state file says " +
                              std::to_string(GetU32(d.state_head.data() + 8)));
  }
  return Status::OK();
}

// The bytes are what was uploaded; checks they are a state file this build reads, and sound, before they
// replace anything. Open refuses a newer format version as kNotSupported.
Status VerifyStateFile(const std::string& path, const std::string& what) {
  auto db = engine::Database::Open(path, ReadOnlyOptions());
  if (!db.ok()) {
    Status s = db.status();
    if (s.code() == Status::Code::kNotSupported) return s.WithContext(what);
    return Status::Corruption(what + " does not hold a valid state file: " + s.ToString());
  }
  // A snapshot always holds a commit, and its newest one whole: anything else would replace the local state
  // with an empty or older one without a word (Open would read it as an empty database, or fall back).
  const engine::OpenReport& opened = (*db)->open_report();
  if (opened.uncommitted) {
    return Status::Corruption(what + " does not hold a valid state file: it holds no commit");
  }
  if (opened.discarded) {
    return Status::Corruption(what + " does not hold a valid state file: its newest commit (txn " +
                              std::to_string(opened.discarded->txn_id) +
                              ") is damaged: " + opened.discarded->reason);
  }
  auto report = (*db)->CheckIntegrity();
  if (!report.ok()) {
    return Status::Corruption(
        what + " holds a state file that fails its integrity check: " + report.status().ToString());
  }
  return (*db)->Close();
}

}  // namespace

Result<EnvelopeInfo> DecodeEnvelope(const std::string& envelope_path, const std::string& destination_path) {
  const std::string what = "state object " + envelope_path;
  Fd in(::open(envelope_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Status::IOError("opening " + envelope_path + ": " + ErrnoText(errno));
  ROCKY_ASSIGN_OR_RETURN(EnvelopeInfo info, ReadEnvelopeHeader(in.get(), envelope_path, what));

  auto temp = MakeTempNextTo(destination_path, "download");
  if (!temp.ok()) return temp.status();
  const std::string temp_path = temp->first;
  Fd out(temp->second);
  TempFileGuard guard(temp_path);

  ROCKY_ASSIGN_OR_RETURN(DecodedContent decoded, DecompressContent(in.get(), envelope_path, out.get(),
                                                                   temp_path, info.content_length, what));
  info.encoded_length = decoded.encoded;
  ROCKY_RETURN_IF_ERROR(CheckDecodedContent(decoded, info, what));
  ROCKY_RETURN_IF_ERROR(SyncAndClose(out, temp_path));
  ROCKY_RETURN_IF_ERROR(VerifyStateFile(temp_path, what));

  if (::rename(temp_path.c_str(), destination_path.c_str()) != 0) {
    return Status::IOError("replacing " + destination_path + ": " + ErrnoText(errno));
  }
  guard.Keep();
  ROCKY_RETURN_IF_ERROR(SyncDir(DirName(destination_path)));
  return info;
}

}  // namespace rocky::sync
