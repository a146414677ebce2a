"""The search's winners re-trained on fresh seeds: tune.run re-checks them after a search
whose budget is epochs, the summary reports the drop and the paired difference, tune.export
ranks by the re-check, and tune.confirm adds seeds to it."""

import json

from tune.confirm import main as confirm_main
from tune.export import main as export_main
from tune.recheck import read_recheck, recheck_folders
from tune.run import main


def test_the_search_re_checks_its_winners_and_confirm_adds_seeds(ray_session, tmp_path):
    experiment = tmp_path / "r"
    # 15 epochs: the 3 baselines' 9, then two searched configs of 3 epochs, none stopped
    assert main(["--space", "smoke.yaml", "--storage", str(tmp_path), "--name", "r",
                 "--set", "num_samples=null", "--budget-epochs", "15",
                 "--set", "scheduler.type=none", "--set", "recheck={top: 1, seeds: 2}"]) == 0
    recheck = json.loads((experiment / "summary.json").read_text())["recheck"]
    assert recheck["seeds"] == [1, 2]  # after the search's own seed 0
    searched = [row for row in recheck["rows"] if row["baseline"] is None]
    baselines = [row for row in recheck["rows"] if row["baseline"] is not None]
    assert len(searched) == 1 and 1 <= len(baselines) <= 2  # the best baseline, the U-Net
    (top,) = searched
    assert recheck["best"] == top["name"] and top["versus_best_baseline"]["seeds"] == 2
    assert top["drop"] == top["retrained"]["mean"] - top["search_value"]
    runs = read_recheck(recheck_folders(experiment), 3)
    assert len(runs) == 2 * len(recheck["rows"]) and all(r.value is not None for r in runs)
    text = (experiment / "summary.md").read_text()
    assert "### Re-trained on fresh seeds [1, 2]" in text
    assert f"Best searched config, re-checked: {top['name']}" in text
    # the export's rank 1 is the re-checked config with the lowest mean over fresh seeds
    first = min(recheck["rows"], key=lambda row: row["retrained"]["mean"])
    assert export_main([str(experiment), "--out", str(tmp_path / "best.yaml")]) == 0
    assert f"trial {first['trial_id']}:" in (tmp_path / "best.yaml").read_text()
    # more seeds for the re-check: fresh ones, pooled with the first two
    assert confirm_main([str(experiment), "--seeds", "2"]) == 0
    report = json.loads((experiment / "confirm.json").read_text())
    assert report["seeds"] == [3, 4] and report["pooled_seeds"] == [1, 2, 3, 4]
    assert [c["comparison"].split(" - ")[0] for c in report["comparisons"]] == [top["name"]]
    pooled = json.loads((experiment / "summary.json").read_text())["recheck"]
    assert pooled["seeds"] == [1, 2, 3, 4] and len(list(experiment.glob("recheck-2/trial_*"))) \
        == 2 * len(recheck["rows"])
