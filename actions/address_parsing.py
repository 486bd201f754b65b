"""A US address from what the shopper typed, in the shape the shop stores (usaddress tags it).

Why a library: street numbers, unit designators ("apt", "#", "suite") and place names are
what usaddress's CRF model is trained on; regexes would miss the long tail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import usaddress
from rapidfuzz import fuzz, process

from actions.shop_records import Address


def _words(text: str) -> List[str]:
    return text.split()


_STATES: Dict[str, str] = {
    pair.split(":")[0].replace("_", " "): pair.split(":")[1] for pair in _words(
        "alabama:AL alaska:AK arizona:AZ arkansas:AR california:CA colorado:CO connecticut:CT "
        "delaware:DE florida:FL georgia:GA hawaii:HI idaho:ID illinois:IL indiana:IN iowa:IA "
        "kansas:KS kentucky:KY louisiana:LA maine:ME maryland:MD massachusetts:MA michigan:MI "
        "minnesota:MN mississippi:MS missouri:MO montana:MT nebraska:NE nevada:NV "
        "new_hampshire:NH new_jersey:NJ new_mexico:NM new_york:NY north_carolina:NC "
        "north_dakota:ND ohio:OH oklahoma:OK oregon:OR pennsylvania:PA rhode_island:RI "
        "south_carolina:SC south_dakota:SD tennessee:TN texas:TX utah:UT vermont:VT virginia:VA "
        "washington:WA west_virginia:WV wisconsin:WI wyoming:WY district_of_columbia:DC "
        "washington_dc:DC puerto_rico:PR"
    )
}
_COUNTRY_RE = re.compile(r"[\s,]*\b(united states( of america)?|u\.?s\.?a\.?|u\.?s\.?|america)"
                         r"\.?\s*$", re.IGNORECASE)
ADDRESS_REQUIRED = ("address1", "city", "state", "zip")


@dataclass
class AddressParse:
    """An address as the shop stores it; ``missing`` lists required fields not found."""

    address1: str = ""
    address2: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = "USA"
    missing: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, str]:
        """The request body of the shop's address endpoints (and the ``new_address`` slot)."""
        return self.as_address().as_body()

    def as_address(self) -> Address:
        return Address(self.address1, self.address2, self.city, self.state, self.country,
                       self.zip)


def _state_code(raw: str) -> str:
    name = " ".join(re.sub(r"[^a-z ]", " ", raw.lower()).split())
    if name.upper() in _STATES.values():
        return name.upper()
    hit = process.extractOne(name, list(_STATES), scorer=fuzz.ratio, score_cutoff=85)
    return _STATES[hit[0]] if hit else ""


def _cap(text: str) -> str:
    """Title-case words typed in lower case ("main st" -> "Main St"), keep "5th", "McKay"."""
    return " ".join(w[0].upper() + w[1:] if w.islower() and w[0].isalpha() else w
                    for w in text.split())


def parse_address(text: Optional[str]) -> AddressParse:
    """A US address from free text (``123 Main St Apt 4, Austin, TX 78701``)."""
    text = (text or "").strip().rstrip(".!?")
    result = AddressParse()
    stripped = _COUNTRY_RE.sub("", text)
    try:
        parts, _ = usaddress.tag(stripped)
    except usaddress.RepeatedLabelError as exc:
        parts = {}
        for token, label in exc.parsed_string:
            if label not in parts or list(parts)[-1] == label:
                parts[label] = (parts.get(label, "") + " " + token).strip()
    parts = {k: v.strip(" ,!?;:") for k, v in parts.items()}
    parts["ZipCode"] = parts.get("ZipCode", "").rstrip(".")
    street = ["AddressNumberPrefix", "AddressNumber", "AddressNumberSuffix",
              "StreetNamePreDirectional", "StreetNamePreModifier", "StreetNamePreType",
              "StreetName", "StreetNamePostType", "StreetNamePostDirectional",
              "StreetNamePostModifier", "USPSBoxType", "USPSBoxID"]
    result.address1 = _cap(" ".join(parts[k] for k in street if parts.get(k)))
    unit = " ".join(parts[k] for k in ("OccupancyType", "OccupancyIdentifier",
                                       "SubaddressType", "SubaddressIdentifier") if parts.get(k))
    result.address2 = _cap(unit.replace("# ", "#"))
    result.city = _cap(parts.get("PlaceName", ""))
    result.state = _state_code(parts.get("StateName", ""))
    zip_code = re.fullmatch(r"\d{5}(-\d{4})?", parts.get("ZipCode", ""))
    result.zip = zip_code.group(0) if zip_code else ""
    if not result.address1 or not (parts.get("AddressNumber") or parts.get("USPSBoxID")):
        result.address1 = ""
    result.missing = [f for f in ADDRESS_REQUIRED if not getattr(result, f)]
    return result
