// The state object stored remotely (S3): a consistent snapshot of the state database, compressed with zstd,
// inside a small envelope that says what it is and lets a download be verified in full before it replaces the
// local state. Byte layout: format-spec/ENVELOPE.md.
//
// Everything streams through files with fixed-size buffers, so memory stays bounded whatever the state's
// size.
#pragma once

#include <cstdint>
#include <string>

#include "rocky/base/status.h"
#include "rocky/engine/db.h"

namespace rocky::sync {

using base::Result;
using base::Status;

// Identifies an envelope (first 8 bytes). Like the state file's magic but with 'S' for "sync": non-ASCII
// first byte, CR LF and ^Z, so text-mode transfers and 7-bit truncation are detected.
inline constexpr char kEnvelopeMagic[8] = {'\x89', 'R', 'K', 'S', '\r', '\n', '\x1a', '\n'};
// The envelope layout version this build writes and reads; a higher one is refused as newer.
inline constexpr uint32_t kEnvelopeVersion = 1;
inline constexpr size_t kEnvelopeHeaderSize = 40;

// What an envelope's header says (and, after encoding, what was written).
struct EnvelopeInfo {
  uint32_t envelope_version = 0;
  // The state file's format version (its super-header, FORMAT.md), so a reader can refuse a newer one before
  // downloading everything into place.
  uint32_t state_format_version = 0;
  uint64_t content_length = 0;  // bytes of the uncompressed state file
  uint64_t content_xxh3 = 0;    // XXH3-64 (seed 0) of the uncompressed state file
  uint64_t encoded_length = 0;  // bytes of the whole envelope (header + zstd frame)
};

// Writes to `snapshot_path` (replacing it) a fresh state database holding exactly the tables and entries of
// one read transaction of `db`, i.e. one commit. Why not copy the file's bytes under a read transaction: the
// engine guarantees only that pages reachable from a live snapshot are not overwritten; free pages and the
// commit slots are rewritten by a concurrent writer (possibly another process), so a byte copy can pair a
// newer commit slot with older page contents, a file that opens but is not any commit. Exporting through the
// read transaction yields a file that is a commit by construction. The export commits in batches so memory is
// bounded; the file is synced before return.
Status WriteStateSnapshot(engine::Database& db, const std::string& snapshot_path);
// Same, opening the database at `state_path` read-only (no writer lock: a concurrent writer is fine).
Status WriteStateSnapshot(const std::string& state_path, const std::string& snapshot_path);

// Reads the state file at `content_path` (a snapshot: nobody may be writing it) and writes its envelope to
// `envelope_path` (replacing it, synced). kInvalidArgument when the content is not a rocky state file.
Result<EnvelopeInfo> EncodeEnvelope(const std::string& content_path, const std::string& envelope_path);

// What every backend's upload sends: a snapshot of the state database at `state_path` (WriteStateSnapshot,
// into a temporary file beside it whose name carries `snapshot_tag`, removed before this returns, so its
// space is free before the upload) encoded into `envelope_path` (EncodeEnvelope). The caller removes the
// envelope.
Result<EnvelopeInfo> EncodeStateEnvelope(const std::string& state_path, const std::string& envelope_path,
                                         const char* snapshot_tag);

// Verifies the envelope at `envelope_path` in full (magic, versions, header checksum, complete zstd frame
// with nothing after it, length, XXH3, and that the content opens at its newest commit, holds one, and passes
// its integrity check) and only then replaces `destination_path` atomically by rename (file and directory
// synced). On any failure the destination is untouched and no temporary file is left; kCorruption names what
// is wrong (truncated, corrupt, not an envelope), kNotSupported a newer envelope or state format version.
Result<EnvelopeInfo> DecodeEnvelope(const std::string& envelope_path, const std::string& destination_path);

}  // namespace rocky::sync
