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


def _rebuilt_readme(tmp_path, artifacts):
    import sde_edge.experiments.studies  # noqa: F401 (registers every study)
    from sde_edge.experiments.registry import STUDIES, claim_order
    from sde_edge.experiments.report import load_claims, write_readme_results

    copy = tmp_path / "README.md"
    copy.write_text(README.read_text())
    write_readme_results(copy, load_claims(artifacts, list(STUDIES), claim_order()))
    return copy.read_text()


def test_readme_is_a_front_door():
    import subprocess

    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "https://arxiv.org/abs/2410.01540" in text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    tracked = subprocess.run(["git", "ls-files", *pictures], capture_output=True, text=True, cwd=README.parent).stdout
    assert pictures and set(tracked.split()) == set(pictures), pictures
    for link in re.findall(r"\]\(((?:docs|paper_appendix)/[^)#]+)\)", text):
        assert (README.parent / link).exists(), link


def test_readme_results_are_the_kept_claims(tmp_path):
    """The committed table is what the kept claims rebuild, and it follows a changed kept number."""
    import json
    import shutil

    artifacts = README.parent / "paper_appendix" / "reproduction"
    assert _rebuilt_readme(tmp_path, artifacts) == README.read_text(), "run: python tools/experiments.py --readme"
    changed = tmp_path / "reproduction"
    shutil.copytree(artifacts, changed, ignore=shutil.ignore_patterns("*.png", "kept"))
    path = changed / "comparison" / "claims.json"
    claims = json.loads(path.read_text())
    claims[0]["ours"] = claims[0]["ours"].replace("FD E ", "FD E 123.45 (was ", 1)
    path.write_text(json.dumps(claims))
    rebuilt = _rebuilt_readme(tmp_path, changed)
    assert "FD E 123.45 (was " in rebuilt and "FD E 123.45" not in README.read_text()


def test_a_headline_cut_inside_a_parenthesis_closes_it():
    from sde_edge.experiments.report import headline

    assert headline("not every run is done yet (1 and 1 of 5 seeds evaluated; 25 min a run)") == \
        "not every run is done yet (1 and 1 of 5 seeds evaluated)"
    assert headline("FD 3.9 ± 0.1 vs 3.6 (6% higher); paired 0.2") == "FD 3.9 ± 0.1 vs 3.6 (6% higher)"
