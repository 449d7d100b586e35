"""``moderation`` command group: train, evaluate and score the rule-breaking classifier.

Registered on the Flask app with ``app.cli.add_command(moderation_cli)``; none of the commands
needs an application context.  Also runnable directly::

    .venv/bin/python -m moderation.cli score "some text"
"""

from __future__ import annotations

import json
import math
import pathlib
import struct
import sys
import time
import zlib

import click
import numpy as np

from . import classifier as clf

moderation_cli = click.Group(
    "moderation", help="Train, evaluate and try the rule-breaking classifier."
)

_MODEL_OPTION_HELP = "Model manifest (.json) or directory; default: the shipped model."


def _signal_param(ctx, param, value):
    if value is None:
        return None
    v = value.strip().lower().replace("-", "_")
    if v not in clf.SIGNALS:
        raise click.BadParameter(
            f"unknown signal {value!r}; choose from {', '.join(clf.SIGNALS)}", ctx, param
        )
    return v


def _load_model(path):
    try:
        return clf.load(path)
    except clf.ModelIntegrityError as exc:
        raise click.ClickException(f"cannot load model: {exc}") from exc


def _num(x):
    """JSON-safe float (NaN -> None)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


# ------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------


@moderation_cli.command("train")
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=pathlib.Path),
    help="A <signal>-<source>-train.csv file or a directory of them (repeatable).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=pathlib.Path),
    help="Where to write the model: a .json manifest path (the .npz goes next to it) "
    "or a directory.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--quiet", is_flag=True, help="No progress lines.")
def train_cmd(data, out, seed, folds, quiet):
    """Train a model (one logistic regression per signal) and write it to --out.

    Thresholds are chosen from cross-validated (out-of-fold) scores. Deterministic for a
    fixed --seed.
    """
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not quiet:
            click.echo(f"[{time.perf_counter() - t0:6.1f}s] {msg}", err=True)

    try:
        model = clf.train(list(data), seed=seed, progress=progress, n_splits=folds)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    sha = clf.save(model, out)
    click.echo(f"model {model.version}")
    click.echo(f"weights sha256 {sha}")
    click.echo(f"written to {clf._resolve_manifest(out)}")
    click.echo("")
    click.echo(_threshold_table(model))


def _threshold_table(model: clf.SignalModel) -> str:
    lines = [
        f"{'signal':<13} {'AUC':>6} {'AP':>6} {'hold@':>7} {'civil held':>10} "
        f"{'caught':>7} {'reject@':>8} {'held->rej':>9} {'caught':>7}"
    ]
    for s in clf.SIGNALS:
        cv = model.metadata.get("cv", {}).get(s, {})
        t = cv.get("at_threshold", {})
        r = cv.get("at_reject", {})
        lines.append(
            f"{s:<13} {_fmt(cv.get('auc'))} {_fmt(cv.get('average_precision'))} "
            f"{model.thresholds[s]:7.3f} {_pct(t.get('hold_rate_civil')):>10} "
            f"{_pct(t.get('recall')):>7} {model.reject_thresholds[s]:8.3f} "
            f"{_pct(r.get('hold_rate_civil')):>9} {_pct(r.get('recall')):>7}"
        )
    return "\n".join(lines)


def _fmt(x) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:6.3f}"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


# ------------------------------------------------------------------------------------------
# evaluate
# ------------------------------------------------------------------------------------------


def evaluate_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = len(np.unique(y)) == 2
    stats = clf._threshold_stats(y, p, threshold)
    return {
        "n": int(len(y)),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "average_precision": float(average_precision_score(y, p)) if y.any() else None,
        "precision": stats["precision"],
        "recall": stats["recall"],
        "f1_macro": stats["f1_macro"],
        "threshold": float(threshold),
    }


@moderation_cli.command("evaluate")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="CSV with header text,label (label 0 or 1).",
)
@click.option("--signal", required=True, callback=_signal_param, help="Signal to evaluate.")
@click.option("--model", "model_path", type=click.Path(path_type=pathlib.Path), default=None,
              help=_MODEL_OPTION_HELP)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Write ROC and precision-recall curves to this PNG file.",
)
def evaluate_cmd(data, signal, model_path, as_json, plot):
    """Score every row of a labelled CSV with one signal and report ROC AUC, average
    precision, and precision / recall / macro-F1 at the signal's decision threshold."""
    try:
        texts, y = clf.read_labelled_csv(data)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"{data}: not UTF-8 text ({exc})") from exc
    if len(texts) == 0:
        raise click.UsageError(f"{data}: no rows")
    model = _load_model(model_path)
    p = model.signal_scores(texts, signal)
    res = evaluate_scores(y, p, model.thresholds[signal])
    if plot is not None:
        write_curves_png(plot, y, p, res)
    if as_json:
        click.echo(json.dumps({k: _num(v) if k != "n" else v for k, v in res.items()}))
        return
    click.echo(f"model      {model.version}")
    click.echo(f"signal     {signal}  ({res['n']} rows, {int(y.sum())} positive)")
    click.echo(f"ROC AUC    {_fmt(res['auc']).strip()}")
    click.echo(f"avg prec.  {_fmt(res['average_precision']).strip()}")
    click.echo(f"threshold  {res['threshold']:.3f}")
    click.echo(f"precision  {res['precision']:.3f}")
    click.echo(f"recall     {res['recall']:.3f}")
    click.echo(f"macro F1   {res['f1_macro']:.3f}")
    if plot is not None:
        click.echo(f"curves     {plot}")


# ------------------------------------------------------------------------------------------
# score
# ------------------------------------------------------------------------------------------


@moderation_cli.command("score")
@click.argument("text")
@click.option("--model", "model_path", type=click.Path(path_type=pathlib.Path), default=None,
              help=_MODEL_OPTION_HELP)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 50),
              help="Terms to show per signal.")  # fmt: skip
def score_cmd(text, model_path, as_json, k):
    """Score TEXT ("-" reads standard input) for every signal and show the words and
    n-grams that pushed each score up."""
    if text == "-":
        text = sys.stdin.read()
    model = _load_model(model_path)
    scores = model.score(text)
    terms: dict[str, list] = {s: [] for s in clf.SIGNALS}
    for e in model.explain(text, None, k=k):
        terms[e["signal"]].append({"term": e["term"], "weight": e["weight"], "spans": e["spans"]})
    out = {}
    for s in clf.SIGNALS:
        v = scores[s]
        decision = (
            "reject" if v >= model.reject_thresholds[s]
            else "hold" if v >= model.thresholds[s] else "ok"
        )  # fmt: skip
        out[s] = {
            "score": v,
            "threshold": model.thresholds[s],
            "reject_threshold": model.reject_thresholds[s],
            "decision": decision,
            "terms": terms[s],
        }
    if as_json:
        click.echo(json.dumps({"model": model.version, "signals": out}))
        return
    click.echo(f"model {model.version}")
    for s in clf.SIGNALS:
        o = out[s]
        pushed = ", ".join(f"{t['term']} (+{t['weight']:.2f})" for t in o["terms"]) or "-"
        click.echo(
            f"{s:<13} {o['score']:.3f}  {o['decision']:<6} "
            f"(hold >= {o['threshold']:.3f}, reject >= {o['reject_threshold']:.3f})  {pushed}"
        )


# ------------------------------------------------------------------------------------------
# build-wordlist (maintenance)
# ------------------------------------------------------------------------------------------


@moderation_cli.command("build-wordlist")
@click.option(
    "--source",
    default="/usr/share/dict/british-english",
    show_default=True,
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="SCOWL word list (Debian package wbritish).",
)
@click.option(
    "--out",
    default=str(clf.MODEL_DIR / clf.WORDLIST_NAME),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
)
def build_wordlist_cmd(source, out):
    """Rebuild the known-English-words list used when training (a training input only)."""
    n = clf.build_wordlist_file(source, out)
    click.echo(f"{n} words written to {out}")


# ------------------------------------------------------------------------------------------
# compare (cross-validated comparison of approaches, for the model card)
# ------------------------------------------------------------------------------------------


def _candidates():
    """name -> (kind, settings).  kind 'hashed' uses moderation.classifier's features."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    def baseline():
        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(C=1.0, max_iter=1000),
        )

    def word_char():
        return make_pipeline(
            make_union(
                TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                sublinear_tf=True),
            ),  # fmt: skip
            LogisticRegression(C=8.0, solver="liblinear", max_iter=1000),
        )

    return {
        "tfidf-word-lr (baseline)": ("sklearn", baseline),
        "tfidf-word+charwb-lr": ("sklearn", word_char),
        "hashed-normalised-allchars C=8": ("hashed", {"lexicon": False, "C": 8.0}),
        "hashed-normalised-lexicon C=2": ("hashed", {"lexicon": True, "C": 2.0}),
        "hashed-normalised-lexicon C=8": ("hashed", {"lexicon": True, "C": 8.0}),
        "hashed-normalised-lexicon C=32": ("hashed", {"lexicon": True, "C": 32.0}),
    }


def _scunthorpe_gap(predict) -> float:
    """Largest (clean-word sentence - neutral sentence) probability over the checks."""
    gap = -1.0
    for tpl, bad, neutral in clf.SCUNTHORPE_CHECKS:
        a, b = predict([tpl.format(bad), tpl.format(neutral)])
        gap = max(gap, float(a - b))
    return gap


def compare(paths, folds: int = 5, seed: int = 0, only=None, progress=None) -> dict:
    """Cross-validate every candidate on every signal with the same folds."""
    from sklearn.metrics import f1_score

    datasets = clf.load_datasets(paths)
    results: dict[str, dict] = {}
    lexicon, protected = clf.build_lexicon(datasets)
    feats = {}
    for name, (kind, settings) in _candidates().items():
        if only and not any(o in name for o in only):
            continue
        results[name] = {}
        if kind == "hashed":
            key = settings["lexicon"]
            if key not in feats:
                fz = clf.Featurizer(lexicon, protected) if key else clf.Featurizer((), ())
                X_all, uniq = clf.featurize_datasets(datasets, fz)
                feats[key] = (fz, X_all, uniq)
            fz, X_all, uniq = feats[key]
        for signal in clf.SIGNALS:
            parts = [d for d in datasets if d[0] == signal]
            texts = [t for d in parts for t in d[2]]
            uniq_local = {t: i for i, t in enumerate(dict.fromkeys(texts))}
            rows, y, groups, names = clf.signal_data(
                datasets, signal, uniq if kind == "hashed" else uniq_local
            )
            fold_list = clf._folds(y, groups, folds, seed)
            oof = np.full(len(y), np.nan)
            t0 = time.perf_counter()
            gaps = []
            for k, (tr, te) in enumerate(fold_list, start=1):
                if progress:
                    progress(f"{name} / {signal}: fold {k}/{len(fold_list)}")
                if kind == "hashed":
                    X = X_all[rows]
                    w, b = clf._fit_lr(X[tr], y[tr], settings["C"], seed)
                    oof[te] = clf._sigmoid(X[te] @ w + b)

                    def predict(ts, w=w, b=b, fz=fz):
                        return clf._sigmoid(fz.transform(ts) @ w + b)
                else:
                    model = settings()
                    model.fit([texts[i] for i in tr], y[tr])
                    oof[te] = model.predict_proba([texts[i] for i in te])[:, 1]

                    def predict(ts, model=model):
                        return model.predict_proba(ts)[:, 1]

                gaps.append(_scunthorpe_gap(predict))
            thr, rej = clf.choose_thresholds(y, oof, groups=groups)
            rep = clf.cv_report(y, oof, groups, names, thr, rej)
            rep["f1_at_0.5"] = float(f1_score(y, oof >= 0.5))
            rep["scunthorpe_max_gap"] = float(max(gaps))
            rep["seconds"] = round(time.perf_counter() - t0, 1)
            results[name][signal] = rep
            if progress:
                progress(
                    f"{name} / {signal}: AUC {rep['auc']:.4f} AP {rep['average_precision']:.4f}"
                    f" F1@t {rep['at_threshold']['f1']:.4f} gap {rep['scunthorpe_max_gap']:+.3f}"
                )
    return {
        "folds": folds,
        "seed": seed,
        "sklearn_version": clf.sklearn.__version__,
        "files": [d[1] for d in datasets],
        "results": results,
    }


def compare_table(res: dict) -> str:
    lines = [
        "| signal | approach | ROC AUC | avg precision | F1 at threshold | threshold "
        "| F1 at 0.5 | Scunthorpe gap |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in clf.SIGNALS:
        for name, per in res["results"].items():
            r = per.get(s)
            if r is None:
                continue
            lines.append(
                f"| {s} | {name} | {r['auc']:.4f} | {r['average_precision']:.4f} | "
                f"{r['at_threshold']['f1']:.4f} | {r['at_threshold']['threshold']:.3f} | "
                f"{r['f1_at_0.5']:.4f} | {r['scunthorpe_max_gap']:+.3f} |"
            )
    return "\n".join(lines)


@moderation_cli.command("compare")
@click.option("--data", "data", multiple=True, required=True,
              type=click.Path(exists=True, path_type=pathlib.Path))  # fmt: skip
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--only", multiple=True, help="Only candidates whose name contains this.")
@click.option("--out-json", type=click.Path(dir_okay=False, path_type=pathlib.Path))
def compare_cmd(data, folds, seed, only, out_json):
    """Cross-validate the candidate approaches (incl. a TF-IDF + LR baseline) per signal and
    print a Markdown table.  Slow (several minutes)."""
    t0 = time.perf_counter()

    def progress(msg):
        click.echo(f"[{time.perf_counter() - t0:7.1f}s] {msg}", err=True)

    res = compare(list(data), folds=folds, seed=seed, only=only, progress=progress)
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(res, indent=2, default=_num) + "\n", "utf-8")
    click.echo(compare_table(res))


# ------------------------------------------------------------------------------------------
# A tiny PNG writer for --plot (matplotlib is not a dependency)
# ------------------------------------------------------------------------------------------

_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", " ": "000000000000000",
    "=": "000111000111000", "-": "000000111000000", "/": "001001010100100",
    "A": "010101111101101", "C": "111100100100111", "E": "111100110100111",
    "F": "111100110100100", "L": "100100100100111", "N": "101111111111101",
    "O": "111101101101111", "P": "110101110100100", "R": "110101110101101",
    "T": "111010010010010", "U": "101101101101111", "I": "111010010010111",
}  # fmt: skip


class _Canvas:
    def __init__(self, w: int, h: int):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def dot(self, x: int, y: int, rgb, r: int = 0) -> None:
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                xx, yy = x + dx, y + dy
                if 0 <= xx < self.w and 0 <= yy < self.h:
                    i = (yy * self.w + xx) * 3
                    self.px[i : i + 3] = bytes(rgb)

    def line(self, x0, y0, x1, y1, rgb, r: int = 0) -> None:
        x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, rgb, r)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, s: str, rgb=(0, 0, 0), scale: int = 2) -> None:
        for ch in s.upper():
            g = _FONT.get(ch, _FONT[" "])
            for j in range(5):
                for i in range(3):
                    if g[j * 3 + i] == "1":
                        for a in range(scale):
                            for b in range(scale):
                                self.dot(x + i * scale + a, y + j * scale + b, rgb)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )

        def chunk(tag: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + tag
                + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
            )

        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def write_curves_png(path, y: np.ndarray, p: np.ndarray, res: dict) -> None:
    """ROC curve (left) and precision-recall curve (right) as a PNG, no dependencies."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    size, margin, gap = 300, 40, 30
    W = 2 * size + 2 * margin + gap
    H = size + 2 * margin + 10
    cv = _Canvas(W, H)
    panels = []
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        prec, rec, _ = precision_recall_curve(y, p)
        panels = [
            (fpr, tpr, f"ROC AUC {res['auc']:.3f}", "FPR", "TPR"),
            (rec, prec, f"PR AP {res['average_precision']:.3f}", "RECALL", "PREC"),
        ]
    else:
        panels = [(np.array([0.0]), np.array([0.0]), "ROC N/A", "FPR", "TPR"),
                  (np.array([0.0]), np.array([0.0]), "PR N/A", "RECALL", "PREC")]  # fmt: skip
    for k, (xs, ys, title, xl, yl) in enumerate(panels):
        ox = margin + k * (size + gap)
        oy = margin + size  # y axis grows upwards

        def to_px(x, yv, ox=ox, oy=oy):
            return ox + x * size, oy - yv * size

        grey = (200, 200, 200)
        for t in (0.25, 0.5, 0.75):
            cv.line(*to_px(t, 0), *to_px(t, 1), grey)
            cv.line(*to_px(0, t), *to_px(1, t), grey)
        if k == 0:
            cv.line(*to_px(0, 0), *to_px(1, 1), (160, 160, 160))
        cv.line(*to_px(0, 0), *to_px(1, 0), (0, 0, 0))
        cv.line(*to_px(0, 0), *to_px(0, 1), (0, 0, 0))
        cv.line(*to_px(1, 0), *to_px(1, 1), (0, 0, 0))
        cv.line(*to_px(0, 1), *to_px(1, 1), (0, 0, 0))
        colour = (31, 119, 180) if k == 0 else (214, 39, 40)
        pts = list(zip(np.asarray(xs, float), np.asarray(ys, float), strict=True))
        if len(pts) > 2000:  # thin very long curves
            step = len(pts) // 2000 + 1
            pts = pts[::step] + [pts[-1]]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
            cv.line(*to_px(x0, y0), *to_px(x1, y1), colour, r=1)
        cv.text(ox, margin - 22, title)
        cv.text(ox + size // 2 - 4 * len(xl), oy + 22, xl)
        cv.text(ox + 4, margin + 4, yl, (90, 90, 90))
        cv.text(ox - 10, oy + 8, "0")
        cv.text(ox + size - 2, oy + 8, "1")
    pathlib.Path(path).write_bytes(cv.png())


def main() -> None:  # pragma: no cover - thin wrapper
    moderation_cli(prog_name="python -m moderation.cli")


if __name__ == "__main__":  # pragma: no cover
    main()
