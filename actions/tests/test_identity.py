"""validate_identify_form against the real shop: email + zip, name + zip, the store's signed
token, failures, locks, one customer."""

from __future__ import annotations

import time

import jwt
import pytest

from actions.customer_token import AUDIENCE
from actions.identity import ValidateIdentifyForm
from actions.orders import ActionResumeRequest
from actions.tests.conftest import MOHAMED, NOAH, Conversation, identified_slots

FORM = ValidateIdentifyForm()


def test_activation_remembers_the_task_and_asks_for_email(convo: Conversation) -> None:
    convo.user("where is my order W8844578?", intent="order_status", order_id="W8844578")
    result = convo.run(FORM, form=True)
    assert result.slot("pending_request") == "order_status"
    assert result.slot("requested_slot") == "email"
    assert result.messages == []  # Rasa's form asks utter_ask_email
    assert convo.slots["identified"] is False


def test_email_in_free_text_identifies_then_the_task_resumes(convo: Conversation) -> None:
    convo.user("status of order #W8844578 please", intent="order_status", order_id="#W8844578")
    convo.run(FORM, form=True)
    convo.user(f"sure, it's {MOHAMED['email'].upper()} and my zip is {MOHAMED['zip']}",
               intent="inform")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]
    assert "Thanks, Mohamed" in result.text
    assert convo.slots["customer_id"] == MOHAMED["user_id"]
    assert convo.slots["identified"] is True
    assert convo.slots["customer_name"] == "Mohamed"
    assert convo.slots["email"] is None  # identification inputs are not kept
    assert result.slot("requested_slot") is None  # form done

    resumed = convo.run(ActionResumeRequest())
    assert "Order #W8844578 is pending" in resumed.text
    assert convo.slots["pending_request"] is None


def test_email_entity_identifies(convo: Conversation) -> None:
    convo.user("list my orders", intent="list_orders")
    convo.run(FORM, form=True)
    convo.user(MOHAMED["email"], intent="inform", email=MOHAMED["email"])
    result = convo.run(FORM, form=True)
    assert result.messages == [] and result.slot("requested_slot") == "zip"  # two facts
    assert convo.slots["customer_id"] is None
    convo.user(MOHAMED["zip"], intent="inform", zip=MOHAMED["zip"])
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]
    assert convo.slots["customer_id"] == MOHAMED["user_id"]
    assert convo.run(ActionResumeRequest()).text.startswith("You have 4 orders")


UNKNOWN_EMAIL = "nobody.atall1234@example.com"


def _answer_the_prompt(domain: dict, text: str, **entities: str) -> tuple:
    """A new conversation asked for identification that answers ``text``: (result, slots)."""
    other = Conversation(domain)
    other.user("list my orders", intent="list_orders")
    other.run(FORM, form=True)
    other.user(text, intent="inform", **entities)
    return other.run(FORM, form=True), other.slots


def test_an_email_alone_is_never_looked_up(convo: Conversation) -> None:
    """Known or unknown, an email gets the same question: the zip; nothing tells them apart."""
    replies = []
    for email in (MOHAMED["email"], UNKNOWN_EMAIL):
        result, slots = _answer_the_prompt(convo.domain, email, email=email)
        replies.append((result.messages, result.slot("requested_slot"), slots["id_attempts"]))
    assert replies[0] == replies[1] == ([], "zip", 0)


def test_a_wrong_zip_and_an_unknown_email_get_the_same_reply(convo: Conversation) -> None:
    texts = []
    for email in (MOHAMED["email"], UNKNOWN_EMAIL):
        result, slots = _answer_the_prompt(convo.domain, f"{email} 99999")
        texts.append((result.responses, result.text, result.slot("requested_slot")))
        assert slots["customer_id"] is None
    assert texts[0] == texts[1]
    assert texts[0][0] == ["utter_identification_failed"]


STORE_SECRET = "the-store-signs-with-this-32-byte-secret"


def _token(sub: str, secret: str = STORE_SECRET, **claims: object) -> str:
    now = int(time.time())
    payload = {"sub": sub, "aud": AUDIENCE, "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture()
def store_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CUSTOMER_TOKEN_SECRET", STORE_SECRET)
    return STORE_SECRET


def test_a_signed_in_shopper_is_identified_by_the_store_token(
    convo: Conversation, store_secret: str
) -> None:
    convo.metadata = {"customer_token": _token(MOHAMED["user_id"])}
    convo.user("where is my order W8844578?", intent="order_status", order_id="W8844578")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]
    assert convo.slots["customer_id"] == MOHAMED["user_id"] and convo.slots["identified"] is True
    assert "Order #W8844578 is pending" in convo.run(ActionResumeRequest()).text


@pytest.mark.parametrize("token", [
    "not-a-token",
    _token(MOHAMED["user_id"], secret="another-store-with-its-own-32-byte-secret"),
    _token(MOHAMED["user_id"], aud="someone-else"),
    _token(MOHAMED["user_id"], exp=int(time.time()) - 3600),
    _token(MOHAMED["user_id"], exp=int(time.time()) + 30 * 86400),  # lives over a day
    jwt.encode({"sub": MOHAMED["user_id"], "aud": AUDIENCE, "iat": int(time.time()),
                "exp": int(time.time()) + 600}, None, algorithm="none"),
    _token("nobody_at_all_0000"),
])
def test_a_bad_store_token_identifies_no_one(
    convo: Conversation, store_secret: str, token: str
) -> None:
    convo.metadata = {"customer_token": token}
    convo.user("list my orders", intent="list_orders")
    result = convo.run(FORM, form=True)
    assert result.slot("requested_slot") == "email"
    assert convo.slots["customer_id"] is None and convo.slots["identified"] is False


def test_store_tokens_are_refused_when_no_secret_is_set(
    convo: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUSTOMER_TOKEN_SECRET", raising=False)
    convo.metadata = {"customer_token": _token(MOHAMED["user_id"])}
    convo.user("list my orders", intent="list_orders")
    assert convo.run(FORM, form=True).slot("requested_slot") == "email"
    assert convo.slots["customer_id"] is None


def test_name_and_zip_in_one_message(convo: Conversation) -> None:
    convo.user("track my package", intent="track_order")
    convo.run(FORM, form=True)
    convo.user("mohamed li 43209", intent="inform")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]
    assert convo.slots["customer_id"] == MOHAMED["user_id"]
    assert convo.slots["first_name"] is None and convo.slots["zip"] is None


def test_name_and_zip_step_by_step(convo: Conversation) -> None:
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("I don't have an email, can I use my name?", intent="inform")
    assert convo.run(FORM, form=True).slot("requested_slot") == "first_name"
    convo.user("Mohamed", intent="inform")
    assert convo.run(FORM, form=True).slot("requested_slot") == "last_name"
    convo.user("it's Li", intent="inform")
    assert convo.run(FORM, form=True).slot("requested_slot") == "zip"
    convo.user("zip is 43209", intent="inform")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]
    assert convo.slots["customer_id"] == MOHAMED["user_id"]


def test_name_entities_with_wrong_zip_fail_and_ask_again_by_name(convo: Conversation) -> None:
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user(
        "mohamed li 99999", intent="inform", first_name="mohamed", last_name="li", zip="99999"
    )
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identification_failed"]
    assert convo.slots["id_attempts"] == 1
    assert convo.slots["identified"] is False and convo.slots["customer_id"] is None
    assert result.slot("requested_slot") == "first_name"
    assert all(convo.slots[s] is None for s in ("first_name", "last_name", "zip"))


def test_full_name_instead_of_email_switches_to_name_and_zip(convo: Conversation) -> None:
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("Mohamed Li", intent="inform")
    assert convo.run(FORM, form=True).slot("requested_slot") == "zip"
    convo.user("43209", intent="inform")
    assert convo.run(FORM, form=True).responses == ["utter_identified"]


def test_order_talk_at_the_email_prompt_is_not_a_name(convo: Conversation) -> None:
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("my order W1234567", intent="inform", order_id="W1234567")
    result = convo.run(FORM, form=True)
    assert not result.sets("first_name") and result.slot("requested_slot") == "email"


def test_full_name_with_only_the_first_name_tagged(convo: Conversation) -> None:
    """Seen end to end: the NLU tagged "Mei" but not "Martin"; the text still has it."""
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("Mohamed Li", intent="inform", first_name="Mohamed")
    assert convo.run(FORM, form=True).slot("requested_slot") == "zip"
    assert convo.slots["last_name"] == "Li"
    convo.user("43209", intent="inform")
    assert convo.run(FORM, form=True).responses == ["utter_identified"]


def test_full_name_classified_as_fallback(convo: Conversation) -> None:
    """Seen end to end: "Mei Martin" came as nlu_fallback with only first_name tagged."""
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("Mohamed Li", intent="nlu_fallback", first_name="Mohamed")
    assert convo.run(FORM, form=True).slot("requested_slot") == "zip"


def test_order_numbers_and_sizes_tagged_as_zip_are_dropped_silently(
    convo: Conversation,
) -> None:
    """Seen end to end: "order W 5564375" -> zip=5564375; "size 9" -> zip=9."""
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("Mohamed Li", intent="inform", first_name="Mohamed", last_name="Li")
    assert convo.run(FORM, form=True).slot("requested_slot") == "zip"
    for text, intent, tagged in (
        ("what's the status of order W 8864622", "order_status", "8864622"),
        ("no, I meant 7017301", "inform", "7017301"),
        ("is it available in size 9 leather?", "product_info", "9"),
    ):
        convo.user(text, intent=intent, zip=tagged)
        result = convo.run(FORM, form=True)
        assert result.messages == [], text
        assert convo.slots["zip"] is None and result.slot("requested_slot") == "zip"
    convo.user("zip is 4320", intent="inform", zip="4320")
    assert "5 digits" in convo.run(FORM, form=True).text


def test_name_entities_outside_the_requested_slot_are_used(convo: Conversation) -> None:
    """Asked for the first name, the shopper gives all three: last name and zip count too."""
    convo.user("where's my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("by name", intent="inform")
    assert convo.run(FORM, form=True).slot("requested_slot") == "first_name"
    convo.user("mohamed li, 43209", intent="inform", first_name="mohamed", last_name="li",
               zip="43209")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identified"]


def test_three_failures_lock_the_conversation(convo: Conversation) -> None:
    convo.user("my orders", intent="list_orders")
    convo.run(FORM, form=True)
    for attempt in (1, 2):
        convo.user(f"nobody{attempt}@example.com 10001", intent="inform")
        result = convo.run(FORM, form=True)
        assert result.responses == ["utter_identification_failed"]
        assert result.slot("requested_slot") == "email"
        assert convo.slots["id_attempts"] == attempt
    convo.user("nobody3@example.com 10001", intent="inform")
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identification_locked"]
    assert result.slot("requested_slot") is None  # the form ends
    assert convo.slots["id_attempts"] == 3 and convo.slots["identified"] is False

    # later, even the right email is refused in this conversation
    convo.user(f"{MOHAMED['email']} {MOHAMED['zip']}", intent="inform", email=MOHAMED["email"])
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_identification_locked"]
    assert convo.slots["customer_id"] is None and convo.slots["identified"] is False
    assert convo.slots["email"] is None
    # and the pending task does not run
    resumed = convo.run(ActionResumeRequest())
    assert resumed.messages == [] and convo.slots["pending_request"] is None


def test_already_identified_with_another_identity_changes_nothing(domain: dict) -> None:
    convo = Conversation(domain, slots=identified_slots(MOHAMED))
    convo.user(f"actually I'm {NOAH['email']}", intent="inform", email=NOAH["email"])
    result = convo.run(FORM, form=True)
    assert result.responses == ["utter_already_identified"]
    assert "already identified as Mohamed" in result.text
    assert not result.sets("customer_id")
    assert convo.slots["customer_id"] == MOHAMED["user_id"]
    assert convo.slots["email"] is None
    assert result.slot("requested_slot") is None


def test_partial_email_entity_is_completed_from_the_text(convo: Conversation) -> None:
    convo.user("my orders", intent="list_orders")
    convo.run(FORM, form=True)
    convo.user(f"{MOHAMED['email']} {MOHAMED['zip']}", intent="inform",
               email="mohamed.li8414@example")
    assert convo.run(FORM, form=True).responses == ["utter_identified"]


def test_invalid_email_is_asked_again_without_a_strike(convo: Conversation) -> None:
    convo.user("my orders", intent="list_orders")
    convo.run(FORM, form=True)
    convo.user("john@", intent="inform", email="john@")
    result = convo.run(FORM, form=True)
    assert "doesn't look like an email" in result.text
    assert convo.slots["id_attempts"] == 0
    assert result.slot("requested_slot") == "email"


def test_same_task_asked_again_mid_form_is_handled(convo: Conversation) -> None:
    """Rule "another order question during identification keeps identifying": no rejection."""
    convo.user("where is my order", intent="order_status")
    convo.run(FORM, form=True)
    convo.user("I said where is my order!", intent="order_status")
    result = convo.run(FORM, form=True)
    assert result.slot("pending_request") == "order_status"
    assert result.slot("requested_slot") == "email"


def test_digression_leaves_the_slots_alone(convo: Conversation) -> None:
    """No slot set besides requested_slot: Rasa rejects the form and the FAQ rule answers."""
    convo.user("my orders", intent="list_orders")
    convo.run(FORM, form=True)
    convo.user("how long do refunds take?", intent="faq")
    result = convo.run(FORM, form=True)
    assert result.messages == []
    assert {e["name"] for e in result.events if e["event"] == "slot"} <= {"requested_slot"}
