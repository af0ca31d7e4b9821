"""experiments/gpu_check.py, the script run first on any GPU machine, must not rot where no GPU is.

The fast tests check its plumbing (each step isolated, failures and hangs reported while later
steps still run, one JSON file and one table) and that every flag it passes is one its scripts
accept; the slow test runs the whole check on the CPU at dry-run sizes.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location("gpu_check", EXPERIMENTS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check")
    sys.path.remove(str(EXPERIMENTS))


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_every_step_reports_and_a_failure_or_a_hang_does_not_stop_the_rest(gpu_check, tmp_path, capsys):
    writes = ("import json, sys; json.dump({'figures': [{'figure': 'speed', 'value': 2.0, 'unit': 's', "
              "'baseline': 4.0, 'baseline_label': 'bare', 'ratio': 0.5}]}, open(sys.argv[1], 'w'))")
    steps = [
        gpu_check.Step("crashes", 30, _python("import sys; print('CUDA error: out of memory'); sys.exit(3)")),
        gpu_check.Step("hangs", 1, _python("import time; time.sleep(60)")),
        gpu_check.Step("missing", 30, _python("pass"), needs=str(tmp_path / "bench_nothing.py")),
        gpu_check.Step("measures", 30, [*_python(writes), "{json}"]),
    ]
    report = gpu_check.run_all(steps, tmp_path / "out", {"device": "cpu"})
    results = report["steps"]
    assert results["crashes"]["status"] == "failed" and results["crashes"]["exit_code"] == 3
    assert results["crashes"]["why"] == "CUDA error: out of memory"
    assert results["hangs"]["status"] == "timeout" and results["hangs"]["seconds"] < 30
    assert results["missing"]["status"] == "skipped"
    assert results["measures"]["status"] == "ok"
    assert results["measures"]["figures"][0]["ratio"] == 0.5
    stored = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert stored["steps"] == json.loads(json.dumps(results))
    assert (tmp_path / "out" / "crashes.log").read_text().strip() == "CUDA error: out of memory"
    table = gpu_check.table(results)
    assert "[FAILED] CUDA error: out of memory" in table and "[TIMEOUT]" in table
    assert "speed" in table and "2 s" in table and "4 s (bare)" in table and "0.500" in table


def test_pytest_counts_become_figures(gpu_check):
    figures = gpu_check._pytest_figures("...F\n1 failed, 6 passed, 2 skipped in 3.1s\n")
    assert {f["figure"]: f["value"] for f in figures} == {"CUDA tests failed": 1, "CUDA tests passed": 6,
                                                          "CUDA tests skipped": 2}


# "full" passes a subset of the flags of "dry" (checked below), so only "dry" asks the
# scripts for their help in the default suite.
@pytest.mark.parametrize("size", [pytest.param("full", marks=pytest.mark.slow), "dry"])
def test_every_flag_the_check_passes_is_one_its_scripts_accept(gpu_check, size):
    steps = [(step, next((p for p in step.command if p.endswith(".py") and "experiments" in p), None))
             for step in gpu_check.plan("cuda", size)]
    steps = [(step, script) for step, script in steps if script is not None and Path(script).exists()]
    helps = _helps([_help_args(script, step.command) for step, script in steps])
    for step, script in steps:
        assert step.bound_s > 0
        accepted = helps[_help_args(script, step.command)]
        for flag in (p for p in step.command if p.startswith("--")):
            assert flag in accepted, f"{Path(script).name} does not accept {flag} (gpu_check step {step.name})"


def test_the_full_check_passes_no_flag_the_dry_one_does_not(gpu_check):
    def flags(size):
        return {step.name: {p for p in step.command if p.startswith("--")} for step in gpu_check.plan("cuda", size)}
    full, dry = flags("full"), flags("dry")
    assert full.keys() == dry.keys() and all(full[name] <= dry[name] for name in full)


def _help_args(script: str, command: list[str]) -> tuple[str, ...]:
    # gpu_steps.py has sub-steps: ask for the help of the one the command names.
    return (script, *[p for p in command[command.index(script) + 1:][:1] if not p.startswith("-")])


# Every script's `--help` as `python SCRIPT [SUBSTEP] --help` prints it, all in one process (each
# script imports torch: once, not once per script), with experiments/ on the path as for a script.
_DRIVER = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, "experiments")
out = {}
for args in json.loads(sys.argv[1]):
    sys.argv, buffer = [*args, "--help"], io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        runpy.run_path(args[0], run_name="__main__")
    out["\\0".join(args)] = buffer.getvalue()
print(json.dumps(out))
"""


def _helps(requests: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    import json

    wanted = sorted(set(requests))
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(wanted)], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    return {args: printed["\0".join(args)] for args in wanted}


def test_unknown_steps_are_refused(gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu", "--only", "nope", "--out", "unused"]) == 2
    assert "unknown step 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_whole_check_runs_on_the_cpu(tmp_path):
    """The dry run: every step at small sizes, on the CPU, as CI can run it (a few minutes)."""
    result = subprocess.run(["bash", str(EXPERIMENTS / "gpu_check.sh"), "--device", "cpu", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = {name: r.get("why") for name, r in report["steps"].items() if r["status"] not in ("ok", "skipped")}
    assert result.returncode == 0 and not failed, (failed, result.stdout[-3000:])
    assert report["steps"]["engine"]["figures"] and report["steps"]["lmc"]["figures"]
