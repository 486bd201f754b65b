"""The catalog (no customer scope: products are public to every caller with the token)."""

from __future__ import annotations

from fastapi import APIRouter

from shop import catalog
from shop.deps import ProductId, StoreDep
from shop.routes.common import READ
from shop.schemas import ProductOut

router = APIRouter(prefix="/products", tags=["catalog"])


@router.get("", **READ)
async def products(store: StoreDep) -> list[ProductOut]:
    """The whole catalog: every product with its variants, availability and prices."""
    return await store.query(catalog.list_products)


@router.get("/{product_id}", **READ)
async def product(product_id: ProductId, store: StoreDep) -> ProductOut:
    return await store.query(catalog.get_product, product_id)
