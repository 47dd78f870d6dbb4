"""Kept records (sde_edge.experiments.kept): a record made for another run spec or budget is ignored.
The report rebuilt from them alone: tests/test_experiments.py."""
from sde_edge.experiments import kept
from sde_edge.experiments.runs import RunSpec


def test_a_record_kept_for_another_spec_or_budget_is_ignored(tmp_path):
    kept.set_kept(tmp_path)
    try:
        spec = RunSpec("run-a", "paper/shapes_edge.py", 0, {"optim.lr": 5e-4, "model.ch_mult": (1, 2)})
        kept.keep_evaluation(spec, "ddpm500_n1000_seed0", {"fd": 3.0, "step": 10_000})
        kept.keep_training(spec, {"train_minutes": 60.0})
        kept.keep_divergence(RunSpec("run-b", "paper/shapes_edge.py", 0), "training diverged at step 7")
        assert kept.kept_evaluation(spec, "ddpm500_n1000_seed0", step=10_000)["fd"] == 3.0
        assert kept.kept_evaluation(spec, "ddpm500_n1000_seed0", step=5_000) is None  # another checkpoint
        assert kept.kept_evaluation(spec, "ddim50_n1000_seed0", step=10_000) is None  # another protocol
        assert kept.kept_training(spec) == {"train_minutes": 60.0}
        changed = RunSpec("run-a", "paper/shapes_edge.py", 0, {"optim.lr": 2e-3, "model.ch_mult": (1, 2)})
        for other in (changed, RunSpec("run-a", "paper/shapes_edge.py", 1, spec.overrides),
                      RunSpec("run-a", "paper/shapes_ddpm.py", 0, spec.overrides)):
            assert kept.kept_evaluation(other, "ddpm500_n1000_seed0", step=10_000) is None
            assert kept.kept_training(other) == {}
        assert kept.kept_training(spec, quick=True) == {}  # the --quick budget is another run
        assert kept.kept_divergence(RunSpec("run-b", "paper/shapes_edge.py", 0)) == "training diverged at step 7"
        assert [key for key, _ in kept.kept_records()] == ["run-a", "run-b"]
        kept.keep_evaluation(changed, "ddpm500_n1000_seed0", {"fd": 4.0, "step": 10_000})  # replaces the old
        assert kept.kept_evaluation(spec, "ddpm500_n1000_seed0", step=10_000) is None
    finally:
        kept.set_kept(None)
    assert kept.kept_evaluation(spec, "ddpm500_n1000_seed0", step=10_000) is None  # keeping off: nothing read


def _keep_many(folder, first):
    kept.set_kept(folder)
    spec = RunSpec("shared", "paper/shapes_edge.py", 0)
    for step in range(first, first + 40):
        kept.keep_evaluation(spec, "ddim50_n500_seed0", {"fd": float(step), "step": step})


def test_processes_keeping_the_same_run_side_by_side_lose_nothing(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_keep_many, args=(tmp_path, first)) for first in (0, 1000)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    kept.set_kept(tmp_path)
    try:
        steps = kept.kept_steps(RunSpec("shared", "paper/shapes_edge.py", 0), "ddim50_n500_seed0")
    finally:
        kept.set_kept(None)
    assert steps == list(range(40)) + list(range(1000, 1040))


def test_a_kept_divergence_is_raised_without_the_runs_marker_and_never_trained_again(tmp_path):
    import pytest

    from sde_edge.experiments.runs import ensure_trained, raise_if_diverged
    from sde_edge.training.trainer import DivergenceError

    spec = RunSpec("sweep-cell", "paper/digits_edge.py", 0, {"optim.lr": 2e-3})
    kept.set_kept(tmp_path / "kept")
    try:
        kept.keep_divergence(spec, "training diverged at step 123: loss nan")
        with pytest.raises(DivergenceError, match="step 123"):
            raise_if_diverged(spec, tmp_path / "root")
        with pytest.raises(DivergenceError, match="step 123"):
            ensure_trained(spec, tmp_path / "root", progress=False)
    finally:
        kept.set_kept(None)
    assert not (tmp_path / "root").exists()  # nothing trained


def test_a_kept_picture_is_the_one_kept_for_this_spec_and_nothing_else(tmp_path):
    source = tmp_path / "grid.png"
    source.write_bytes(b"grid of run-a")
    spec = RunSpec("run-a", "paper/shapes_edge.py", 0)
    assert kept.kept_picture(spec, "ddpm500_n1000_seed0", source) == source  # keeping off: the source itself
    kept.set_kept(tmp_path / "kept")
    try:
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0", source) == source  # no record of the run yet
        kept.keep_evaluation(spec, "ddpm500_n1000_seed0", {"fd": 3.0, "step": 10_000})
        picture = kept.kept_picture(spec, "ddpm500_n1000_seed0", source)
        assert picture.parent == tmp_path / "kept" and picture.read_bytes() == b"grid of run-a"
        source.unlink()  # the trainings root is gone: the kept copy answers
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0") == picture
        assert kept.kept_picture(spec, "ddim50_n1000_seed0") is None  # another protocol
        picture.write_bytes(b"edited")
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0") is None  # not the picture the record holds
        source.write_bytes(b"grid of run-a")
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0", source, note="from a retraining") == picture
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0", source) == picture  # the same picture again
        assert kept.kept_picture_note(spec, "ddpm500_n1000_seed0") == "from a retraining"  # keeps its note
        source.write_bytes(b"grid of run-a, measured again")
        kept.kept_picture(spec, "ddpm500_n1000_seed0", source)
        assert kept.kept_picture_note(spec, "ddpm500_n1000_seed0") is None  # another picture: not its note
        changed = RunSpec("run-a", "paper/shapes_edge.py", 1)  # its record replaces the old one
        kept.keep_evaluation(changed, "ddpm500_n1000_seed0", {"fd": 4.0, "step": 10_000})
        assert kept.kept_picture(changed, "ddpm500_n1000_seed0") is None  # the old spec's picture is not its own
        kept.keep_evaluation(spec, "ddpm500_n1000_seed0", {"fd": 3.0, "step": 10_000})
        assert kept.kept_picture(spec, "ddpm500_n1000_seed0") is None  # a record made afresh holds no picture
    finally:
        kept.set_kept(None)


def test_a_derived_result_is_computed_once_kept_and_made_again_for_other_inputs(tmp_path):
    from sde_edge.experiments.evaluate import derived_result

    calls = []

    def compute(value):
        def run():
            calls.append(value)
            return {"fd": value}
        return run

    made_for = {"first_stage": "stage-a", "digest": "abc", "n": 1000}
    kept.set_kept(tmp_path / "kept")
    try:
        assert derived_result("floor-x", made_for, tmp_path / "root", compute(1.0)) == {"fd": 1.0}
        # a new session: the trainings root is gone, the checkout's kept copy answers
        assert derived_result("floor-x", made_for, tmp_path / "other-root", compute(2.0)) == {"fd": 1.0}
        # other weights (another digest): made again, and that replaces the kept copy
        assert derived_result("floor-x", {**made_for, "digest": "def"}, tmp_path / "root", compute(3.0)) == {"fd": 3.0}
        assert kept.kept_result("floor-x", made_for) is None
    finally:
        kept.set_kept(None)
    assert calls == [1.0, 3.0]
    # keeping off: the root's cache still answers for the inputs it was made for, not for others
    assert derived_result("floor-x", {**made_for, "digest": "def"}, tmp_path / "root", compute(4.0)) == {"fd": 3.0}
    assert derived_result("floor-x", made_for, tmp_path / "root", compute(5.0)) == {"fd": 5.0}


def test_a_kept_file_seeds_an_empty_cache_and_a_new_one_is_kept(tmp_path):
    cache, folder = tmp_path / "cache" / "classifier.pt", tmp_path / "kept"
    kept.set_kept(folder)
    try:
        with kept.kept_file(cache, "classifiers"):  # nothing anywhere: the body builds it
            assert not cache.exists()
            cache.parent.mkdir(parents=True)
            cache.write_bytes(b"weights-1")
        assert (folder / "classifiers" / "classifier.pt").read_bytes() == b"weights-1"
        cache.unlink()  # a new session's empty cache
        with kept.kept_file(cache, "classifiers"):
            assert cache.read_bytes() == b"weights-1"
        cache.write_bytes(b"weights-2")  # a cache trained elsewhere: the kept copy is what is measured with
        with kept.kept_file(cache, "classifiers"):
            assert cache.read_bytes() == b"weights-1"
        assert (folder / "classifiers" / "classifier.pt").read_bytes() == b"weights-1"
    finally:
        kept.set_kept(None)
