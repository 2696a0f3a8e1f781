"""figures/results.md: one table across the notebooks' results.json files."""

import json

import pytest

from dmlkit.reporting.results import collect_results, results_markdown, write_results_markdown
from dmlkit.zoo import summarise_seeds


def write(folder, stem, payload):
    (folder / stem).mkdir(parents=True)
    (folder / stem / "results.json").write_text(json.dumps(payload))


def run_entry(map_r, steps=10):
    return {
        "test": {"recall@1": 0.9, "map@r": map_r, "r_precision": 0.6},
        "rho": 0.5,
        "train_map@r": map_r + 0.1,
        "gap_map@r": 0.1,
        "train_s": 2.0,
        "settings": {"steps": steps, "P": 4, "K": 2},
    }


def test_every_run_of_every_notebook_is_a_row(tmp_path):
    write(tmp_path, "01_pair_based", {"settings": {"smoke": False}, "methods": {"MS": run_entry(0.6)}})
    write(tmp_path, "02_proxy_based", {"settings": {"smoke": False}, "methods": {"SoftTriple": run_entry(0.4, 20)}})
    (tmp_path / "runs.json").write_text(
        json.dumps(
            {
                "01_pair_based": {"seconds": 60.0, "ok": True, "budget": "default"},
                "02_proxy_based": {"seconds": 120.0, "ok": True, "budget": "default"},
            }
        )
    )
    write(tmp_path, "study", {"command": "dmlkit results", "stages": {"convergence": {}}})
    assert list(collect_results(tmp_path)) == ["01_pair_based", "02_proxy_based"]  # the study is not a notebook
    text = results_markdown(tmp_path)
    assert "| 01_pair_based | MS | 10 | 4×2 | 90.0 | 60.0 | 60.0 | 0.500 | 70.0 | 10.0 | 2.0 |" in text
    assert "| 02_proxy_based | SoftTriple | 20 |" in text
    assert "**180.0** (3.0 min)" in text
    assert "Leaderboard" not in text  # no synthesis notebook yet


def test_synthesis_leaderboard_and_findings(tmp_path):
    rows = [
        {
            "method": "MS",
            "map@r": 0.5 + 0.01 * s,
            "recall@1": 0.9,
            "worst_class_recall@1": 0.6,
            "rho": 0.4,
            "gap_map@r": 0.05,
        }
        for s in range(3)
    ]
    summary = summarise_seeds(rows)
    write(
        tmp_path,
        "07_compression_generalisation",
        {
            "settings": {"steps": 100, "seeds": [0, 1, 2]},
            "methods": {},
            "leaderboard": {"summary": summary, "families": {"MS": "pair-based"}},
            "findings": ["ρ-regularisation did not help here."],
        },
    )
    text = results_markdown(tmp_path)
    assert "## Leaderboard (notebook 07)" in text and "100 steps, seeds [0, 1, 2]" in text
    assert "| 1 | MS | pair-based | 51.0 ± 1.0 |" in text
    assert "- ρ-regularisation did not help here." in text
    assert write_results_markdown(tmp_path).read_text() == text


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no figures folder"):
        collect_results(tmp_path / "missing")
    (tmp_path / "03_ap").mkdir()
    (tmp_path / "03_ap" / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="03_ap.*not valid JSON"):
        results_markdown(tmp_path)
    (tmp_path / "03_ap" / "results.json").unlink()
    assert "No notebook has written a results.json here yet." in results_markdown(tmp_path)
