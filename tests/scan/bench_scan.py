"""Benchmark (not collected by pytest): keyless scan vs detect-secrets.

    .venv/bin/python tests/scan/bench_scan.py [--mb 200] [--commits 10000] [--ds-mb 20]

1. A generated tree of source-like text files (--mb MB, a few planted keys); keyless MB/s on all
   of it, detect-secrets MB/s on a --ds-mb subset of the same files (it is too slow for all).
2. A generated git history of --commits commits (git fast-import), each changing a file;
   `keyless scan --git` MB/s over the blob bytes it scanned.
Prints a table; planted keys must all be found.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import _find_binary  # noqa: E402
from corpus import key_id, secret  # noqa: E402

WORDS = ("def class return import self value config region bucket client session request "
         "response error token user policy role account deploy build test main string list "
         "for while if else try except with open read write json yaml http https aws s3").split()


def text_block(rng, nbytes):
    out, n = [], 0
    while n < nbytes:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        if rng.random() < 0.02:
            line += f" = \"{rng.getrandbits(160):040x}\""  # hex hashes
        out.append("    " * rng.randint(0, 3) + line)
        n += len(out[-1]) + 1
    return "\n".join(out) + "\n"


def make_tree(root, mb, rng):
    planted = []
    total, i = 0, 0
    while total < mb * 1_000_000:
        d = root / f"pkg{i // 100}"
        d.mkdir(parents=True, exist_ok=True)
        body = text_block(rng, rng.randint(8_000, 64_000))
        if i % 997 == 0:
            k = key_id("AKIA", rng.randrange(10**12), rng)
            body += f"AWS_ACCESS_KEY_ID={k}\nAWS_SECRET_ACCESS_KEY={secret(rng)}\n"
            planted.append(k)
        f = d / f"mod{i}.py"
        f.write_text(body)
        total += len(body)
        i += 1
    return planted, total, i


def make_history(repo, commits, rng):
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    planted = []
    p = subprocess.Popen(["git", "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE)
    w = p.stdin
    for c in range(1, commits + 1):
        body = text_block(rng, rng.randint(500, 4000))
        if c % 1000 == 0:
            k = key_id("AKIA", rng.randrange(10**12), rng)
            body += f"aws_access_key_id = {k}\naws_secret_access_key = {secret(rng)}\n"
            planted.append(k)
        data = body.encode()
        msg = f"commit {c}".encode()
        w.write(b"commit refs/heads/main\n")
        w.write(f"committer t <t@example.invalid> {1_700_000_000 + c} +0000\n".encode())
        w.write(b"data %d\n%s\n" % (len(msg), msg))
        w.write(b"M 100644 inline src/file%d.py\n" % (c % 500))
        w.write(b"data %d\n%s\n" % (len(data), data))
    w.close()
    assert p.wait() == 0
    return planted


def timed(cmd, cwd):
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200)
    ap.add_argument("--ds-mb", type=float, default=20)
    ap.add_argument("--commits", type=int, default=10_000)
    a = ap.parse_args()
    bin_ = _find_binary()
    ds = str(Path(__file__).resolve().parents[2] / ".venv/bin/detect-secrets")
    rng = random.Random(1)
    work = Path(tempfile.mkdtemp(prefix="keyless-bench-"))
    try:
        tree = work / "tree"
        planted, total, nfiles = make_tree(tree, a.mb, rng)
        p, k_secs = timed([str(bin_), "scan", "--format", "json", "."], tree)
        found = {f.get("access_key_id") for f in json.loads(p.stdout)["findings"]}
        assert set(planted) <= found, "missed planted keys"
        sub = work / "subset"
        sub.mkdir()
        sub_bytes = 0
        for f in sorted(tree.rglob("*.py")):
            if sub_bytes >= a.ds_mb * 1e6:
                break
            dst = sub / f.relative_to(tree)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
            sub_bytes += f.stat().st_size
        _, k_sub = timed([str(bin_), "scan", "--format", "json", "."], sub)
        _, ds_secs = timed([ds, "scan", "--all-files", "."], sub)
        repo = work / "repo"
        t = time.perf_counter()
        hplanted = make_history(repo, a.commits, rng)
        gen = time.perf_counter() - t
        p, g_secs = timed([str(bin_), "scan", "--git", "--format", "json", "."], repo)
        rep = json.loads(p.stdout)
        gfound = {f.get("access_key_id") for f in rep["findings"]}
        assert set(hplanted) <= gfound, "missed planted keys in history"
        gbytes = rep["stats"]["bytes"]
        print(f"binary: {bin_}")
        print(f"tree: {nfiles} files, {total / 1e6:.1f} MB; keyless {k_secs:.2f}s = {total / 1e6 / k_secs:.1f} MB/s "
              f"({len(planted)} planted keys found)")
        print(f"subset {sub_bytes / 1e6:.1f} MB: keyless {k_sub:.2f}s = {sub_bytes / 1e6 / k_sub:.1f} MB/s; "
              f"detect-secrets {ds_secs:.2f}s = {sub_bytes / 1e6 / ds_secs:.2f} MB/s; ratio {ds_secs / k_sub:.0f}x")
        print(f"git: {a.commits} commits (generated in {gen:.1f}s), {rep['stats']['files']} blobs, {gbytes / 1e6:.1f} MB; "
              f"keyless --git {g_secs:.2f}s = {gbytes / 1e6 / g_secs:.1f} MB/s, {a.commits / g_secs:.0f} commits/s "
              f"({len(hplanted)} planted keys found)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
