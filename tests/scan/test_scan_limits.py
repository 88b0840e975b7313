"""keyless scan on oversized files: bounded memory, and every skipped file counted."""

import json
import os
import resource
import subprocess


def _run_measured(args, cwd):
    """Runs the binary in a fresh child and returns (result, peak RSS of that child in KiB)."""
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(p.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stdout.write(p.stdout)\n"
    )
    out = subprocess.run(["python3", "-c", probe, *args], cwd=cwd, capture_output=True, text=True, check=True)
    code, rss, stdout = out.stdout.split("\n", 2)
    return int(code), int(rss), stdout


def test_an_oversized_file_is_skipped_without_reading_it(keyless_bin, tmp_path):
    # 256 MiB, sparse: costs no disk. It was read whole into memory before the size check
    # when named on the command line, and skipped uncounted inside a directory.
    big = tmp_path / "tree" / "huge.log"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    (big.parent / "small.env").write_text("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\n")
    for target in ["tree/huge.log", "tree"]:
        code, rss_kib, stdout = _run_measured([str(keyless_bin), "scan", "--format", "json", target], tmp_path)
        stats = json.loads(stdout)["stats"]
        assert stats["skipped_large"] == 1, (target, stats)
        assert code == (0 if target.endswith(".log") else 1)
        assert rss_kib < 64 * 1024, f"{target}: peak RSS {rss_kib} KiB"


def test_git_history_of_large_blobs_is_scanned_in_bounded_memory(keyless_bin, tmp_path):
    # 40 text blobs of 18 MB each (4 MB on disk, they compress well). Blobs read from git
    # waited for the scanner in a queue of 64, so memory grew to 64 times the largest blob
    # (520 MB here, 2 GB with 32 MB blobs).
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    line = "abcdefgh " * 1000 + "\n"
    for i in range(40):
        (repo / f"f{i}.txt").write_text(line * 2000 + str(i))
    (repo / "k.env").write_text("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\n")
    subprocess.run(git + ["add", "."], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "big"], cwd=repo, check=True)
    for f in repo.glob("f*.txt"):
        f.unlink()
    code, rss_kib, stdout = _run_measured(
        [str(keyless_bin), "scan", "--git", "--threads", "1", "--format", "json", "repo"], tmp_path)
    report = json.loads(stdout)
    assert code == 1
    assert [f["path"] for f in report["findings"]] == ["k.env"]
    assert report["stats"]["bytes"] > 40 * 18_000_000
    assert rss_kib < 200 * 1024, f"peak RSS {rss_kib} KiB"
