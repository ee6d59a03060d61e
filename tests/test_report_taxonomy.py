"""The measured taxonomy table flags families that ended below a trivial baseline."""
from __future__ import annotations

import math

from genlab.report.taxonomy import measured_table, taxonomy_section


def _family(name, nll, recall=None, floor=0.8):
    return {"family": name, "taxonomy": None, "train": {},
            "eval": {"density": "exact", "metrics": {"nll_nats": {"value": nll, "stderr": 0.01},
                                                    **({"recall": {"value": recall}} if recall is not None else {})},
                     "floor": {"recall": {"value": floor}}}}


def test_families_worse_than_the_gaussian_or_uniform_levels_and_collapsed_samples_are_flagged():
    spec = {"event_shape": [1, 2, 2], "kind": "discrete", "levels": 4}
    uniform = 4 * math.log(4)
    results = {"families": [_family("gaussian", 4.0), _family("realnvp", 4.5), _family("made", 3.0),
                            _family("vae", uniform + 1.0), _family("gan", 3.5, recall=0.01)],
               "spec": spec}
    below = measured_table(results)["below_baseline"]
    assert any(n.startswith("realnvp is below") and "gaussian baseline" in n for n in below)
    assert any(n.startswith("vae is below") for n in below)
    assert not any(n.startswith(("made", "gaussian")) for n in below)
    assert any(n.startswith("gan's samples collapsed: recall 0.01") for n in below)
    html = taxonomy_section(measured_table(results), is_image=True)
    assert "below a trivial baseline" in html and "realnvp is below" in html


def test_nothing_is_flagged_when_every_family_beats_the_baselines():
    results = {"families": [_family("gaussian", 4.0), _family("made", 3.0, recall=0.6)],
               "spec": {"event_shape": [2], "kind": "continuous"}}
    assert measured_table(results)["below_baseline"] == []
    assert "below a trivial baseline" not in taxonomy_section(measured_table(results), is_image=False)
