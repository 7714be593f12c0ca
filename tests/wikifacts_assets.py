"""Hand-made qa_wikidata files for the wikifacts tests (tests/data/, tests/evals/)."""
from __future__ import annotations

import json
from pathlib import Path


def write_task(folder: Path, examples: list[tuple[str, object]]) -> Path:
    """A qa_wikidata-shaped task.json: {"examples": [{"input", "target"}]} under folder/qa_wikidata/."""
    path = folder / "qa_wikidata" / "task.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"examples": [{"input": i, "target": t} for i, t in examples]}, indent=1))
    return path


def lands(n: int = 30) -> list[tuple[str, object]]:
    """n made-up countries: three single-valued fields (capital, religion, continent) and a multi-valued one
    (borders, with seas: no land mentions another)."""
    ex = []
    for i in range(n):
        ex += [(f"The capital of Land{i} is", f"City{i}"), (f"The religion of Land{i} is", f"Faith{i % 4}"),
               (f"The continent of Land{i} is", ["Africa", "Asia", "Europe"][i % 3]),
               (f"Land{i} shares a border with", [f"Sea{i % 5}", f"Sea{(i + 1) % 5}"])]
    return ex


def profiles() -> list[tuple[str, object]]:
    """People, places and works for the extractor's rules (tests/evals/test_wikifacts_frames.py and
    test_wikifacts_verify.py): persons hold a citizenship, places a country, works a country of origin."""
    return [
        ("The country of citizenship of Marie Curie is", "France"), ("The native language of Marie Curie is", "Polish"),
        ("The country of citizenship of Victor Hugo is", "France"),
        ("The country of citizenship of Paul Warburg is", "Germany"), ("The original country of Le Monde is", "France"),
        ("The language of Le Monde is", "French"), ("The language of Marie Claire is", "French"),
        ("The country of La Paz is", "Bolivia"), ("La Paz is capital of", "Bolivia"),
        ("The continent of Kolkata is", "Asia"), ("The country of Kolkata is", "India"),
        ("Hosni Mubarak convicted of", "corruption"), ("The country of citizenship of Hosni Mubarak is", "Egypt"),
        ("Al Capone convicted of", "theft"), ("Ted Bundy convicted of", "murder"),
        ("The capital of United Kingdom is", "London"), ("The capital of Nigeria is", "Abuja"),
        ("The capital of Kenya is", "Nairobi"), ("The capital of Peru is", "Lima"),
        ("The native language of Ojibwe is", "English"), ("The native language of Zhang Wei is", "Chinese"),
        ("The country for sport played by Lionel Messi is", "Argentina"),
        ("The religion of Louis XVI is", "Catholicism"), ("The religion of Asha Rao is", "Christianity"),
        ("The genre of Friends is", "comedy"), ("The country of citizenship of Asha Rao is", "India"),
        ("The place of birth of Asha Rao is", "Mumbai"), ("The continent of Nigeria is", "Africa"),
        # the second development set's rules
        ("The continent of Temple Mount is", "Asia"), ("The religion of Temple Mount is", "Islam"),
        ("The continent of Joseon is", "Asia"), ("The language of SpongeBob is", "English"),
        ("The original broadcaster of SpongeBob is", "Nickelodeon"),
        ("The developer of Final Fantasy VII is", "Square"),
        ("The country of citizenship of Sridevi is", "India"), ("The religion of Sridevi is", "Hinduism"),
        ("The country of Phnom Penh is", "Cambodia"), ("The official language of Malaysia is", "Malay"),
        ("The native language of Mongkut is", "Thai"), ("The instrument of Andrea Bocelli is", "piano"),
        ("The original country of Pedro Paramo is", "Mexico"), ("The sport played by Edgardo Alfonzo is", "baseball"),
        ("The languages spoken, written or signed by Charles IV is", "French"),
        # the third development set's rules
        ("The country of Super Rugby is", "Australia"), ("The original country of Super Rugby is", "Australia"),
    ]
