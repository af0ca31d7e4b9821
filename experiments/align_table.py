"""Print the "same basin or same region" table of experiments/align_mnist.sh from the store.

One row per pair (lmc_align runs named cmp-*): test and train loss barrier (and test error
barrier) before alignment, after weight matching, after activation matching, and the mask overlap.
"""
from __future__ import annotations

import argparse
import re

from landscape.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="experiments-store")
    store = Store(parser.parse_args().store)
    runs = {r.name: r for r in store.runs("lmc_align")}
    pairs: dict[str, dict[str, object]] = {}
    for name, run in sorted(runs.items()):
        match = re.fullmatch(r"cmp-(.+)-(weights|activations)(?:-(.+))?", name)
        if match:
            pair = match.group(1) + (f" ({match.group(3)})" if match.group(3) else "")
            pairs.setdefault(pair, {})[match.group(2)] = run
    cols = ["test loss", "train loss", "test err"]
    print(f"{'pair':44s} | {'before':^26s} | {'weight matching':^26s} | {'activation matching':^26s} | Jaccard b/wm/am")
    print(f"{'':44s} | " + " | ".join(" ".join(f"{c:>8s}" for c in cols) for _ in range(3)) + " |")
    for pair, by_method in pairs.items():
        first = next(iter(by_method.values()))
        cells = [_cells(first.metrics, "before")]
        for method in ("weights", "activations"):
            run = by_method.get(method)
            key = "repaired" if run is not None and "repaired/test/loss_barrier" in run.metrics else "after"
            cells.append(_cells(run.metrics, key) if run is not None else " " * 26)
        jac = [first.metrics.get("before/distance/mask_jaccard")] + [
            by_method[m].metrics.get("after/distance/mask_jaccard") if m in by_method else None
            for m in ("weights", "activations")]
        jtext = "/".join("-" if j is None else f"{j:.2f}" for j in jac)
        print(f"{pair:44s} | " + " | ".join(cells) + f" | {jtext}")


def _cells(m: dict, stage: str) -> str:
    values = [m.get(f"{stage}/test/loss_barrier"), m.get(f"{stage}/train/loss_barrier"),
              m.get(f"{stage}/test/error_barrier")]
    return " ".join("       -" if v is None else (f"{100 * v:7.2f}%" if i == 2 else f"{v:8.4f}")
                    for i, v in enumerate(values))


if __name__ == "__main__":
    main()
