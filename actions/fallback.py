"""action_fallback: out-of-scope or not understood -> a polite reply that says what we can do.

Never silence. A message that carries an order id ("what about W7824724" when the NLU was
unsure of the intent) is answered as an order-status question (identification still applies).
Anything else gets a grounded answer from the store's knowledge (:func:`grounded_reply`,
``actions.grounding``), which is checked against the passages and degrades to the best passage and
the offer of a human agent when the LLM is down, slow or unsupported.

The grounded answer (retrieval, the LLM call, the checks) runs in the LLM's own bounded pool
(``actions.llm_client.llm_pool``: LLM_CONCURRENCY threads, LLM_QUEUE_WAIT seconds of wait for
one), never on the default executor that the order and change actions' shop calls use: many
free-form questions at once, or a slow LLM, cannot hold up an order-status turn. A question that
gets no slot in time is answered "Sorry, I can't answer that right now. Would you like me to
connect you with a human agent?" (``ERROR_REPLY``).
"""

from __future__ import annotations

import logging
import threading
from typing import Optional

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction

from actions.action_base import Dispatcher, DomainDict, Events, NamedAction, run_safely
from actions.grounding import ERROR_REPLY, describe_answer, format_reply, grounded_answer
from actions.knowledge import default_retriever
from actions.llm_client import LLMBusy, llm_pool
from actions.orders import order_status
from actions.shop_client import ShopError, get_client
from actions.shop_records import Order
from actions.text_parsing import find_order_id
from actions.tracker_helpers import actions_this_turn, current_customer, latest_turn
from actions.wording import describe_order, format_money

logger = logging.getLogger(__name__)
ACTION_LISTEN = "action_listen"


def _warm_up_retriever() -> None:
    """Load the MiniLM encoder and the passage index now, in the background, so the first
    free-form question does not wait ~1 s for them."""
    try:
        default_retriever().warm_up()
    except Exception:  # noqa: BLE001 - the first question loads it again and says what failed
        logger.warning("retriever warm-up failed", exc_info=True)


threading.Thread(target=_warm_up_retriever, name="retriever-warm-up", daemon=True).start()


def shopper_facts(tracker: Tracker) -> Optional[str]:
    """The identified shopper's own order under discussion, as facts for the LLM (or None).

    Status, items, what the status allows and the payments: "ok, and can I cancel it?" is then
    answered for that order. Only this conversation's customer, only once identified: never
    anybody else's data.
    """
    customer_id = current_customer(tracker)
    order_id = tracker.get_slot("order_id")
    if not customer_id or not order_id:
        return None
    try:
        order = get_client().get_order(order_id, customer_id)
    except ShopError:
        return None
    return "\n".join([describe_order(order)] + payment_facts(order))


METHOD_KINDS = (("gift_card", "a gift card"), ("credit_card", "a credit card"),
                ("paypal", "PayPal"))


def payment_facts(order: Order) -> list[str]:
    """One line per money move of the order ("Paid $536.65 with a gift card."), so "how much
    did I pay and how?" is answered from the order, not guessed. The method is named from its
    id's kind (gift card, PayPal, card): no extra call, never a number."""
    lines = []
    for entry in order.payment_history:
        method = next((name for kind, name in METHOD_KINDS
                       if entry.payment_method_id.startswith(kind)), "the original payment method")
        amount = format_money(entry.amount)
        if entry.transaction_type == "refund":
            lines.append(f"Refunded {amount} to {method}.")
        else:
            lines.append(f"Paid {amount} with {method}.")
    return lines


def grounded_reply(question: str, tracker: Tracker) -> str:
    """A grounded answer to a free-form question, worded for the shopper.

    ``actions.grounding`` never raises: an LLM that is down, slow or talking nonsense gives the best
    help-page passage and the offer of a human agent instead.
    """
    answer = grounded_answer(question, shopper_facts(tracker))
    logger.info("fallback answer: %s", describe_answer(answer))
    return format_reply(answer)


class ActionFallback(NamedAction):
    """Replies to what the assistant cannot handle, and says what it can do."""

    action_name = "action_fallback"

    async def run(self, dispatcher: Dispatcher, tracker: Tracker, domain: DomainDict) -> Events:
        if self.name() in actions_this_turn(tracker):
            # predicted again right after itself (the core fallback, unsure what comes next,
            # e.g. after a form rejected the message): the shopper has the answer already;
            # listen instead of repeating it until Rasa's circuit breaker stops the turn
            return [FollowupAction(ACTION_LISTEN)]
        turn = latest_turn(tracker)
        question = turn.words
        if turn.entity("order_id") or find_order_id(turn.text):
            # a message with an order id is about that order, even if the intent was unclear
            return await run_safely(
                self.name(), lambda: order_status(dispatcher, tracker), dispatcher
            )
        reply = None
        if question:
            try:
                # blocking HTTP + embeddings: off the event loop, in the LLM's own bounded pool
                reply = await llm_pool().run(grounded_reply, question, tracker)
            except LLMBusy:
                logger.info("fallback answer: %s", {"kind": "error", "error": "LLMBusy"})
                reply = ERROR_REPLY
            except Exception:  # noqa: BLE001 - fall back to the canned reply, never silence
                logger.exception("grounded reply failed")
        if reply:
            dispatcher.utter_message(text=reply)
        elif turn.intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
        else:
            dispatcher.utter_message(response="utter_default")
        return []
