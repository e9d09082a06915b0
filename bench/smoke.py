"""bench_smoke: runs rocky-bench on a tiny workload (one round) and checks that its JSON has a result for every
engine, phase and state measurement, and no error."""
import json
import shutil
import subprocess
import sys

ENGINES = ["rocky", "lmdb", "rocksdb", "sqlite-wal", "sqlite-journal"]
ENGINE_PHASES = ["bulk_load", "individual_writes", "batch_writes", "nosync_writes", "len", "random_reads",
                 "random_reads_2t", "random_range_reads", "removals", "compaction", "uncompacted_size",
                 "compacted_size", "crash_open", "crash_file_size"]
# State measurements: rocky against sqlite3, and `rocky run` on a state of N watermarks against one of 1.
STATE_METRICS = ["state_import_wall", "state_import_cpu", "state_import_rss", "state_list_cpu", "state_list_rss",
                 "state_list_wall", "state_get_cpu", "state_get_rss", "state_prefix_cpu"]
RUN_METRICS = ["run_startup_cpu", "run_startup_wall", "run_startup_rss"]


def main():
    binary, data, rocky, spawn = sys.argv[1:5]
    shutil.rmtree(data, ignore_errors=True)
    out = data + ".json"
    proc = subprocess.run([binary, "--entries", "2000", "--individual", "20", "--batches", "2", "--rounds", "1",
                           "--watermarks", "500", "--state-reps", "1", "--rocky-cli", rocky, "--spawn", spawn,
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
    metrics = {m["id"]: m for m in doc["metrics"]}
    wanted = {pid: ENGINES for pid in ENGINE_PHASES}
    wanted.update({pid: ["rocky", "sqlite3"] for pid in STATE_METRICS})
    wanted.update({pid: ["rocky", "rocky (1 watermark)"] for pid in RUN_METRICS})
    for pid, sides in wanted.items():
        if pid not in metrics:
            problems.append(f"metric {pid} missing")
            continue
        for side in sides:
            rounds = metrics[pid]["rounds"].get(side)
            if not rounds or not all(isinstance(v, (int, float)) and v > 0 for v in rounds):
                problems.append(f"{side}/{pid}: no result ({rounds!r})")
    if sorted(doc["engines"]) != sorted(ENGINES) or sorted(doc["durability"]) != sorted(ENGINES):
        problems.append("engine list or durability notes incomplete")
    if not doc["targets"]:
        problems.append("no target evaluated")
    if problems:
        print("bench_smoke: " + "; ".join(problems))
        print("[check] 0 passed, 1 failed")  # the summary line scripts/test counts
        sys.exit(1)
    print("bench_smoke: OK")
    print("[check] 1 passed, 0 failed")


if __name__ == "__main__":
    main()
