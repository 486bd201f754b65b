"""How shoppers name the catalog's products: surface forms -> canonical catalog names.

One source for both the NLU data (``scripts/gen_nlu_lookups.py`` writes the lookup table and
synonyms from it) and ``action_product_info`` (which resolves names the NLU left unmapped), so
the two never disagree. The catalog names themselves always come from the catalog; this module
only adds the words people use for them (keys must be catalog names — the generator checks).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional

# Everyday names for catalog products. Only unambiguous ones: "camera", "kettle" or "watch"
# could be several products, so they are deliberately absent.
ALIASES: Dict[str, List[str]] = {
    "Action Camera": ["action cam", "action cams", "gopro", "sports camera"],
    "Air Purifier": ["purifier", "purifiers", "air cleaner", "air filter"],
    "Backpack": ["back pack", "rucksack", "rucksacks", "bag pack", "school bag"],
    "Bicycle": ["bike", "bikes", "cycle", "mountain bike", "road bike"],
    "Bluetooth Speaker": ["speaker", "speakers", "bt speaker", "wireless speaker"],
    "Bookshelf": ["book shelf", "bookshelves", "bookcase", "bookcases", "shelf", "shelves"],
    "Coffee Maker": ["coffee machine", "coffee machines", "coffeemaker", "drip coffee maker"],
    "Cycling Helmet": ["bike helmet", "bicycle helmet", "helmet", "helmets"],
    "Desk Lamp": ["lamp", "lamps", "table lamp", "reading lamp"],
    "Digital Camera": ["dslr", "digicam", "photo camera"],
    "Dumbbell Set": ["dumbbells", "dumbbell", "dumbells", "weights", "free weights"],
    "E-Reader": ["ereader", "e reader", "ebook reader", "e-book reader", "kindle"],
    "Electric Kettle": ["electric kettles", "water kettle"],
    "Electric Toothbrush": ["toothbrush", "toothbrushes", "electric tooth brush"],
    "Espresso Machine": ["espresso maker", "espresso machines", "espresso"],
    "Fleece Jacket": ["fleece", "fleeces", "jacket", "jackets"],
    "Gaming Mouse": ["mouse", "computer mouse", "gaming mice", "mice"],
    "Garden Hose": ["hose", "hoses", "hosepipe", "water hose"],
    "Grill": ["bbq", "barbecue", "barbeque", "grills"],
    "Headphones": ["headphone", "headset", "headsets", "over-ear headphones"],
    "Hiking Boots": ["boots", "boot", "hiking boot", "hiking shoes", "trekking boots"],
    "Indoor Security Camera": ["security camera", "security cameras", "indoor camera",
                               "security cam", "home camera"],
    "Jigsaw Puzzle": ["puzzle", "puzzles", "jigsaw", "jigsaws"],
    "LED Light Bulb": ["light bulb", "light bulbs", "bulb", "bulbs", "led bulb", "led bulbs",
                       "lightbulb", "lightbulbs"],
    "Laptop": ["laptops", "notebook computer", "portable computer"],
    "Luggage Set": ["luggage", "suitcase", "suitcases", "luggage sets"],
    "Makeup Kit": ["make up kit", "make-up kit", "makeup", "make-up", "cosmetics kit"],
    "Mechanical Keyboard": ["keyboard", "keyboards", "mech keyboard"],
    "Notebook": ["notepad", "notepads", "journal", "paper notebook"],
    "Office Chair": ["chair", "chairs", "desk chair", "computer chair"],
    "Patio Umbrella": ["umbrella", "umbrellas", "garden umbrella", "parasol"],
    "Perfume": ["fragrance", "fragrances", "perfumes", "scent", "cologne"],
    "Pet Bed": ["dog bed", "cat bed", "pet beds", "dog beds"],
    "Portable Charger": ["power bank", "powerbank", "power banks", "battery pack", "charger"],
    "Running Shoes": ["running shoe", "runners", "running sneakers", "jogging shoes"],
    "Skateboard": ["skate board", "skateboards", "skate"],
    "Smart Thermostat": ["thermostat", "thermostats"],
    "Smart Watch": ["smartwatch", "smartwatches", "smart watches", "fitness watch"],
    "Smartphone": ["smart phone", "phone", "phones", "cell phone", "mobile phone", "mobile"],
    "Sneakers": ["sneaker", "trainers", "trainer"],
    "Sunglasses": ["sun glasses", "sunglass", "shades"],
    "T-Shirt": ["t-shirt", "tshirt", "tshirts", "t shirt", "t shirts", "tee", "tees",
                "tee shirt", "tee shirts", "shirt", "shirts"],
    "Tablet": ["tablets", "tablet computer"],
    "Tea Kettle": ["teakettle", "stovetop kettle"],
    "Vacuum Cleaner": ["vacuum", "vacuums", "hoover", "vacuum cleaners"],
    "Wall Clock": ["clock", "clocks", "wall clocks"],
    "Water Bottle": ["bottle", "bottles", "water bottles", "drinking bottle"],
    "Wireless Earbuds": ["earbuds", "earbud", "ear buds", "wireless earbud", "earphones",
                         "in-ear headphones"],
    "Wristwatch": ["wrist watch", "wristwatches", "analog watch"],
    "Yoga Mat": ["yoga mats", "exercise mat", "fitness mat", "mat"],
}


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word if word.endswith("s") else word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def surface_forms(name: str) -> List[str]:
    """Lower-case singular/plural forms of a catalog name (``Hiking Boots`` -> ``hiking boot``)."""
    lower = name.lower()
    head, _, last = lower.rpartition(" ")
    forms = {lower}
    for variant in (_plural(last), _singular(last)):
        forms.add(f"{head} {variant}".strip())
    if "-" in lower:
        forms |= {f.replace("-", "") for f in list(forms)}
        forms |= {f.replace("-", " ") for f in list(forms)}
    return sorted(forms)


def name_table(catalog_names: Iterable[str]) -> Dict[str, str]:
    """Every known form (lower case) -> canonical catalog name; aliases of unknown names skipped."""
    names = sorted(set(catalog_names))
    table: Dict[str, str] = {}
    for name in names:
        for form in surface_forms(name):
            table.setdefault(form, name)
    for name in names:
        for alias in ALIASES.get(name, []):
            table.setdefault(alias.lower(), name)
    return table


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9\- ]+", " ", text.lower()).split())


def resolve_product(text: Optional[str], catalog_names: Iterable[str]) -> Optional[str]:
    """The catalog name ``text`` means: exact form first, else the longest form inside it."""
    if not text:
        return None
    table = name_table(catalog_names)
    query = _norm(text)
    if query in table:
        return table[query]
    for form in sorted(table, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", query):
            return table[form]
    return None
