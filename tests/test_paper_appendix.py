"""paper_appendix/check_*.py verify the claims of A_sde.md, B_baselines.md and D_bound.md; they must pass."""
import sys
from pathlib import Path

import pytest

import forked

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["check_A.py", "check_B.py", "check_D.py"])
def test_appendix_checks_pass(script):
    result = forked.run(
        [sys.executable, str(ROOT / "paper_appendix" / script)], timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
