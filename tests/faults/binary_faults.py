#!/usr/bin/env python3
"""Fault trials on the real `rocky` binary: the state file never silently loses a commit (issue #16).

Each trial runs one `rocky state set` under one fault, then reopens the state file with
`rocky state --output json` (no fault) and checks its contents against what the command's exit code said:

  strace -f -e inject=SYSCALL:error=EIO|ENOSPC:when=N   one failed call (pread64, pwrite64, fdatasync, fsync,
                                                        openat, link, unlink) at every N the command makes
  strace -f -e inject=SYSCALL:signal=KILL:when=N        SIGKILL at the Nth call of pwrite64, fdatasync, fsync,
                                                        link, unlink, openat, pread64
  fiu-run -x -c 'enable_random name=posix/io/*,probability=0.05'   random failures of any POSIX I/O call

on two states: an existing one (watermarks a.b.c and others; the command adds d.e.f) and none at all (the
command creates the file). Counted, over all trials:

  trials, clean failures (the command exited non-zero), crashes (killed by a signal we did not send, or a
  sanitizer report), lost acknowledged commits (a watermark that an earlier command or this one, exiting 0,
  stored is gone or changed), values that appeared after a failed command (the new watermark is there although
  the command, hit by a single failed call, exited non-zero: one failed call always leaves a commit's outcome
  certain, see WriteTransaction::Commit), files left unopenable (`rocky state` fails on the file afterwards).
The last four must be zero. Under fiu-run several calls may fail, so a failed command's commit may or may not
be kept (its outcome was unknown): those trials check losses, crashes and openability only. Messages are not
read (the CLI words them); exit codes and the state's contents are.

Environment: ROCKY_BUILD_ROOT (the build dir holding cli/rocky; required), ROCKY_FAULT_TRIALS (trials to run:
default 300, a sixth under fiu-run and the rest drawn at random from every (state, fault, N) combination; a
number larger than the combinations runs them all and the rest under fiu-run; "all" runs every combination
and 200 fiu-run trials, and is the default with ROCKY_FULL_SWEEPS=1), ROCKY_FAULT_SEED (the sample's seed;
default ROCKY_SWEEP_SEED, which scripts/test derives from the commit, else 1).
Prints the counts and, last, "[check] P passed, F failed" (one check per trial), which scripts/test counts.
Exit status 0 when every trial passed.
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

EXISTING = {
    "a.b.c": "2026-01-01T00:00:00Z",
    "x.y.z": "2025-06-30T12:00:00Z",
    "p.q.r": "2024-02-29T23:59:59Z",
}
NEW_TABLE = "d.e.f"
NEW_VALUE = "2026-02-02T00:00:00Z"
CRASH_EXIT = 97  # what a sanitizer report exits with here (ASAN_OPTIONS/UBSAN_OPTIONS exitcode)

ERROR_FAULTS = [
    ("pread64", "EIO"),
    ("pwrite64", "EIO"),
    ("pwrite64", "ENOSPC"),
    ("fdatasync", "EIO"),
    ("fsync", "EIO"),
    ("openat", "EIO"),
    ("link", "EIO"),
    ("unlink", "EIO"),
]
KILL_SYSCALLS = ["pwrite64", "fdatasync", "fsync", "link", "unlink", "openat", "pread64"]


def die(message):
    print("binary_faults: " + message, file=sys.stderr)
    print("[check] 0 passed, 1 failed")
    sys.exit(1)


def sanitizer_env():
    env = dict(os.environ)
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        opts = env.get(name, "")
        opts = ":".join(o for o in opts.split(":") if o and not o.startswith("exitcode="))
        env[name] = (opts + ":" if opts else "") + "exitcode=%d" % CRASH_EXIT
    env["UBSAN_OPTIONS"] += ":halt_on_error=1"
    # LeakSanitizer cannot run under ptrace (strace), and leaks are the other tests' business.
    env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return env


def asan_runtime(binary):
    """The AddressSanitizer runtime a binary links, or None."""
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in r.stdout.decode(errors="replace").splitlines():
        m = re.match(r"\s*libasan\.so[.\d]*\s+=>\s+(\S+)", line)
        if m:
            return m.group(1)
    return None


class Harness:
    def __init__(self, rocky, workdir):
        self.rocky = rocky
        # fiu-run preloads its libraries ahead of the program's; a sanitizer build crashes at startup unless its
        # runtime comes first, so a shell puts it back in front (its own few calls may fail too: that is a
        # failed start, counted like any failed command).
        runtime = asan_runtime(rocky)
        self.fiu_wrapper = [] if runtime is None else [
            "sh", "-c", 'LD_PRELOAD="%s $LD_PRELOAD" exec "$0" "$@"' % runtime]
        self.workdir = workdir
        self.env = sanitizer_env()
        self.base = os.path.join(workdir, "base.redb")
        self.counts = dict(trials=0, clean_failures=0, crashes=0, lost_acknowledged=0,
                           appeared_after_failure=0, unopenable=0, discarded_copies=0, orphaned_temp_files=0)
        self.problems = []
        self.passed = 0
        self.failed = 0

    def run(self, args, cwd, prefix=(), timeout=120):
        return subprocess.run(list(prefix) + [self.rocky] + args, cwd=cwd, env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def set_args(self, path):
        return ["state", "set", "--table", NEW_TABLE, "--value", NEW_VALUE, "--state-path", path]

    def make_base(self):
        for table, value in EXISTING.items():
            r = self.run(["state", "set", "--table", table, "--value", value, "--state-path", self.base],
                         self.workdir)
            if r.returncode != 0:
                die("preparing the base state failed: " + r.stderr.decode(errors="replace"))

    def watermarks(self, path, cwd):
        """The state's watermarks, or None when rocky cannot open it."""
        r = self.run(["state", "--output", "json", "--state-path", path], cwd)
        if r.returncode != 0:
            return None, r
        try:
            doc = json.loads(r.stdout)
            return {w["table"]: w["last_value"] for w in doc.get("watermarks", [])}, r
        except (ValueError, KeyError, TypeError):
            return None, r

    def count_calls(self, existing):
        """How many times an unfaulted `state set` makes each syscall we inject into."""
        trial = tempfile.mkdtemp(dir=self.workdir)
        path = os.path.join(trial, "state.redb")
        if existing:
            shutil.copy(self.base, path)
        log = os.path.join(trial, "strace.log")
        names = sorted({s for s, _ in ERROR_FAULTS} | set(KILL_SYSCALLS))
        r = self.run(self.set_args(path), trial, prefix=["strace", "-f", "-qq", "-o", log, "-e",
                                                           "trace=" + ",".join(names)])
        if r.returncode != 0:
            die("an unfaulted `rocky state set` failed: " + r.stderr.decode(errors="replace"))
        calls = {n: 0 for n in names}
        with open(log, errors="replace") as f:
            for line in f:
                m = re.match(r"^\d+\s+(\w+)\(", line)
                if m and m.group(1) in calls:
                    calls[m.group(1)] += 1
        shutil.rmtree(trial)
        return calls

    def trial(self, existing, kind, syscall=None, error=None, n=None):
        self.counts["trials"] += 1
        name = "%s state, %s" % ("existing" if existing else "no", kind)
        if syscall:
            name += " %s%s when=%d" % (syscall, ":" + error if error else "", n)
        trial = tempfile.mkdtemp(dir=self.workdir)
        path = os.path.join(trial, "state.redb")
        if existing:
            shutil.copy(self.base, path)
        if kind == "error":
            prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
                      "-e", "inject=%s:error=%s:when=%d" % (syscall, error, n)]
        elif kind == "kill":
            prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
                      "-e", "inject=%s:signal=KILL:when=%d" % (syscall, n)]
        else:
            prefix = ["fiu-run", "-x", "-c", "enable_random name=posix/io/*,probability=0.05"] + self.fiu_wrapper
        r = self.run(self.set_args(path), trial, prefix=prefix)
        code = r.returncode
        problems = []
        killed_by_us = kind == "kill" and code in (-9, 137)
        if code == CRASH_EXIT or (code < 0 and not killed_by_us) or (code > 128 and not killed_by_us):
            self.counts["crashes"] += 1
            problems.append("crashed (exit %d): %s" % (code, r.stderr.decode(errors="replace")[-400:]))
        if code != 0:
            self.counts["clean_failures"] += 1
        # What the file holds now, opened without faults.
        if not os.path.exists(path):
            got = {}
            if code == 0:
                self.counts["lost_acknowledged"] += 1
                problems.append("the command exited 0 but left no state file")
            if existing:
                self.counts["lost_acknowledged"] += 1
                problems.append("the existing state file is gone")
        else:
            got, check = self.watermarks(path, trial)
            if got is None:
                self.counts["unopenable"] += 1
                problems.append("`rocky state` cannot open the file afterwards (exit %d): %s" % (
                    check.returncode, check.stderr.decode(errors="replace")[-400:]))
                got = {}
            else:
                for table, value in (EXISTING.items() if existing else []):
                    if got.get(table) != value:
                        self.counts["lost_acknowledged"] += 1
                        problems.append("watermark %s is %r, not %r" % (table, got.get(table), value))
                if code == 0 and got.get(NEW_TABLE) != NEW_VALUE:
                    self.counts["lost_acknowledged"] += 1
                    problems.append("the command exited 0 but %s is %r" % (NEW_TABLE, got.get(NEW_TABLE)))
                single_failure = kind == "error"
                if code != 0 and single_failure and NEW_TABLE in got:
                    self.counts["appeared_after_failure"] += 1
                    problems.append("the command failed (exit %d) but %s is stored" % (code, NEW_TABLE))
        for entry in os.listdir(trial):
            if ".discarded-" in entry:
                self.counts["discarded_copies"] += 1
            if ".tmp-" in entry:
                self.counts["orphaned_temp_files"] += 1
        if problems:
            self.failed += 1
            if len(self.problems) < 20:
                self.problems.append(name + ": " + "; ".join(problems))
        else:
            self.passed += 1
        shutil.rmtree(trial)


def main():
    build_root = os.environ.get("ROCKY_BUILD_ROOT")
    if not build_root:
        die("ROCKY_BUILD_ROOT is not set (run through meson test or scripts/test)")
    rocky = os.path.join(build_root, "cli", "rocky")
    if not os.access(rocky, os.X_OK):
        die(rocky + " is not an executable")
    for tool, package in (("strace", "strace"), ("fiu-run", "fiu-utils")):
        if shutil.which(tool) is None:
            die("%s is not installed (Debian package %s; scripts/setup installs it)" % (tool, package))
    full = os.environ.get("ROCKY_FULL_SWEEPS", "") not in ("", "0")
    requested = os.environ.get("ROCKY_FAULT_TRIALS") or ("all" if full else "300")
    seed_text = os.environ.get("ROCKY_FAULT_SEED") or os.environ.get("ROCKY_SWEEP_SEED") or "1"
    try:
        seed = int(seed_text, 0)
    except ValueError:
        die("ROCKY_FAULT_SEED (or ROCKY_SWEEP_SEED) is not a number: " + seed_text)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rocky-binary-faults-") as workdir:
        h = Harness(rocky, workdir)
        h.make_base()
        plan = []
        for existing in (True, False):
            calls = h.count_calls(existing)
            for syscall, error in ERROR_FAULTS:
                plan += [(existing, "error", syscall, error, n) for n in range(1, calls[syscall] + 1)]
            for syscall in KILL_SYSCALLS:
                plan += [(existing, "kill", syscall, None, n) for n in range(1, calls[syscall] + 1)]
        every = len(plan)
        if requested == "all":
            fiu = 200
        else:
            total = int(requested)
            # A sixth under fiu-run; past every strace combination, the rest too.
            fiu = max(1, total // 6, total - len(plan))
            plan = random.Random(seed).sample(plan, min(len(plan), max(0, total - fiu)))
        plan += [(i % 2 == 0, "fiu", None, None, None) for i in range(fiu)]
        for existing, kind, syscall, error, n in plan:
            h.trial(existing, kind, syscall, error, n)
    c = h.counts
    print("binary fault trials: %d trials (%d of %d strace combinations, sample seed %s, %d under fiu-run) "
          "in %.0f s" % (c["trials"], c["trials"] - fiu, every, seed_text, fiu, time.monotonic() - started))
    print("  clean failures %d, crashes %d, lost acknowledged commits %d, values after a failed command %d, "
          "files left unopenable %d" % (c["clean_failures"], c["crashes"], c["lost_acknowledged"],
                                        c["appeared_after_failure"], c["unopenable"]))
    print("  (kept copies of discarded commits %d, orphaned temporary files %d)" % (
        c["discarded_copies"], c["orphaned_temp_files"]))
    for p in h.problems:
        print("  FAILED " + p)
    print("[check] %d passed, %d failed" % (h.passed, h.failed))
    sys.exit(0 if h.failed == 0 else 1)


if __name__ == "__main__":
    main()
