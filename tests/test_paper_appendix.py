"""paper_appendix/check_A.py verifies the claims of A_sde.md; it must pass."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_check_A_passes():
    result = subprocess.run([sys.executable, str(ROOT / "paper_appendix" / "check_A.py")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
