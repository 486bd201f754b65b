"""action_recommend_products: "anything like my boots but cheaper?", "what would you recommend
for a rainy hike?" (issue 21).

Available products ranked by ``actions.suggestions.rank_products``: the constraints in the
question (price, colour, material, features, "cheaper than mine") filter first, then MiniLM
similarity to the question and to what the identified shopper bought ranks; never a variant
they already own. Only when asked: the assistant never volunteers a recommendation.

The catalog's vectors are embedded once (6-11 s on one core for the seed catalog) and kept on
disk (``SUGGESTION_VECTORS_PATH``, default ``var/suggestion_vectors.npz``, keyed by the variant
texts, so a changed catalog only embeds what is new); the action server warms them in a
background thread at start, so no shopper waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path
from typing import List

from rasa_sdk import Tracker

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction, shop_safe
from actions.shop_client import ShopError, get_client
from actions.suggestions import ProductSuggestion, default_vectors, rank_products
from actions.tracker_helpers import current_customer, latest_turn
from actions.wording import button, format_money, format_options

logger = logging.getLogger(__name__)

MAX_RECOMMENDATIONS = 3
ROOT = Path(__file__).resolve().parents[1]


def vectors_path() -> Path:
    return Path(os.environ.get("SUGGESTION_VECTORS_PATH") or ROOT / "var" /
                "suggestion_vectors.npz")


def warm_up_in_background() -> None:
    """Load (or embed and save) the catalog's vectors off the request path."""

    def run() -> None:
        try:
            catalog = get_client().list_products()
            vectors = default_vectors()
            vectors.load(vectors_path())
            if vectors.catalog_vectors_missing(catalog):
                vectors.catalog_matrix(catalog)
                vectors.save(vectors_path())
            else:
                vectors.catalog_matrix(catalog)
        except ShopError as exc:  # the shop not up yet: the first question embeds instead
            logger.info("suggestion vectors not warmed: %s", exc)
        except Exception:  # noqa: BLE001 - a failed warm-up must not stop the server
            logger.exception("suggestion vectors not warmed")

    threading.Thread(target=run, name="suggestions-warm-up", daemon=True).start()


def recommendation_text(results: List[ProductSuggestion], personal: bool) -> str:
    """A short list: product, the suggested variant and price, why."""
    head = "Here's what I'd suggest" + (" for you" if personal else "") + ":"
    lines = [head]
    for r in results:
        lines.append(f"• {r.product.name} ({format_options(r.variant.options)}), "
                     f"{format_money(r.variant.price)}: {r.reason}")
    lines.append("Want details on one of them? Just ask, e.g. \"tell me about the "
                 f"{results[0].product.name}\".")
    return "\n".join(lines)


async def recommend(dispatcher: Dispatcher, tracker: Tracker) -> Events:
    """The suggestions for the latest message (also when the NLU took it for a product
    question: ``actions.catalog``)."""
    turn = latest_turn(tracker)
    shop = get_client()
    catalog = shop.list_products()
    customer_id = current_customer(tracker)
    history = shop.list_orders(customer_id) if customer_id else []
    question = turn.words or turn.text
    results = await asyncio.to_thread(rank_products, catalog, history, question,
                                      k=MAX_RECOMMENDATIONS)
    if not results:
        dispatcher.utter_message(response="utter_no_recommendation")
        return []
    dispatcher.utter_message(
        text=recommendation_text(results, personal=bool(history)),
        buttons=[button(f"About the {r.product.name}", "product_info", product=r.product.name)
                 for r in results],
    )
    return []


class ActionRecommendProducts(NamedAction):
    """Answers a request for suggestions with a few available products, explained."""

    action_name = "action_recommend_products"

    @shop_safe
    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        return await recommend(dispatcher, tracker)

if os.environ.get("SUGGESTIONS_WARM_UP", "on").strip().lower() not in ("0", "off", "false", "no"):
    warm_up_in_background()
