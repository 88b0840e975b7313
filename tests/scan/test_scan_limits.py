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
