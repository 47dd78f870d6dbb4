"""Run ``python -m sde_edge.cli ...`` and ``python tools/X.py ...`` command lines in fresh processes
that start without paying for ``import torch`` again (about 3 s a start on a small machine; the
suite starts about a hundred of them).

A fork server (``multiprocessing``'s forkserver: a clean Python process that is not pytest, with
torch and the library imported once) forks one child per command line; the child takes the
command's environment, working directory, argv and output files, runs the module or script as
``python`` would run it (``__main__``, ``sys.exit`` status, atexit handlers), and exits. It is a
real process with its own pid: tests send it signals, SIGKILL it and read its exit status exactly
as with ``subprocess``. Tests that need a brand-new interpreter (hash seeds, imports at start,
torchrun) keep using ``subprocess``.
"""
import atexit
import functools
import multiprocessing
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path

# what most command lines import; scipy.stats, matplotlib (sde_edge.figures, the sampler comparison) and
# clean-fid (it imports torchvision and with it torch._dynamo: 4 s) are each seconds a start
PRELOAD = ["torch", "numpy", "PIL.Image", "ml_collections", "absl.flags", "sde_edge.training.trainer",
           "sde_edge.storage.checkpoint",
           "sde_edge.config", "sde_edge.sampling", "sde_edge.metrics", "sde_edge.figures",
           "sde_edge.experiments.sampler_comparison", "cleanfid.fid"]


@functools.cache
def _context():
    """The forkserver context of this test process, its server started once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the server itself never runs torch in parallel
    try:
        from multiprocessing import forkserver

        forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    return context


def _child(argv, env, cwd, out_path, err_path):
    """In the forked child: become ``python ARGV`` and never return."""
    for fd, path in ((1, out_path), (2, err_path)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    import torch

    if "OMP_NUM_THREADS" in env:  # what a new interpreter would have read at import
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    code = 0
    try:
        if argv[0] == "-m" and argv[1] == "sde_edge.cli":
            from sde_edge.cli import main

            sys.argv = [str(Path(sys.modules["sde_edge.cli"].__file__)), *argv[2:]]
            code = main(sys.argv)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, str(Path(argv[0]).resolve().parent))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as done:  # sys.exit(None) is 0; sys.exit("message") prints it and is 1
        code = 0 if done.code is None else done.code
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - what python prints for an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Process:
    """A ``subprocess.Popen`` look-alike for ``[sys.executable, "-m", "sde_edge.cli", ...]`` or
    ``[sys.executable, "script.py", ...]``; stdout and stderr are kept as text."""

    def __init__(self, command, env=None, cwd=None):
        if command[0] != sys.executable or (command[1] == "-m" and command[2] != "sde_edge.cli"):
            raise ValueError(f"forked.Process runs sde_edge.cli or a script, not {command[:3]}")
        self._folder = tempfile.mkdtemp(prefix="forked_")
        weakref.finalize(self, shutil.rmtree, self._folder, True)  # also when the output is never read
        self._out, self._err = os.path.join(self._folder, "out"), os.path.join(self._folder, "err")
        env = dict(os.environ if env is None else env)
        args = ([str(a) for a in command[1:]], env, str(cwd or os.getcwd()), self._out, self._err)
        self._process = _context().Process(target=_child, args=args)
        self._process.start()
        self.pid = self._process.pid
        self._text = None
        self.args = command

    @property
    def returncode(self):
        return self._process.exitcode

    def poll(self):
        return self._process.exitcode

    def send_signal(self, signum):
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def output(self):
        if self._text is None:
            self._text = tuple(Path(p).read_text(errors="replace") for p in (self._out, self._err))
            shutil.rmtree(self._folder, ignore_errors=True)
        return self._text

    def communicate(self, timeout=None):
        self.wait(timeout)
        return self.output()


def run(command, env=None, cwd=None, timeout=None):
    """``subprocess.run(command, capture_output=True, text=True, ...)`` through the fork server."""
    process = Process(command, env=env, cwd=cwd)
    try:
        stdout, stderr = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
