"""bench_smoke: runs rocky-bench on a tiny workload and checks its JSON names every engine and phase."""
import json
import shutil
import subprocess
import sys

ENGINES = ["rocky", "lmdb", "rocksdb", "sqlite-wal", "sqlite-journal"]
# Phases every engine reports, and the state-level ones only our engine has.
ENGINE_PHASES = ["bulk_load", "individual_writes", "batch_writes", "nosync_writes", "len", "random_reads",
                 "random_reads_2t", "random_range_reads", "removals", "compaction", "uncompacted_size",
                 "compacted_size", "crash_open", "crash_file_size"]
STATE_PHASES = ["state_write_watermarks", "state_read_watermarks", "state_open_list"]


def main():
    binary, data = sys.argv[1], sys.argv[2]
    shutil.rmtree(data, ignore_errors=True)
    out = data + ".json"
    proc = subprocess.run([binary, "--entries", "2000", "--individual", "20", "--batches", "2",
                           "--dir", data, "--json", out], capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        print(f"bench_smoke: rocky-bench exited {proc.returncode}")
        print("[check] 0 passed, 1 failed")
        sys.exit(1)
    with open(out) as f:
        doc = json.load(f)
    problems = list(doc["errors"])
    phases = {p["id"]: p for p in doc["phases"]}
    for pid in ENGINE_PHASES + STATE_PHASES:
        if pid not in phases:
            problems.append(f"phase {pid} missing")
            continue
        wanted = ["rocky"] if pid in STATE_PHASES else ENGINES
        for e in wanted:
            v = phases[pid]["results"].get(e)
            if not isinstance(v, (int, float)) or v <= 0:
                problems.append(f"{e}/{pid}: no result ({v!r})")
    if sorted(doc["engines"]) != sorted(ENGINES) or sorted(doc["durability"]) != sorted(ENGINES):
        problems.append("engine list or durability notes incomplete")
    if problems:
        print("bench_smoke: " + "; ".join(problems))
        print("[check] 0 passed, 1 failed")  # the summary line scripts/test counts
        sys.exit(1)
    print("bench_smoke: OK")
    print("[check] 1 passed, 0 failed")


if __name__ == "__main__":
    main()
