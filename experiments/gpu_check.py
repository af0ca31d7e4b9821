"""The one prepared script to run whenever a GPU machine is at hand (wrapped by gpu_check.sh).

    bash experiments/gpu_check.sh                    # CUDA: every step, under 8 minutes on one GPU
    bash experiments/gpu_check.sh --device cpu       # the same steps at small sizes (a dry run)
    bash experiments/gpu_check.sh --only engine,lmc --out /tmp/check

Steps run in a fixed order, each in its own process with its own time bound, so a crash, an
out-of-memory or a hang in one is reported as that step's failure and the next one still runs:

  cuda-tests  tests/test_cuda.py on the device (engine, populations, LMC, per-example gradients)
  engine      bench_engine.py: LeNet epoch vs a bare loop; populations K = 1, 2, 8, loop and vmap,
              for LeNet and ResNet-20 (which layout `--path auto` should pick)
  siblings    K = 8 ResNet-20 siblings as one population vs one alone, through the api
  imp-level   one ResNet-20 IMP level (ticket + 2 controls), extrapolated to 30k iterations
  lmc         bench_lmc.py: a 30-α interpolation batched vs one α at a time
  geometry    bench_geometry.py, when it exists
  align       bench_align.py, when it exists

Everything measured goes into OUT/gpu_check.json (with each step's log beside it) and a table on
stdout: figure, value, baseline, ratio. The exit code is 0 when every step that ran passed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass
class Step:
    name: str
    bound_s: int                  # the step is killed (and reported) past this many seconds
    command: list[str]            # "{json}" stands for the path the step writes its figures to
    needs: str | None = None      # a file the step runs; the step is skipped while it does not exist
    env: dict[str, str] = field(default_factory=dict)


def plan(device: str, size: str) -> list[Step]:
    """The steps, in order. `full` is sized for one modern GPU; `dry` for a CPU in a minute or two."""
    py = sys.executable
    full = size == "full"
    engine = ["--repeats", "3", "--population-iters", "100"] if full else \
        ["--repeats", "1", "--population-iters", "2", "--examples", "3000", "--skip-cifar", "--resnet",
         "--resnet-width", "0.25", "--ks", "1,2"]
    api_size = ["--iters", "200"] if full else ["--iters", "3", "--k", "3", "--width", "0.25",
                                                "--dataset", "synthetic-rgb"]
    lmc = [] if full else ["--points", "5", "--repeats", "1", "--examples", "500", "--train-steps", "5"]
    small = [] if full else ["--quick"]
    # Bounds are for one modern GPU; a CPU dry run does far less work but on slower hardware,
    # often shared with other jobs.
    scale = 1 if full else 3
    return [Step(s.name, s.bound_s * scale, s.command, s.needs, s.env) for s in [
        Step("cuda-tests", 90,
             [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests" / "test_cuda.py")],
             env={"LANDSCAPE_TEST_DEVICE": device}),
        Step("engine", 110, [py, str(HERE / "bench_engine.py"), "--device", device, *engine, "--json", "{json}"]),
        Step("siblings", 60, [py, str(HERE / "gpu_steps.py"), "siblings", "--device", device, *api_size,
                              "--json", "{json}"]),
        Step("imp-level", 90, [py, str(HERE / "gpu_steps.py"), "imp-level", "--device", device, *api_size,
                               "--json", "{json}"]),
        Step("lmc", 40, [py, str(HERE / "bench_lmc.py"), "--device", device, *lmc, "--json", "{json}"]),
        Step("geometry", 50, [py, str(HERE / "bench_geometry.py"), "--device", device, *small, "--json", "{json}"],
             needs=str(HERE / "bench_geometry.py")),
        Step("align", 50, [py, str(HERE / "bench_align.py"), "--device", device, *small, "--json", "{json}"],
             needs=str(HERE / "bench_align.py")),
    ]]


def run_step(step: Step, out: Path) -> dict:
    """Run one step in its own process group; whatever happens, return what it did."""
    if step.needs and not Path(step.needs).exists():
        return {"status": "skipped", "why": f"{Path(step.needs).name} does not exist yet", "seconds": 0.0,
                "figures": []}
    figures_path = out / f"{step.name}.json"
    log_path = out / f"{step.name}.log"
    command = [str(figures_path) if part == "{json}" else part for part in step.command]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=step.bound_s)
            status = "ok" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code, status = None, "timeout"
    seconds = time.perf_counter() - started
    text = log_path.read_text(errors="replace")
    result = {"status": status, "exit_code": code, "seconds": round(seconds, 2), "figures": [],
              "log": log_path.name}
    if figures_path.exists():
        try:
            result["figures"] = json.loads(figures_path.read_text())["figures"]
        except (ValueError, KeyError) as exc:
            result["status"], result["why"] = "failed", f"unreadable figures file: {exc}"
    if step.name == "cuda-tests":
        result["figures"] = _pytest_figures(text)
    if status != "ok":
        result.setdefault("why", f"timed out after {step.bound_s}s" if status == "timeout" else
                          _last_line(text) or f"exit code {code}")
        result["tail"] = text[-3000:]
    return result


def _pytest_figures(text: str) -> list[dict]:
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", text)}
    return [{"figure": f"CUDA tests {word}", "value": n, "unit": "tests", "baseline": None, "ratio": None}
            for word, n in counts.items()]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _cell(value, unit: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        value = f"{value:.4g}"
    return f"{value} {unit}".strip()


def table(results: dict[str, dict]) -> str:
    rows = [("step", "figure", "value", "baseline", "ratio")]
    for name, result in results.items():
        if result["status"] != "ok":
            rows.append((name, f"[{result['status'].upper()}] {result.get('why', '')}"[:90], "", "", ""))
        for f in result["figures"]:
            value = f.get("text") or _cell(f.get("value"), f.get("unit", ""))
            baseline = _cell(f.get("baseline"), f.get("unit", ""))
            if baseline and f.get("baseline_label"):
                baseline += f" ({f['baseline_label']})"
            ratio = f"{f['ratio']:.3f}" if f.get("ratio") is not None else ""
            rows.append((name, f["figure"], value, baseline, ratio))
        rows.append((name, "step time", f"{result['seconds']:.1f} s", "", ""))
    widths = [min(max(len(r[i]) for r in rows), 70) for i in range(5)]
    return "\n".join("  ".join(str(c)[:w].ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def run_all(steps: list[Step], out: Path, context: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for step in steps:
        print(f"[{time.strftime('%H:%M:%S')}] {step.name} (at most {step.bound_s}s) ...", flush=True)
        results[step.name] = run_step(step, out)
        print(f"    {results[step.name]['status']} in {results[step.name]['seconds']:.1f}s"
              + (f": {results[step.name]['why']}" if "why" in results[step.name] else ""), flush=True)
        # Written after every step, so a machine taken back mid-way still leaves what was measured.
        report = {"context": context, "steps": results}
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return {"context": context, "steps": results}


def _context(device: str, size: str) -> dict:
    import torch  # here, not at the top: the plumbing test imports this module cheaply
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else \
        f"cpu, {os.cpu_count()} cores"
    return {"device": device, "device_name": name, "size": size, "torch": torch.__version__,
            "python": sys.version.split()[0], "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--size", choices=["full", "dry"], default=None,
                        help="full (default on CUDA) or dry: small sizes (default on CPU)")
    parser.add_argument("--only", default=None, help="comma-separated step names")
    parser.add_argument("--out", default=None, help="folder for gpu_check.json and the logs (default gpu-check-<time>)")
    args = parser.parse_args(argv)
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    size = args.size or ("full" if args.device.startswith("cuda") else "dry")
    steps = plan(args.device, size)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.name for s in steps})
        if unknown:
            print(f"error: unknown step {unknown[0]!r}; steps: {', '.join(s.name for s in steps)}", file=sys.stderr)
            return 2
        steps = [s for s in steps if s.name in wanted]
    out = Path(args.out or f"gpu-check-{time.strftime('%Y%m%d-%H%M%S')}")
    report = run_all(steps, out, _context(args.device, size))
    print()
    print(table(report["steps"]))
    print(f"\nfigures: {out / 'gpu_check.json'}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
