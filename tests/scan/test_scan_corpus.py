"""keyless scan on the planted corpus: 100% recall, no decoy reported as a live key, and at least
every AWS credential detect-secrets finds. Prints precision/recall/time for both tools."""

import hashlib
import json
import subprocess
import time


def run_keyless(bin_, *args, cwd):
    t = time.perf_counter()
    p = subprocess.run([str(bin_), "scan", *args], cwd=cwd, capture_output=True, text=True)
    return p, time.perf_counter() - t


def test_git_history_recall_and_decoys(keyless_bin, corpus):
    p, secs = run_keyless(keyless_bin, "--git", "--format", "json", ".", cwd=corpus.repo)
    assert p.returncode == 1, p.stderr
    assert p.stderr == "", "no progress output when stderr is not a terminal"
    report = json.loads(p.stdout)
    findings = report["findings"]
    live = [f for f in findings if not f.get("example")]
    found_ids = {f.get("access_key_id") for f in live}
    missing = [(x.where, x.key_id) for x in corpus.planted if x.key_id not in found_ids]
    assert not missing, f"planted keys not found: {missing}"
    # Every live finding is a planted key: nothing from the decoys or examples.
    planted = corpus.live_ids()
    false_live = [f for f in live if f.get("access_key_id") not in planted]
    assert not false_live, false_live
    for f in findings:
        if f.get("access_key_id") in corpus.example_ids:
            assert f["rule"] == "aws-example-key" and f["severity"] == "low"
    # Pairs: every planted key is reported with its secret, and the account decoded.
    by_id = {f["access_key_id"]: f for f in live}
    for x in corpus.planted:
        f = by_id[x.key_id]
        assert f["account_id"] == x.account, (x.where, f)
        assert f["redacted"] == x.secret[:4] + "…(40 chars)", (x.where, f)
        assert f["confidence"] == "high", (x.where, f)
        assert "commit" in f and len(f["commit"]) == 40
    # History-only keys carry the commit and path where they appeared.
    for x in corpus.planted:
        if x.history_only:
            assert by_id[x.key_id]["path"] == x.path
    # No full secret anywhere in the output.
    for x in corpus.planted:
        assert x.secret not in p.stdout
    print(f"\nkeyless scan --git: {len(live)} live findings, {len(findings) - len(live)} example, {secs:.3f}s")


def _ds_scan(ds_bin, cwd):
    t = time.perf_counter()
    p = subprocess.run([ds_bin, "scan", "--all-files", "."], cwd=cwd, capture_output=True, text=True)
    secs = time.perf_counter() - t
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), secs


def test_compare_with_detect_secrets(keyless_bin, detect_secrets_bin, corpus):
    flat = corpus.flat
    ds, ds_secs = _ds_scan(detect_secrets_bin, flat)
    kp, k_secs = run_keyless(keyless_bin, "--format", "json", ".", cwd=flat)
    assert kp.returncode == 1, kp.stderr
    k = json.loads(kp.stdout)["findings"]

    sha_map = corpus.sha1_to_planted()
    planted = corpus.live_ids()
    # detect-secrets: AWS-typed results; a result is a true positive when it is a planted id/secret.
    ds_aws = [r for results in ds["results"].values() for r in results if r["type"] == "AWS Access Key"]
    ds_found = {sha_map[r["hashed_secret"]] for r in ds_aws if r["hashed_secret"] in sha_map}
    ds_tp = sum(1 for r in ds_aws if r["hashed_secret"] in sha_map)
    ds_precision = ds_tp / len(ds_aws) if ds_aws else 1.0
    ds_recall = len(ds_found) / len(planted)

    k_live = [f for f in k if not f.get("example")]
    k_found = {f.get("access_key_id") for f in k_live} & planted
    k_tp = sum(1 for f in k_live if f.get("access_key_id") in planted)
    k_precision = k_tp / len(k_live) if k_live else 1.0
    k_recall = len(k_found) / len(planted)

    print("\ntool            precision  recall  time")
    print(f"keyless         {k_precision:9.3f}  {k_recall:6.3f}  {k_secs:.3f}s")
    print(f"detect-secrets  {ds_precision:9.3f}  {ds_recall:6.3f}  {ds_secs:.3f}s")
    print(f"(planted credentials: {len(planted)}; detect-secrets AWS results: {len(ds_aws)}; keyless live findings: {len(k_live)})")

    assert ds_found <= k_found, f"detect-secrets found credentials keyless missed: {ds_found - k_found}"
    assert k_recall == 1.0
    assert k_precision == 1.0


def test_baseline_suppresses_everything_accepted(keyless_bin, corpus, tmp_path):
    p, _ = run_keyless(keyless_bin, "--format", "json", ".", cwd=corpus.repo)
    base = tmp_path / "baseline.json"
    base.write_text(p.stdout)
    q, _ = run_keyless(keyless_bin, "--baseline", str(base), ".", cwd=corpus.repo)
    assert q.returncode == 0, q.stdout


def test_min_severity_and_exit_codes(keyless_bin, corpus):
    p, _ = run_keyless(keyless_bin, "--format", "json", "--min-severity", "high", "README.md", cwd=corpus.repo)
    assert p.returncode == 0 and json.loads(p.stdout)["findings"] == []
    p, _ = run_keyless(keyless_bin, "README.md", cwd=corpus.repo)
    assert p.returncode == 1 and "aws-example-key" in p.stdout
    p, _ = run_keyless(keyless_bin, "no-such-file", cwd=corpus.repo)
    assert p.returncode == 2
