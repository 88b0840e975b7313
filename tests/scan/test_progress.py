"""Progress display: shown on a terminal (stderr is a pty), absent when stderr is piped."""

import os
import pty
import subprocess


def test_progress_only_on_a_terminal(keyless_bin, corpus):
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(keyless_bin), "scan", "--git", "--format", "json", "."], cwd=corpus.repo,
                           stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(master)
    tty_err = b"".join(chunks).decode(errors="replace")
    assert p.returncode == 1
    assert "keyless scan: " in tty_err and " scanned" in tty_err, repr(tty_err)
    assert "\x1b[2K" in tty_err, "the progress line is cleared at the end"
    piped = subprocess.run([str(keyless_bin), "scan", "--git", "--format", "json", "."], cwd=corpus.repo,
                           capture_output=True, text=True)
    assert piped.returncode == 1 and piped.stderr == ""
    assert piped.stdout == p.stdout.decode()
