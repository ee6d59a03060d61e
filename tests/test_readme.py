"""The README's examples run as written, in order, on a fresh checkout (issue 19, item 5).

The ```bash blocks of "## Command line" and the ```python block of "## Python" are read from
README.md and run in order in an empty folder (``tmp_path``), one command line after another, so a
command that fails, a file a later line needs that no earlier line made, or a name the Python
block never defines fails this test. The only changes made to the README's text are these budget
rules, applied to the parsed command lines (argparse keeps the last value of a repeated flag, so
most rules append a flag rather than edit the README's):

1. ``genlab train ...`` (not ``--help``) gets ``--epochs 1 --n-examples 200`` appended;
   ``genlab resume RUN --epochs N`` gets ``--epochs 2`` (one epoch more than train's).
2. ``genlab compare`` gets ``--budget 0.05 --n-examples 200 --metric-seconds 2`` appended, and
   ``--families all`` becomes ``--families gaussian,gmm``: all 24 families, even at 3 s of
   training each, cost many CPU-minutes in evaluation and figures; two take the same path.
3. ``genlab outliers`` gets ``-n 200`` (examples scored).
4. In the Python block, ``epochs=N`` becomes ``epochs=1``.

``python`` in a bash line is the interpreter running this test (the venv's, which is what
``python`` means with the venv activated as the README says).

Not run: the ``torchrun`` lines (several processes or machines; tests/test_torchrun.py covers
the CLI under torchrun) and the two fresh-machine commands of "The two commands" (the venv
install itself, and the full-budget comparison that the README's figures come from). A line that
reads ``fashion-mnist`` or ``fortunes`` is left out, with the reason as a warning, only when that
data is not installed (Debian packages), and so is a later line that reads what it would have
written. Every command runs on one thread (OMP_NUM_THREADS=1 in the environment).

The ``genlab`` commands run in child processes forked from one driver process that imported genlab
once: a fresh interpreter per command would spend ~3-4 CPU-seconds on imports each, most of this
test's cost. The console script itself is checked to start (``genlab --version``); each forked
command runs `genlab.cli.main`, which is what the script calls.

The two README tests are slow (minutes): run them with ``pytest -m slow tests/test_readme.py``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONAL_DATA = ("fashion-mnist", "fortunes")  # Debian packages; every other data set ships with genlab
NOT_RUN = ("torchrun",)  # several processes or machines (tests/test_torchrun.py)


# ----------------------------------------------------------------------------- reading the README

def section(text: str, title: str) -> str:
    """The text of the ``## title`` section of a Markdown document."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    """The fenced code blocks of language ``lang`` in ``text``."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)


def command_lines(block: str) -> list[str]:
    """The shell command lines of a bash block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def commands(line: str) -> list[list[str]]:
    """A command line as its commands (split at ``;``), each an argv; the trailing comment dropped."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=";")
    lex.whitespace_split, lex.commenters = True, "#"
    out: list[list[str]] = [[]]
    for tok in lex:
        if tok == ";":
            out.append([])
        else:
            out[-1].append(tok)
    return [argv for argv in out if argv]


# ----------------------------------------------------------------------------- the budget rules

def flag(argv: list[str], name: str) -> str | None:
    """The last value of ``name`` in ``argv`` (``--out DIR`` or ``--out=DIR``), or None."""
    value = None
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def small(argv: list[str]) -> list[str]:
    """A ``genlab`` argv with the module docstring's rules 1-3 applied."""
    cmd = argv[1] if len(argv) > 1 else ""
    if "--help" in argv or "-h" in argv:
        return argv
    if cmd == "train":
        return argv + ["--epochs", "1", "--n-examples", "200"]
    if cmd == "resume":
        return argv + ["--epochs", "2"]
    if cmd == "compare":
        argv = argv + ["--budget", "0.05", "--n-examples", "200", "--metric-seconds", "2"]
        return argv + ["--families", "gaussian,gmm"] if flag(argv, "--families") == "all" else argv
    if cmd == "outliers":
        return argv + ["-n", "200"]
    return argv


def small_python(code: str) -> str:
    """The Python block with rule 4 applied."""
    return re.sub(r"\bepochs=\d+", "epochs=1", code)


def missing_data() -> dict[str, str]:
    """Optional data set -> why it cannot be read here (genlab's own message), for those missing."""
    from genlab.data import load_dataset

    missing = {}
    for name in OPTIONAL_DATA:
        try:
            load_dataset(name, n=1)
        except (FileNotFoundError, OSError, ValueError) as e:
            missing[name] = str(e)
    return missing


def data_of(argv: list[str]) -> list[str]:
    """The data sets a command names (``--data``, or compress's INPUT), split at ``+`` and ``:``."""
    names = [flag(argv, "--data")] + ([argv[3]] if argv[1:2] == ["compress"] and len(argv) > 3 else [])
    return [part.split(":")[0] for n in names if n for part in n.split("+")]


def plan(lines: list[str], missing: dict[str, str]) -> tuple[list[dict], list[str]]:
    """The steps to run (``{"line", "argv", "genlab"}``) and the reasons of the lines left out."""
    steps, skipped, unmade = [], [], set()
    for line in lines:
        argvs = commands(line)
        if argvs[0][0] in NOT_RUN:
            continue
        lacking = [d for argv in argvs if argv[0] == "genlab" for d in data_of(argv) if d in missing]
        needs = [p for p in unmade if any(p in argv for argv in argvs)]
        if lacking or needs:
            unmade.update(o for argv in argvs for o in [flag(argv, "--out")] if o)
            why = missing[lacking[0]] if lacking else f"needs {needs[0]}, which a line left out writes"
            skipped.append(f"{line}: {why}")
            continue
        for argv in argvs:
            if argv[0] == "genlab":
                steps.append({"line": line, "argv": small(argv)[1:], "genlab": True})
            elif argv[0] == "python":
                steps.append({"line": line, "argv": [sys.executable, *argv[1:]], "genlab": False})
            else:
                raise AssertionError(f"README line {line!r} runs {argv[0]!r}: teach tests/test_readme.py to run it")
    return steps, skipped


# ----------------------------------------------------------------------------- the driver

def drive(plan_file: str) -> int:
    """Run the steps of ``plan_file`` in order (``python tests/test_readme.py PLAN``): ``genlab``
    commands in a child forked from this process, which has imported genlab once; the others
    as subprocesses. Stops at the first failure; returns its exit status."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (imported once, here, for every child)

    from genlab.cli import main
    from genlab.cli.parser import build_parser

    build_parser(None)  # imports every command group and family
    for step in json.loads(Path(plan_file).read_text()):
        print(f"$ {shlex.join(['genlab', *step['argv']] if step['genlab'] else step['argv'])}", flush=True)
        if not step["genlab"]:
            rc = subprocess.run(step["argv"]).returncode
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child runs the command as the console script would, then leaves at once
                try:
                    code = main(step["argv"])
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 1
                except BaseException:
                    import traceback

                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            _, status, usage = os.wait4(pid, 0)
            rc = os.waitstatus_to_exitcode(status)
            print(f"# {usage.ru_utime + usage.ru_stime:.1f} CPU-s", flush=True)
        if rc != 0:
            print(f"FAILED (exit status {rc}): {step['line']}", flush=True)
            return 1
    return 0


def _env() -> dict[str, str]:
    env = {**os.environ, "GENLAB_PROGRESS_EVERY": "60", "MPLBACKEND": "Agg"}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"
    return env


def _genlab_script() -> list[str]:
    script = Path(sys.executable).parent / "genlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "genlab"]


# ----------------------------------------------------------------------------- the tests

def test_rules_parse_the_readme_as_expected():
    """The parser and the rules do what the docstring says (a rule that silently stopped matching
    would leave a command at its full budget or skip it)."""
    assert commands("genlab --version; genlab metrics   # two; a comment") == [["genlab", "--version"],
                                                                               ["genlab", "metrics"]]
    assert small(["genlab", "train", "vae", "--epochs", "200"])[-4:] == ["--epochs", "1", "--n-examples", "200"]
    assert small(["genlab", "train", "vae", "--help"]) == ["genlab", "train", "vae", "--help"]
    assert flag(small(["genlab", "compare", "--families", "all"]), "--families") == "gaussian,gmm"
    assert flag(small(["genlab", "compare", "--families", "gmm,nsf"]), "--families") == "gmm,nsf"
    assert small_python("TrainConfig(epochs=100), Estimator('vae', epochs=50)") == \
        "TrainConfig(epochs=1), Estimator('vae', epochs=1)"
    assert data_of(["genlab", "train", "cyclegan", "--data", "digits+fashion-mnist:binary"]) == \
        ["digits", "fashion-mnist"]
    lines = ["genlab train made --data fortunes --out runs/t", "genlab sample runs/t -n 4 --out t.txt",
             "genlab list", "torchrun --nproc_per_node 2 -m genlab train vae"]
    steps, skipped = plan(lines, {"fortunes": "apt-get install fortunes"})
    assert [s["argv"] for s in steps] == [["list"]] and len(skipped) == 2
    assert "apt-get install fortunes" in skipped[0] and "runs/t" in skipped[1]


@pytest.mark.slow
def test_readme_command_line_runs_in_order(tmp_path):
    text = README.read_text(encoding="utf-8")
    lines = [line for block in code_blocks(section(text, "Command line"), "bash") for line in command_lines(block)]
    assert sum(line.startswith("genlab ") for line in lines) >= 20, "the Command line block was not found"
    steps, skipped = plan(lines, missing_data())
    for reason in skipped:
        warnings.warn(f"README line not run: {reason}")

    version = subprocess.run([*_genlab_script(), "--version"], capture_output=True, text=True, env=_env())
    assert version.returncode == 0 and version.stdout.startswith("genlab "), version.stderr

    (tmp_path / "plan.json").write_text(json.dumps(steps))
    res = subprocess.run([sys.executable, __file__, str(tmp_path / "plan.json")], cwd=tmp_path, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-8000:]
    assert sum(line.startswith("$ ") for line in res.stdout.splitlines()) == len(steps), res.stdout[-3000:]


@pytest.mark.slow
def test_readme_python_block_runs(tmp_path):
    blocks = code_blocks(section(README.read_text(encoding="utf-8"), "Python"), "python")
    assert len(blocks) == 1, f"expected one python block under '## Python', found {len(blocks)}"
    code = small_python(blocks[0])
    assert code != blocks[0], "rule 4 matched nothing: the Python block would train at full budget"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=1200)
    assert res.returncode == 0, res.stderr[-6000:]
    assert (tmp_path / "runs" / "flow-digits" / "model.safetensors").exists()


if __name__ == "__main__":
    sys.exit(drive(sys.argv[1]))
