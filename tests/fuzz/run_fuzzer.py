#!/usr/bin/env python3
"""Runs one libFuzzer target for a bounded time on a scratch copy of its corpus (libFuzzer
writes new inputs into its first corpus directory; the checked-in corpus stays untouched).

usage: run_fuzzer.py FUZZER CORPUS_DIR SECONDS
Any crash, leak or assertion makes the run (and the test) fail; the crashing input is kept
in the scratch directory, whose path is printed."""
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    fuzzer, corpus, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    scratch = tempfile.mkdtemp(prefix="pg-fuzz-")
    work = os.path.join(scratch, "corpus")
    shutil.copytree(corpus, work)
    cmd = [fuzzer, f"-max_total_time={seconds}", "-rss_limit_mb=1024", "-timeout=10",
           f"-artifact_prefix={scratch}/", "-print_final_stats=1", work]
    print(" ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc == 0:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"fuzzer failed ({rc}); inputs kept in {scratch}", file=sys.stderr)
    return 0 if rc == 0 else 1  # 77 or a negative signal number would read as a skip


if __name__ == "__main__":
    sys.exit(main())
