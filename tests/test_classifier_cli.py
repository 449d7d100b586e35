"""Tests for the ``moderation`` click group (run directly with CliRunner; no Flask app)."""

from __future__ import annotations

import csv
import json
import struct
import zlib

import pytest
from click.testing import CliRunner

from moderation import classifier as clf
from moderation.cli import moderation_cli

from .test_classifier import SMALL_WORDLIST, write_tiny_csvs

EVAL_ROWS = [
    ("you are a stupid idiot and a moron", 1),
    ("what a pathetic clown you are", 1),
    ("shut up you brainless fool", 1),
    ("thanks for the article about the bridge", 0),
    ("i agree with the council on parking", 0),
    ("the library opens next week", 0),
    ("lovely weather for the fete on sunday", 0),
]


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def runner():
    return CliRunner()


def test_evaluate_json_has_exactly_the_documented_keys(runner, tmp_path):
    data = _write_csv(tmp_path / "eval.csv", ["text", "label"], EVAL_ROWS)
    result = runner.invoke(
        moderation_cli, ["evaluate", "--data", str(data), "--signal", "insult", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"n", "auc", "average_precision", "precision", "recall", "f1_macro",
                        "threshold"}  # fmt: skip
    assert out["n"] == len(EVAL_ROWS)
    assert out["threshold"] == pytest.approx(clf.load().thresholds["insult"])
    assert out["auc"] > 0.9  # the insults are obvious
    for k in ("auc", "average_precision", "precision", "recall", "f1_macro"):
        assert 0.0 <= out[k] <= 1.0


def test_evaluate_text_output_and_plot(runner, tmp_path):
    data = _write_csv(tmp_path / "eval.csv", ["text", "label"], EVAL_ROWS)
    png = tmp_path / "curves.png"
    result = runner.invoke(
        moderation_cli,
        ["evaluate", "--data", str(data), "--signal", "insult", "--plot", str(png)],
    )
    assert result.exit_code == 0, result.output
    for word in ("ROC AUC", "avg prec.", "precision", "recall", "macro F1", "threshold"):
        assert word in result.output
    blob = png.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", blob[16:24])
    assert width > 300 and height > 200
    # the IDAT decompresses to height rows of (1 filter byte + 3 * width)
    idat_len = struct.unpack(">I", blob[33:37])[0]
    raw = zlib.decompress(blob[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    assert len(set(raw)) > 3  # not a blank image


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["--signal", "rudeness"], [("hello", 0)], "unknown signal"),
        (["--signal", "insult"], [("hello", 2)], "label must be 0 or 1"),
        (["--signal", "insult"], None, "columns"),
        (["--signal", "legal-advice"], [], "no rows"),
    ],
)
def test_evaluate_usage_errors(runner, tmp_path, args, content, message):
    path = tmp_path / "bad.csv"
    if content is None:
        _write_csv(path, ["comment", "label"], [("hello", 0)])
    else:
        _write_csv(path, ["text", "label"], content)
    result = runner.invoke(moderation_cli, ["evaluate", "--data", str(path), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_score_prints_every_signal(runner):
    text = "You are an idiot, buy cheap followers at www.example.com"
    result = runner.invoke(moderation_cli, ["score", text])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for s in clf.SIGNALS:
        assert any(line.startswith(s + " ") for line in lines), s
    assert "idiot" in result.output

    result = runner.invoke(moderation_cli, ["score", text, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out["signals"]) == list(clf.SIGNALS)
    insult = out["signals"]["insult"]
    assert insult["decision"] in ("hold", "reject")
    assert any(t["term"] == "idiot" for t in insult["terms"])
    for t in insult["terms"]:
        for a, b in t["spans"]:
            assert 0 <= a < b <= len(text)


def test_score_with_tampered_model_fails_cleanly(runner, tmp_path):
    bad = tmp_path / "signals.json"
    bad.write_text("{}")
    result = runner.invoke(moderation_cli, ["score", "hello", "--model", str(bad)])
    assert result.exit_code == 1
    assert "cannot load model" in result.output


def test_train_command_writes_a_loadable_deterministic_model(runner, tmp_path, monkeypatch):
    data = write_tiny_csvs(tmp_path / "data")
    monkeypatch.setattr(clf, "load_wordlist", lambda path=None: set(SMALL_WORDLIST))
    outs = []
    for name in ("m1", "m2"):
        out = tmp_path / name / "signals.json"
        result = runner.invoke(
            moderation_cli,
            ["train", "--data", str(data), "--out", str(out), "--seed", "7", "--folds", "3"],
        )
        assert result.exit_code == 0, result.output
        assert "fold 1/3" in result.output  # progress lines
        assert "weights sha256" in result.output
        outs.append(out)
    assert outs[0].with_suffix(".npz").read_bytes() == outs[1].with_suffix(".npz").read_bytes()
    model = clf.load(outs[0])
    assert model.score("you are a stupid idiot")["insult"] > model.score("lovely roses")["insult"]

    result = runner.invoke(moderation_cli, ["score", "hello", "--model", str(outs[0])])
    assert result.exit_code == 0 and model.version in result.output


def test_train_command_usage_error_without_all_signals(runner, tmp_path):
    data = write_tiny_csvs(tmp_path / "data")
    result = runner.invoke(
        moderation_cli,
        ["train", "--data", str(data / "spam-tiny-train.csv"), "--out", str(tmp_path / "m")],
    )
    assert result.exit_code == 2
    assert "no training data" in result.output
