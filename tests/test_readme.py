"""The README's Python example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["result"].nfe == 101 and namespace["result"].samples.shape == (8, 1, 16, 16)
    assert namespace["nll"].bpd.shape == (2,) and namespace["bound"].bpd.shape == (2,)
