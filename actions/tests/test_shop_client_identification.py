"""ShopClient identification and customer scoping against the real shop backend (conftest.py).

Mirrors the fake-server tests of test_shop_client.py. The shop is shared by the whole session, so
these tests use a customer no other action test uses, random unknown emails and their own client
ids: the locks they cause touch nobody else.
"""

from __future__ import annotations

import secrets

import pytest

from actions.shop_client import IdentificationLocked, Invalid, NotFound, ShopClient

RAJ = {"user_id": "raj_davis_2615", "email": "raj.davis3587@example.com", "first_name": "Raj",
       "last_name": "Davis", "zip": "85050", "tracking_id": "748397806850"}
ISABELLA = "isabella_johansson_7408"


def client_id() -> str:
    return "test-client-" + secrets.token_hex(4)


def ghost() -> str:
    return f"ghost-{secrets.token_hex(4)}@example.com"


def test_two_facts_identify(client: ShopClient) -> None:
    cid = client_id()
    assert client.lookup_customer(email=RAJ["email"].upper(), zip_code=RAJ["zip"],
                                  client_id=cid) == RAJ["user_id"]
    assert client.lookup_customer(first_name="raj", last_name="DAVIS", zip_code=RAJ["zip"],
                                  client_id=cid) == RAJ["user_id"]


def test_wrong_zip_and_unknown_email_are_the_same_not_found(client: ShopClient) -> None:
    with pytest.raises(NotFound) as wrong:
        client.lookup_customer(email=RAJ["email"], zip_code="00000", client_id=client_id())
    with pytest.raises(NotFound) as unknown:
        client.lookup_customer(email=ghost(), zip_code=RAJ["zip"], client_id=client_id())
    assert (wrong.value.code, wrong.value.message) == (unknown.value.code, unknown.value.message)
    # clear Raj's failure again, so the count never builds up over the session
    assert client.lookup_customer(email=RAJ["email"], zip_code=RAJ["zip"]) == RAJ["user_id"]


def test_email_alone_is_refused_before_the_shop(client: ShopClient) -> None:
    with pytest.raises(Invalid):
        client.lookup_customer(email=RAJ["email"])


def test_an_account_locks_and_the_error_says_how_long(client: ShopClient) -> None:
    email = ghost()
    for _ in range(5):
        with pytest.raises(NotFound):
            client.lookup_customer(email=email, zip_code="12345", client_id=client_id())
    with pytest.raises(IdentificationLocked) as info:
        client.lookup_customer(email=email, zip_code="12345", client_id=client_id())
    assert 1 <= info.value.retry_after <= 900 and info.value.status == 429


def test_a_client_locks_across_accounts(client: ShopClient) -> None:
    cid = client_id()
    for _ in range(20):
        with pytest.raises(NotFound):
            client.lookup_customer(email=ghost(), zip_code="12345", client_id=cid)
    with pytest.raises(IdentificationLocked):  # even the right details, from this client
        client.lookup_customer(email=RAJ["email"], zip_code=RAJ["zip"], client_id=cid)
    assert client.lookup_customer(email=RAJ["email"], zip_code=RAJ["zip"],
                                  client_id=client_id()) == RAJ["user_id"]


def test_shipments_and_tickets_are_the_customers_own(client: ShopClient) -> None:
    shipment = client.get_shipment(RAJ["tracking_id"], RAJ["user_id"])
    assert shipment.tracking_id == RAJ["tracking_id"]
    with pytest.raises(NotFound):
        client.get_shipment(RAJ["tracking_id"], ISABELLA)
    ticket = client.create_handoff("wants a person", customer_id=RAJ["user_id"],
                                   conversation_id="client-" + secrets.token_hex(4))
    assert client.get_handoff(ticket["id"], RAJ["user_id"])["user_id"] == RAJ["user_id"]
    with pytest.raises(NotFound):
        client.get_handoff(ticket["id"], ISABELLA)
    anonymous = client.create_handoff("asks for a person")
    with pytest.raises(NotFound):  # an anonymous ticket is nobody's to read
        client.get_handoff(anonymous["id"], RAJ["user_id"])
    rating = client.create_rating("client-" + secrets.token_hex(4), 5,
                                  customer_id=RAJ["user_id"])
    assert rating["customer_id"] == RAJ["user_id"]
