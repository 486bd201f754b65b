"""The catalog: products with their variants, availability and prices, in the seed's shape."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.db import Product, Variant, to_dollars
from shop.errors import not_found
from shop.schemas import ProductOut


def product_view(product: Product, variants: Iterable[Variant]) -> ProductOut:
    return ProductOut.model_validate({
        "name": product.name,
        "product_id": product.product_id,
        "variants": {
            v.item_id: {
                "item_id": v.item_id,
                "options": v.options,
                "available": v.available,
                "price": to_dollars(v.price_cents),
            }
            for v in variants
        },
    })


def list_products(session: Session) -> list[ProductOut]:
    """Two queries for the whole catalog, not one per product."""
    products = session.scalars(select(Product).order_by(Product.position)).all()
    variants = session.scalars(select(Variant).order_by(Variant.product_id, Variant.position)).all()
    by_product: dict[str, list[Variant]] = {}
    for v in variants:
        by_product.setdefault(v.product_id, []).append(v)
    return [product_view(p, by_product.get(p.product_id, [])) for p in products]


def get_product(session: Session, product_id: str) -> ProductOut:
    product = session.get(Product, product_id)
    if product is None:
        raise not_found("Product")
    variants = session.scalars(
        select(Variant).where(Variant.product_id == product_id).order_by(Variant.position)
    ).all()
    return product_view(product, variants)
