"""The only place that talks HTTP to the shop backend (contract: docs/shop.md, /openapi.json).

Why one module: timeouts, retries, auth and error mapping are decided once, so every action
fails the same polite way and no action can forget the customer scope header.

- Reads (GET) are retried with exponential backoff (urllib3 ``Retry`` on a requests adapter).
- Writes are never retried blindly: they go through a session without retries and carry an
  ``Idempotency-Key``; repeating a write with the same key is safe (the shop returns the first
  result), so a caller may retry *explicitly* with the same key.
- Errors are typed: ``ShopUnavailable`` (connection error, timeout, 5xx, malformed JSON, auth
  misconfiguration), ``NotFound`` (404), ``Conflict`` (409), ``Invalid`` (422/400),
  ``IdentificationLocked`` (429 ``identification_locked``, with ``retry_after`` seconds; never
  retried), each carrying the server's message.
- Identification takes two facts (email + zip, or first name + last name + zip); the shop counts
  failed lookups per account and per ``X-Client-Id`` (the shopper's client, passed by the caller).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from actions.shop_errors import (  # re-exported: callers catch them from the client
    AgentRefused,
    Conflict,
    IdentificationLocked,
    Invalid,
    NotFound,
    RiskReview,
    ShopError,
    ShopUnavailable,
)
from actions.shop_records import Customer, MalformedRecord, Order, Product, Shipment
from actions.text_parsing import normalize_order_id

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_SHOP_URL = "http://localhost:8000"
DEFAULT_TIMEOUT = 3.0  # seconds to read a response (SHOP_TIMEOUT)
DEFAULT_CONNECT_TIMEOUT = 1.5  # seconds to open the connection (SHOP_CONNECT_TIMEOUT)
DEFAULT_RETRIES = 2  # extra attempts for reads (SHOP_RETRIES)
DEFAULT_BACKOFF = 0.2  # seconds; doubled on each retry (SHOP_RETRY_BACKOFF)
# The desk's refusals of an agent (shop/agents.py), told apart from a wrong bearer token.
AGENT_REFUSALS = frozenset({"agent_unauthorized", "agent_login_failed", "agent_login_locked"})


# --------------------------------------------------------------------------- helpers
def idempotency_key(*parts: Any) -> str:
    """A stable key from the parts that make a write unique (conversation, action, input).

    Deterministic on purpose: if Rasa re-runs the same action for the same message, the shop
    sees the same key and does nothing twice.
    """
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:40]


def _swap(item_ids: List[str], new_item_ids: List[str], payment_method_id: str) -> Dict[str, Any]:
    """The body shared by item modification and exchange: old item -> new variant, by position."""
    return {"item_ids": list(item_ids), "new_item_ids": list(new_item_ids),
            "payment_method_id": payment_method_id}


def client_header(client_id: str) -> str:
    """``X-Client-Id`` as the shop accepts it (1-128 printable characters).

    An address fits as it is; anything longer or odd is sent as its SHA-256, so it still names
    one client and never makes the lookup a 422.
    """
    value = client_id.strip()
    if value and len(value) <= 128 and value.isprintable() and value.isascii():
        return value
    return "sha256:" + hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()


def _retry_after(response: requests.Response) -> int:
    """Seconds of a ``Retry-After`` header (at least 1; 1 when missing or not a number)."""
    try:
        return max(1, int(str(response.headers.get("Retry-After", "")).strip()))
    except ValueError:
        return 1


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        logger.warning("ignoring bad %s=%r", name, os.environ.get(name))
        return default


# --------------------------------------------------------------------------- client
class ShopClient:
    """Typed access to the shop backend; one instance per (URL, token, timeout) settings."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        retries: Optional[int] = None,
        backoff: Optional[float] = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("SHOP_URL") or DEFAULT_SHOP_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("SHOP_API_TOKEN", "")
        read = timeout if timeout is not None else _env_float("SHOP_TIMEOUT", DEFAULT_TIMEOUT)
        connect = (
            connect_timeout
            if connect_timeout is not None
            else _env_float("SHOP_CONNECT_TIMEOUT", min(DEFAULT_CONNECT_TIMEOUT, read))
        )
        self.timeout: Tuple[float, float] = (connect, read)
        n_retries = (
            retries if retries is not None else int(_env_float("SHOP_RETRIES", DEFAULT_RETRIES))
        )
        backoff_factor = (
            backoff if backoff is not None else _env_float("SHOP_RETRY_BACKOFF", DEFAULT_BACKOFF)
        )
        read_retry = Retry(
            total=n_retries,
            connect=n_retries,
            read=n_retries,
            status=n_retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=(500, 502, 503, 504),
            backoff_factor=backoff_factor,
            raise_on_status=False,  # we map the final 5xx ourselves
            respect_retry_after_header=False,  # never sleep longer than our budget
        )
        self._reads = self._session(read_retry)
        # no retries at all for writes: a timed-out POST may have happened already
        self._writes = self._session(Retry(total=0, connect=0, read=0, redirect=0, status=0,
                                           raise_on_status=False))

    @staticmethod
    def _session(retry: Retry) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def close(self) -> None:
        """Release pooled connections (tests and shutdown)."""
        self._reads.close()
        self._writes.close()

    # ------------------------------------------------------------------ transport
    def _headers(
        self, customer_id: Optional[str], idem_key: Optional[str] = None,
        client_id: Optional[str] = None,
    ) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if customer_id:
            headers["X-Customer-Id"] = customer_id
        if client_id:
            headers["X-Client-Id"] = client_header(client_id)
        if idem_key:
            headers["Idempotency-Key"] = idem_key
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        customer_id: Optional[str] = None,
        params: Optional[Dict[str, Any]] = None,
        body: Optional[Dict[str, Any]] = None,
        idem_key: Optional[str] = None,
        client_id: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Any:
        """One call; ``headers`` adds to the standard ones (the desk's agent session)."""
        session = self._reads if method == "GET" else self._writes
        if method != "GET" and not idem_key:
            idem_key = uuid.uuid4().hex
        url = self.base_url + path
        try:
            try:
                response = session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={**self._headers(customer_id, idem_key, client_id),
                             **(headers or {})},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:  # refused, timeout, retries used up
                logger.warning("shop %s %s failed: %s", method, path, exc)
                raise ShopUnavailable(f"shop unreachable: {exc.__class__.__name__}") from exc
            return self._parse(method, path, response)
        except ShopUnavailable as exc:
            if method != "GET":  # it may have happened: the exact write, to resend as it was
                exc.pending_write = {"method": method, "path": path, "body": body,
                                     "customer_id": customer_id, "idem_key": idem_key}
            raise

    def replay_write(self, write: Dict[str, Any]) -> Any:
        """Resend a write that got no answer (``ShopUnavailable.pending_write``) exactly: same
        path, body, customer and idempotency key, so the shop answers with its first result."""
        return self._request(str(write["method"]), str(write["path"]),
                             customer_id=write.get("customer_id"), body=write.get("body"),
                             idem_key=str(write["idem_key"]))

    @staticmethod
    def _error_details(response: requests.Response) -> Tuple[str, Optional[str]]:
        """The server's ``{"error": {"code", "message"}}`` (or FastAPI's ``detail``)."""
        try:
            payload = response.json()
        except ValueError:
            return (response.text or response.reason or "error")[:300], None
        if isinstance(payload, dict):
            err = payload.get("error")
            if isinstance(err, dict):
                return str(err.get("message") or err.get("code") or "error"), err.get("code")
            detail = payload.get("detail")
            if isinstance(detail, str):
                return detail, None
            if isinstance(detail, list) and detail:
                first = detail[0]
                if isinstance(first, dict):
                    return str(first.get("msg", first)), "validation_error"
        return str(payload)[:300], None

    @staticmethod
    def _risk_review(message: str, response: requests.Response) -> RiskReview:
        """The risk control's 409 with its decision and reasons (docs/risk.md)."""
        try:
            err = response.json().get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        reasons = [r for r in err.get("reasons") or [] if isinstance(r, dict)]
        score = err.get("score")
        return RiskReview(message, decision_id=str(err.get("decision_id") or ""),
                          score=score if isinstance(score, int) else None, reasons=reasons)

    def _parse(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status >= 500:
            logger.warning("shop %s %s -> %s", method, path, status)
            raise ShopUnavailable(f"shop error {status}", status=status)
        if status >= 400:
            message, code = self._error_details(response)
            if status == 404:
                raise NotFound(message, status, code)
            if status == 409 and code == "risk_review_required":
                raise self._risk_review(message, response)
            if status == 409:
                raise Conflict(message, status, code)
            if status in (400, 422):
                raise Invalid(message, status, code)
            if status == 429 and code == "identification_locked":
                raise IdentificationLocked(message, status, code, _retry_after(response))
            if code in AGENT_REFUSALS:  # the agent's login or session, not our token
                raise AgentRefused(message, status, code, _retry_after(response))
            if status in (401, 403):
                # a configuration problem (token), not something the shopper can fix
                logger.error("shop rejected our credentials on %s %s: %s", method, path, message)
                raise ShopUnavailable(f"shop auth failed: {message}", status, code)
            raise ShopError(message, status, code)
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            logger.warning("shop %s %s returned malformed JSON", method, path)
            raise ShopUnavailable("malformed JSON from shop", status=status) from exc

    def _get(self, path: str, **kwargs: Any) -> Any:
        return self._request("GET", path, **kwargs)

    def _post(self, path: str, **kwargs: Any) -> Any:
        return self._request("POST", path, **kwargs)

    @staticmethod
    def _order_path(order_id: str, suffix: str = "") -> str:
        canonical = normalize_order_id(order_id)
        if canonical is None:
            # don't send garbage; behave as the shop would for an unknown id
            raise NotFound(f"not an order id: {order_id!r}", 404, "not_found")
        return f"/orders/{quote(canonical, safe='')}{suffix}"

    @staticmethod
    def _record(parse: Callable[[Any], T], data: Any) -> T:
        """Parse an answer into its record; one that breaks the contract is the shop's fault."""
        try:
            return parse(data)
        except MalformedRecord as exc:
            logger.warning("shop answer breaks the contract: %s", exc)
            raise ShopUnavailable(f"malformed shop answer: {exc}") from exc

    # ------------------------------------------------------------------ reads
    def health(self) -> bool:
        """True when the shop and its database answer."""
        try:
            self._get("/health")
        except ShopError:
            return False
        return True

    def lookup_customer(
        self,
        *,
        email: Optional[str] = None,
        first_name: Optional[str] = None,
        last_name: Optional[str] = None,
        zip_code: Optional[str] = None,
        client_id: Optional[str] = None,
    ) -> str:
        """The user id for email + zip, or for first name + last name + zip.

        ``client_id`` (the shopper's client address) goes out as ``X-Client-Id``: the shop counts
        failures per client as well as per account. Raises ``NotFound`` (no such customer: the
        same for an unknown email and a wrong zip), ``IdentificationLocked`` (too many failures;
        ``retry_after`` seconds), ``Invalid`` without asking the shop when a fact is missing.
        """
        zip_value = (zip_code or "").strip()
        if email and email.strip() and zip_value:
            params = {"email": email.strip(), "zip": zip_value}
        elif first_name and first_name.strip() and last_name and last_name.strip() and zip_value:
            params = {
                "first_name": first_name.strip(),
                "last_name": last_name.strip(),
                "zip": zip_value,
            }
        else:
            raise Invalid("email + zip, or first name + last name + zip, is required",
                          code="lookup_parameters")
        data = self._get("/customers/lookup", params=params, client_id=client_id)
        user_id = data.get("user_id") if isinstance(data, dict) else None
        if not user_id:
            raise ShopUnavailable("lookup answer without user_id")
        return str(user_id)

    def get_customer(self, customer_id: str) -> Customer:
        """The shopper's profile (name, email, address, payment methods, order ids)."""
        path = f"/customers/{quote(customer_id, safe='')}"
        return self._record(Customer.parse, self._get(path, customer_id=customer_id))

    def get_order(self, order_id: str, customer_id: str) -> Order:
        """One order of this customer; NotFound if unknown or someone else's."""
        data = self._get(self._order_path(order_id), customer_id=customer_id)
        return self._record(Order.parse, data)

    def list_orders(self, customer_id: str) -> List[Order]:
        """Every order of the shopper (one GET each; customers have a handful)."""
        orders = []
        for order_id in self.get_customer(customer_id).order_ids:
            try:
                orders.append(self.get_order(order_id, customer_id))
            except NotFound:
                logger.warning("order %s listed in profile but not found", order_id)
        return orders

    def list_products(self) -> List[Product]:
        """The catalog, every product with its variants."""
        data = self._get("/products")
        if not isinstance(data, list):
            raise ShopUnavailable("unexpected /products payload")
        return [self._record(Product.parse, p) for p in data]

    def get_product(self, product_id: str) -> Product:
        """One product with all its variants."""
        path = f"/products/{quote(str(product_id), safe='')}"
        return self._record(Product.parse, self._get(path))

    def get_shipment(self, tracking_id: str, customer_id: str) -> Shipment:
        """Carrier, status and dated events of one tracking number of this customer's orders;
        NotFound if unknown or someone else's."""
        path = f"/shipments/{quote(str(tracking_id), safe='')}"
        return self._record(Shipment.parse, self._get(path, customer_id=customer_id))

    def get_handoff(self, ticket_id: str, customer_id: str) -> Dict[str, Any]:
        """A handoff ticket of this customer (tests and agents' tooling); NotFound otherwise
        (anonymous tickets included)."""
        return self._get(f"/handoffs/{quote(str(ticket_id), safe='')}", customer_id=customer_id)

    # ------------------------------------------------------------------ writes
    def create_handoff(
        self,
        summary: str,
        customer_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
        reason: Optional[str] = None,
        idem_key: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Open a human-agent ticket (``{"id", "status", "summary", ...}``).

        With ``customer_id`` the ticket names that customer and carries their X-Customer-Id.
        """
        body: Dict[str, Any] = {"summary": summary[:4000]}
        if reason:
            body["reason"] = reason[:500]
        if customer_id:
            body["user_id"] = customer_id
        if conversation_id:
            body["conversation_id"] = conversation_id[:200]
        data = self._post("/handoffs", customer_id=customer_id, body=body, idem_key=idem_key)
        if not isinstance(data, dict) or not data.get("id"):
            raise ShopUnavailable("unexpected /handoffs payload")
        return data

    def _order_write(self, order_id: str, action: str, customer_id: str, body: Dict[str, Any],
                     idem_key: Optional[str]) -> Order:
        """``POST /orders/{id}/{action}``: every order change, answered with the new order."""
        data = self._post(self._order_path(order_id, f"/{action}"), customer_id=customer_id,
                          body=body, idem_key=idem_key)
        return self._record(Order.parse, data)

    def cancel_order(
        self, order_id: str, customer_id: str, reason: str, idem_key: Optional[str] = None
    ) -> Order:
        """Cancel a pending order ("no longer needed" / "ordered by mistake")."""
        return self._order_write(order_id, "cancel", customer_id, {"reason": reason}, idem_key)

    def modify_order_address(self, order_id: str, customer_id: str, address: Dict[str, str],
                             idem_key: Optional[str] = None) -> Order:
        """New shipping address of a pending order."""
        return self._order_write(order_id, "address", customer_id, dict(address), idem_key)

    def modify_order_payment(self, order_id: str, customer_id: str, payment_method_id: str,
                             idem_key: Optional[str] = None) -> Order:
        """Switch the single payment of a pending order to another method."""
        body = {"payment_method_id": payment_method_id}
        return self._order_write(order_id, "payment", customer_id, body, idem_key)

    def modify_order_items(self, order_id: str, customer_id: str, item_ids: List[str],
                           new_item_ids: List[str], payment_method_id: str,
                           idem_key: Optional[str] = None) -> Order:
        """Swap items of a pending order for other variants (once per order)."""
        return self._order_write(order_id, "items", customer_id,
                                 _swap(item_ids, new_item_ids, payment_method_id), idem_key)

    def exchange_order(self, order_id: str, customer_id: str, item_ids: List[str],
                       new_item_ids: List[str], payment_method_id: str,
                       idem_key: Optional[str] = None) -> Order:
        """Request an exchange of delivered items for other variants."""
        return self._order_write(order_id, "exchange", customer_id,
                                 _swap(item_ids, new_item_ids, payment_method_id), idem_key)

    def return_order(self, order_id: str, customer_id: str, item_ids: List[str],
                     payment_method_id: str, reason: Optional[str] = None,
                     idem_key: Optional[str] = None) -> Order:
        """Request a return of delivered items."""
        body: Dict[str, Any] = {"item_ids": list(item_ids), "payment_method_id": payment_method_id}
        if reason:
            body["reason"] = reason
        return self._order_write(order_id, "return", customer_id, body, idem_key)

    def create_rating(
        self,
        conversation_id: str,
        rating: int,
        comment: Optional[str] = None,
        customer_id: Optional[str] = None,
        idem_key: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Store a 1-5 satisfaction rating; Conflict if this conversation was already rated."""
        body: Dict[str, Any] = {"conversation_id": conversation_id[:200], "rating": int(rating)}
        if comment:
            body["comment"] = comment[:1000]
        if customer_id:
            body["customer_id"] = customer_id
        key = idem_key or idempotency_key("rating", conversation_id, rating, comment or "")
        # a rating naming a customer carries that customer's X-Customer-Id (the shop insists)
        data = self._post("/ratings", customer_id=customer_id, body=body, idem_key=key)
        if not isinstance(data, dict) or "rating" not in data:
            raise ShopUnavailable("unexpected /ratings payload")
        return data

    def list_ratings(self, limit: int = 50) -> Dict[str, Any]:
        """Newest ratings and the summary (``count``, ``average``, ``distribution`` 1-5)."""
        data = self._get("/ratings", params={"limit": int(limit)})
        if not isinstance(data, dict) or "summary" not in data:
            raise ShopUnavailable("unexpected /ratings payload")
        return data

    def update_default_address(
        self, customer_id: str, address: Dict[str, str], idem_key: Optional[str] = None
    ) -> Customer:
        """New default address of the customer (existing orders keep theirs)."""
        data = self._request("PUT", f"/customers/{quote(customer_id, safe='')}/address",
                             customer_id=customer_id, body=dict(address), idem_key=idem_key)
        return self._record(Customer.parse, data)


# --------------------------------------------------------------------------- shared instance
_clients: Dict[Tuple[str, ...], ShopClient] = {}
_lock = threading.Lock()


def get_client() -> ShopClient:
    """The client for the current environment settings (re-read on each call, cached).

    Re-reading lets tests and operators point ``SHOP_URL`` elsewhere without restarts.
    """
    key = tuple(
        os.environ.get(name, "")
        for name in (
            "SHOP_URL",
            "SHOP_API_TOKEN",
            "SHOP_TIMEOUT",
            "SHOP_CONNECT_TIMEOUT",
            "SHOP_RETRIES",
            "SHOP_RETRY_BACKOFF",
        )
    )
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ShopClient()
        return client
