"""The generated NLU lookups are fresh and consistent with the catalog."""

from __future__ import annotations

import json

import pytest
import yaml

from actions.product_names import ALIASES, name_table, resolve_product
from actions.tests.conftest import REPO
from scripts.gen_nlu_lookups import main as gen_main

pytestmark = pytest.mark.no_shop

NAMES = sorted(
    p["name"]
    for p in json.loads((REPO / "shop/data/db.json").read_text())["products"].values()
)


def test_lookups_file_is_up_to_date() -> None:
    assert gen_main(["--check"]) == 0


def test_lookup_table_and_synonyms() -> None:
    data = yaml.safe_load((REPO / "data/nlu/lookups.yml").read_text())
    blocks = data["nlu"]
    lookup = next(b for b in blocks if b.get("lookup") == "product")
    forms = [line[2:] for line in lookup["examples"].splitlines()]
    assert set(NAMES) <= set(forms)
    assert {"hiking boots", "t-shirts", "tshirt", "earbuds", "boots", "tee"} <= set(forms)
    synonyms = {
        line[2:]: b["synonym"]
        for b in blocks
        if "synonym" in b
        for line in b["examples"].splitlines()
    }
    assert synonyms["boots"] == "Hiking Boots"
    assert synonyms["hiking boot"] == "Hiking Boots"
    assert synonyms["tshirt"] == synonyms["tee"] == "T-Shirt"
    assert synonyms["earbuds"] == "Wireless Earbuds"
    assert set(synonyms.values()) <= set(NAMES)


def test_every_alias_names_one_catalog_product() -> None:
    table = name_table(NAMES)
    assert set(ALIASES) <= set(NAMES)
    for name, aliases in ALIASES.items():
        for alias in aliases:
            assert table[alias.lower()] == name


@pytest.mark.parametrize(
    "text, name",
    [("Hiking boots", "Hiking Boots"), ("a new tee shirt", "T-Shirt"),
     ("in-ear headphones", "Wireless Earbuds"), ("headphones", "Headphones"),
     ("e reader", "E-Reader"), ("camera", None), ("kettle", None)],
)
def test_resolve_product(text: str, name) -> None:
    assert resolve_product(text, NAMES) == name
