"""The developer scripts under scripts/ run against what is installed (here on the CPU, with the reference backend)."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _tactic_rounds(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "tactic_rounds.py"), "--backend", "reference",
                           "--device", "cpu", "--shape", "64x32", "--m", "3", *args],
                          capture_output=True, text=True, timeout=300)


def test_tactic_rounds_times_every_tactic_in_each_round():
    r = _tactic_rounds("--rounds", "3")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.strip().splitlines()
    assert "M=3 N=64 K=32" in head and "3 alternating rounds" in head
    assert rows and all(len(row.split("[")[1].split("]")[0].split()) == 3 for row in rows)


def test_tactic_rounds_says_when_nothing_matches():
    r = _tactic_rounds("--match", "no-such-tactic")
    assert r.returncode != 0 and "offers no tactic matching 'no-such-tactic'" in r.stderr
