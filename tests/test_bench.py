"""bench/startup.py still runs and measures what it says (tiny sizes: this checks the script, not the figures);
the LoCoMo scripts score every conversation of whatever file they are given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_startup_bench_runs():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), "--runs", "1", "--memories", "3",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["median_ms"]
    assert set(figures) == {"initialize", "discover", "tools_handshake", "tools_modern", "search_handshake",
                            "search_modern"}
    assert 0 < figures["initialize"] <= figures["tools_handshake"] < figures["search_handshake"]
    assert 0 < figures["discover"] <= figures["tools_modern"] < figures["search_modern"]


def test_locomo_splits_follow_the_file(tmp_path):
    from bench.locomo_data import load, splits

    def conv(sample: str) -> dict:
        turns = [{"speaker": "A", "dia_id": f"D1:{i}", "text": f"turn {i}"} for i in (1, 2)]
        return {"sample_id": sample, "qa": [{"question": "q", "category": 1, "evidence": ["D1:2; D1:9"]}],
                "conversation": {"speaker_a": "A", "speaker_b": "B", "session_1_date_time": "1:56 pm on 8 May, 2023",
                                 "session_1": turns}}

    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([conv("conv-26"), conv("conv-44"), conv("conv-50")]))
    convs = load(data)
    assert [c["sample"] for c in convs] == ["conv-26", "conv-44", "conv-50"]
    assert convs[0]["questions"][0]["ev"] == ["D1:2"] and convs[0]["dropped_ids"] == 1
    assert splits(convs) == {"dev (conv-26)": {0}, "unseen (conv-44, conv-50)": {1, 2}, "all": {0, 1, 2}}
    assert splits(convs[1:]) == {"all": {1, 2}}
