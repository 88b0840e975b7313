"""Issuance throughput with durable audit vs audit disabled (`--unsafe-disable-audit-for-benchmark`).

Starts the real OIDC issuer and `keyless serve` (KEYLESS_BIN, ideally a release build) with a high
throttle, drives AssumeRoleWithWebIdentity with the Rust load generator
(`cargo build --release -p keyless-server --example issuance_load`; LOADGEN=path), alternating
the two modes, and reports requests/s and the server's CPU time per request (utime+stime from
/proc), whose difference is the audit cost per record on the whole path.

    KEYLESS_BIN=target/release/keyless LOADGEN=target/release/examples/issuance_load \
        .venv/bin/python tests/e2e/bench_audit_issuance.py [--seconds 5] [--concurrency 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyless_e2e import ACCOUNT, _stop, _wait_for_line, default_config, keyless_bin, start_issuer  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def start(work: Path, config: str, disabled: bool) -> tuple[subprocess.Popen, str]:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "keyless.toml"
    cfg.write_text(config)
    args = [str(keyless_bin()), "serve", "--config", str(cfg), "--listen", "127.0.0.1:0", "--log", "warn"]
    if disabled:
        args.append("--unsafe-disable-audit-for-benchmark")
    out, err = work / "out", work / "err"
    proc = subprocess.Popen(args, stdout=out.open("wb"), stderr=err.open("wb"), stdin=subprocess.DEVNULL)
    m = _wait_for_line(out, re.compile(r"keyless listening on (http://127\.0\.0\.1:\d+)"), proc, 30, "serve", err)
    url = m.group(1)
    for _ in range(100):
        if "issuer keys: warm" in requests.get(url + "/readyz", timeout=5).text:
            break
        time.sleep(0.1)
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-wait-micros", type=int, default=None,
                    help="[audit] max_batch_wait_micros for the audited server (default: the server's)")
    a = ap.parse_args()
    loadgen = os.environ.get("LOADGEN", "target/release/examples/issuance_load")
    work = Path(tempfile.mkdtemp(prefix="keyless-bench-"))
    issuer = start_issuer(work)
    try:
        token = work / "token"
        token.write_text(issuer.gha_token())
        role = f"arn:aws:iam::{ACCOUNT}:role/gha"
        results: dict[str, list[tuple[float, float]]] = {"audit": [], "disabled": []}
        for r in range(a.rounds):
            for mode in ("audit", "disabled"):
                d = work / f"{mode}-{r}"
                config = default_config(issuer, d / "data", (1e9, 1_000_000_000))
                if a.batch_wait_micros is not None:
                    config += f"\n[audit]\nmax_batch_wait_micros = {a.batch_wait_micros}\n"
                proc, url = start(d, config, mode == "disabled")
                try:
                    # Warm up (connections, caches), then measure.
                    subprocess.run([loadgen, url + "/", role, str(token), str(a.concurrency), "1"],
                                   check=True, capture_output=True)
                    cpu0 = cpu_seconds(proc.pid)
                    cp = subprocess.run([loadgen, url + "/", role, str(token), str(a.concurrency), str(a.seconds)],
                                        check=True, capture_output=True, text=True)
                    cpu1 = cpu_seconds(proc.pid)
                    res = json.loads(cp.stdout)
                    assert res["failed"] == 0, res
                    n = max(res["ok"], 1)
                    user_us = (cpu1[0] - cpu0[0]) / n * 1e6
                    sys_us = (cpu1[1] - cpu0[1]) / n * 1e6
                    results[mode].append((res["per_second"], user_us + sys_us))
                    print(f"round {r} {mode:8}: {res['per_second']:9.1f} req/s, server CPU {user_us + sys_us:7.1f} us/request"
                          f" (user {user_us:.1f}, system {sys_us:.1f})", flush=True)
                finally:
                    _stop(proc)
        best = {m: max(v) for m, v in results.items()}
        med_cpu = {m: sorted(x[1] for x in v)[len(v) // 2] for m, v in results.items()}
        loss = 1 - best["audit"][0] / best["disabled"][0]
        print(json.dumps({
            "audit_req_per_s": round(best["audit"][0], 1),
            "disabled_req_per_s": round(best["disabled"][0], 1),
            "throughput_loss": round(loss, 4),
            "audit_cpu_us_per_request": round(med_cpu["audit"], 1),
            "disabled_cpu_us_per_request": round(med_cpu["disabled"], 1),
            "audit_cpu_us_per_record": round(med_cpu["audit"] - med_cpu["disabled"], 1),
            "concurrency": a.concurrency, "seconds": a.seconds, "rounds": a.rounds,
        }))
    finally:
        _stop(issuer.proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
