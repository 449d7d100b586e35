"""Benchmark the shipped classifier against its budgets (one CPU thread).

    .venv/bin/python bench/bench_classifier.py [--model PATH] [--n 2000]

Budgets: model files <= 25 MB; load < 1 s; one 300-character comment < 1 ms at the median;
batch scoring >= 2,000 comments/s.  Prints a table and writes bench/results/classifier.json.

The comments are synthetic (random dictionary words from the model's own lexicon mixed with
random out-of-dictionary strings, so both code paths - whole words and character n-grams -
are exercised); no dataset text is needed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moderation import classifier as clf  # noqa: E402

BUDGETS = {
    "size_mb": 25.0,
    "load_s": 1.0,
    "single_median_ms": 1.0,
    "batch_per_s": 2000.0,
}


def synthetic_comments(model: clf.SignalModel, n: int, length: int = 300, seed: int = 0):
    rng = random.Random(seed)
    words = sorted(model.lexicon)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(n):
        parts: list[str] = []
        size = 0
        while size <= length:
            r = rng.random()
            if r < 0.80:
                w = rng.choice(words)
            elif r < 0.95:
                w = "".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))
            else:
                w = rng.choice([",", ".", "!", "?", "www.example.com", "2026", ":)"])
            if rng.random() < 0.1:
                w = w.capitalize()
            parts.append(w)
            size += len(w) + 1
        out.append(" ".join(parts)[:length])
    return out


def cold_load_seconds(model_path: pathlib.Path, repeats: int = 3) -> list[float]:
    """Load time in a fresh interpreter each time (imports excluded, load() included)."""
    code = (
        f"import time, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from moderation import classifier as clf\n"
        f"t = time.perf_counter(); clf.load({str(model_path)!r}); "
        "print(time.perf_counter() - t)\n"
    )
    env = dict(os.environ)
    times = []
    for _ in range(repeats):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)  # fmt: skip
        times.append(float(res.stdout.strip().splitlines()[-1]))
    return times


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=pathlib.Path, default=clf.default_model_path())
    ap.add_argument("--n", type=int, default=2000, help="comments per measurement")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "bench/results/classifier.json")
    ap.add_argument(
        "--fine-tune-data",
        type=pathlib.Path,
        default=None,
        help="Directory of training CSVs: instead of the speed bench, run the fine-tuning "
        "experiment (train without one source, fine-tune on a few of its rows, test on the rest)"
        " and write bench/results/classifier-finetune.json.",
    )
    ap.add_argument("--fine-tune-lr", type=float, default=0.5, help="fine_tune learning_rate")
    ap.add_argument("--fine-tune-epochs", type=int, default=10, help="fine_tune epochs")
    args = ap.parse_args(argv)
    if args.fine_tune_data is not None:
        return fine_tune_experiment(
            args.fine_tune_data, ROOT / "bench/results",
            learning_rate=args.fine_tune_lr, epochs=args.fine_tune_epochs,
        )  # fmt: skip

    load_before = os.getloadavg()[0]
    manifest = clf._resolve_manifest(args.model)
    files = [manifest, manifest.with_suffix(".npz")]
    size_bytes = sum(f.stat().st_size for f in files)

    warm = []
    for _ in range(5):
        t = time.perf_counter()
        model = clf.load(manifest)
        warm.append(time.perf_counter() - t)
    cold = cold_load_seconds(manifest)

    comments = synthetic_comments(model, args.n)
    assert all(len(c) == 300 for c in comments)

    # single comments, cache cleared first (every word is new to the process)
    model.clear_cache()
    single_cold = []
    for c in comments:
        t = time.perf_counter()
        model.score(c)
        single_cold.append(time.perf_counter() - t)
    # single comments again, word cache warm (a long-running worker's steady state)
    single_warm = []
    for c in comments:
        t = time.perf_counter()
        model.score(c)
        single_warm.append(time.perf_counter() - t)
    # explain (moderator page), all signals
    explain_t = []
    for c in comments[:300]:
        t = time.perf_counter()
        model.explain(c, None, 5)
        explain_t.append(time.perf_counter() - t)
    # batch
    model.clear_cache()
    other = synthetic_comments(model, args.n, seed=1)
    t = time.perf_counter()
    model.score_many(other)
    batch_cold = len(other) / (time.perf_counter() - t)
    t = time.perf_counter()
    model.score_many(other)
    batch_warm = len(other) / (time.perf_counter() - t)

    def ms(xs, q=None):
        if q is None:
            return 1000 * statistics.median(xs)
        return 1000 * sorted(xs)[int(q * (len(xs) - 1))]

    res = {
        "model": model.version,
        "weights_sha256": clf._sha256_file(manifest.with_suffix(".npz")),
        "files": {f.name: f.stat().st_size for f in files},
        "size_mb": size_bytes / 1e6,
        "load_s_cold_process_median": statistics.median(cold),
        "load_s_warm_median": statistics.median(warm),
        "single_median_ms_cold_cache": ms(single_cold),
        "single_p95_ms_cold_cache": ms(single_cold, 0.95),
        "single_median_ms_warm_cache": ms(single_warm),
        "single_p95_ms_warm_cache": ms(single_warm, 0.95),
        "explain_all_signals_median_ms": ms(explain_t),
        "batch_per_s_cold_cache": batch_cold,
        "batch_per_s_warm_cache": batch_warm,
        "n_comments": len(comments),
        "comment_chars": 300,
        "threads": 1,
        "python": platform.python_version(),
        "sklearn": clf.sklearn.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpus": os.cpu_count(),
        "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
    }
    checks = [
        ("model files (MB)", res["size_mb"], BUDGETS["size_mb"], "<="),
        ("load, fresh process (s)", res["load_s_cold_process_median"], BUDGETS["load_s"], "<"),
        ("one 300-char comment, median, cold cache (ms)", res["single_median_ms_cold_cache"],
         BUDGETS["single_median_ms"], "<"),
        ("one 300-char comment, median, warm cache (ms)", res["single_median_ms_warm_cache"],
         BUDGETS["single_median_ms"], "<"),
        ("batch, cold cache (comments/s)", res["batch_per_s_cold_cache"],
         BUDGETS["batch_per_s"], ">="),
        ("batch, warm cache (comments/s)", res["batch_per_s_warm_cache"],
         BUDGETS["batch_per_s"], ">="),
    ]  # fmt: skip
    res["budgets_met"] = True
    print(f"model {res['model']}  ({res['cpu']}, 1 thread, Python {res['python']}; "
          f"load average {load_before:.2f} on {res['cpus']} CPUs before the run)")
    print(f"{'measure':<48} {'value':>10} {'budget':>10}  ok")
    for name, value, budget, op in checks:
        ok = value <= budget if op == "<=" else value < budget if op == "<" else value >= budget
        res["budgets_met"] &= bool(ok)
        limit = f"{op} {budget:g}"
        print(f"{name:<48} {value:>10.3f} {limit:>10}  {'yes' if ok else 'NO'}")
    print(f"{'(p95 single, cold / warm cache, ms)':<48} "
          f"{res['single_p95_ms_cold_cache']:>10.3f} / {res['single_p95_ms_warm_cache']:.3f}")
    print(f"{'(explain, all signals, median ms)':<48} "
          f"{res['explain_all_signals_median_ms']:>10.3f}")
    print(f"{'(load in-process, warm, s)':<48} {res['load_s_warm_median']:>10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", "utf-8")
    print(f"written {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return res


FINE_TUNE_CASES = (
    ("spam", "spam-reddit-rules-train.csv"),
    ("hate", "hate-stormfront-train.csv"),
    ("offensive", "offensive-olid-train.csv"),
)


def fine_tune_experiment(
    data_dir: pathlib.Path,
    out_dir: pathlib.Path,
    seed: int = 0,
    learning_rate: float = 0.5,
    epochs: int = 10,
) -> dict:
    """How much does fine_tune() help a site whose comments look like a source the model
    never saw?  For each case: train on every file except one source (no CV), then
    fine-tune on n of that source's rows ("the site's decisions") and measure ROC AUC and
    average precision on the source's other rows, before and after.  Three random splits."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    all_files = sorted(data_dir.glob("*-train.csv"))
    results: dict = {"learning_rate": learning_rate, "epochs": epochs}
    for signal, held in FINE_TUNE_CASES:
        files = [f for f in all_files if f.name != held]
        t0 = time.perf_counter()
        base = clf.train(files, seed=seed, n_splits=0)
        texts, y = clf.read_labelled_csv(data_dir / held)
        rows = []
        for rep in range(3):
            rng = np.random.default_rng(seed + rep)
            order = rng.permutation(len(y))
            test = order[400:]
            before = base.signal_scores([texts[i] for i in test], signal)
            row = {"split": rep, "n_test": int(len(test)),
                   "auc_before": float(roc_auc_score(y[test], before)),
                   "ap_before": float(average_precision_score(y[test], before))}  # fmt: skip
            for n in (50, 200, 400):
                ft = order[:n]
                tuned = clf.fine_tune(
                    base, [(texts[i], signal, int(y[i])) for i in ft], seed=seed,
                    learning_rate=learning_rate, epochs=epochs,
                )  # fmt: skip
                after = tuned.signal_scores([texts[i] for i in test], signal)
                row[f"auc_after_{n}"] = float(roc_auc_score(y[test], after))
                row[f"ap_after_{n}"] = float(average_precision_score(y[test], after))
                row[f"mean_pos_before_{n}"] = float(before[y[test] == 1].mean())
                row[f"mean_pos_after_{n}"] = float(after[y[test] == 1].mean())
                row[f"mean_neg_after_{n}"] = float(after[y[test] == 0].mean())
            row["mean_neg_before"] = float(before[y[test] == 0].mean())
            rows.append(row)
        keys = [k for k in rows[0] if k != "split"]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        results[f"{signal} <- {held}"] = {
            "splits": rows, "mean": mean, "seconds": round(time.perf_counter() - t0, 1)
        }
        m = mean
        print(f"{signal:<10} {held:<30} AUC {m['auc_before']:.3f} -> "
              f"{m['auc_after_50']:.3f} (50) / {m['auc_after_200']:.3f} (200) / "
              f"{m['auc_after_400']:.3f} (400);  AP {m['ap_before']:.3f} -> "
              f"{m['ap_after_50']:.3f} / {m['ap_after_200']:.3f} / {m['ap_after_400']:.3f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "classifier-finetune.json"
    if (learning_rate, epochs) != (0.5, 10):
        name = f"classifier-finetune-lr{learning_rate:g}-ep{epochs}.json"
    (out_dir / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out_dir / name}")
    return results


def _cpu_name() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
