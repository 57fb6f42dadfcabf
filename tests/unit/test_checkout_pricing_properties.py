"""The one pricing engine's invariants (CHK-11, ORD-2, PRM-1; issue 10), for any orders and coupons: every line's
discount allocated exactly (the lines sum to the order), no amount negative, no discount above its base, the
shipping discount never above the shipping, tax on shipping after its discount, and the checkout's figures the
sums of its orders'."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from patungan.checkout.pricing import OrderDraft, PricedLine, discount_of, price_orders, tax_of
from patungan.checkout.promotions import Promotion
from patungan.checkout.quote import OrderQuote

PPN = 1100
SELLERS = ["sel_a", "sel_b", "sel_c"]


def promotion(code: str, kind: str, target: str, value: int, **terms) -> Promotion:
    return Promotion(
        id=f"promo_{code}", code=code, kind=kind, target=target, value=value, created_at="2026-11-30T00:00:00Z", **terms
    )


lines = st.builds(
    PricedLine,
    product_id=st.sampled_from(["p1", "p2", "p3", "p4"]),
    variant_id=st.none(),
    name=st.just("kopi"),
    quantity=st.integers(1, 1000),
    unit_price=st.integers(1, 10_000_000),
)
drafts = st.lists(
    st.builds(
        OrderDraft,
        seller_id=st.sampled_from(SELLERS),
        warehouse_id=st.just("wh_jkt1"),
        lines=st.lists(lines, min_size=1, max_size=6).map(tuple),
        shipping=st.integers(0, 500_000),
    ),
    min_size=1,
    max_size=3,
)
percent = st.builds(
    promotion,
    code=st.sampled_from(["P1", "P2"]),
    kind=st.just("percent"),
    target=st.sampled_from(["items", "shipping"]),
    value=st.integers(1, 10_000),
    min_spend=st.integers(0, 10_000_000),
    seller_id=st.sampled_from([None, *SELLERS]),
)
fixed = st.builds(
    promotion,
    code=st.sampled_from(["F1", "F2"]),
    kind=st.just("fixed"),
    target=st.sampled_from(["items", "shipping"]),
    value=st.integers(1, 10**12),
    min_spend=st.integers(0, 10_000_000),
    seller_id=st.sampled_from([None, *SELLERS]),
)
coupons = st.lists(st.one_of(percent, fixed), max_size=4)


@settings(max_examples=300, deadline=None)
@given(drafts=drafts, promotions=coupons, tax=st.sampled_from([0, PPN, 1000, 10_000]))
def test_every_order_adds_up_and_no_figure_goes_negative_or_above_its_base(drafts, promotions, tax):
    """ORD-2, PRM-1: whatever the coupons, the lines sum to the order and each discount stays within its base."""
    priced = price_orders(drafts, promotions, tax)

    assert len(priced.orders) == len(drafts)
    for draft, order in zip(drafts, priced.orders, strict=True):
        OrderQuote.model_validate(order.model_dump())  # its own sums checked again
        assert order.subtotal == sum(li.quantity * li.unit_price for li in draft.lines)
        assert sum(line.discount for line in order.lines) == order.discount
        assert sum(line.amount for line in order.lines) == order.subtotal - order.discount
        for line in order.lines:
            assert 0 <= line.discount <= line.quantity * line.unit_price
            assert line.amount >= 0
        assert 0 <= order.shipping_discount <= order.shipping == draft.shipping
        assert order.tax == tax_of(order.subtotal - order.discount + order.shipping - order.shipping_discount, tax)
        assert order.total == order.subtotal - order.discount + order.shipping - order.shipping_discount + order.tax
        assert order.total >= 0
    given_off = sum(o.discount + o.shipping_discount for o in priced.orders)
    assert given_off == sum(coupon.discount for coupon in priced.coupons)


@settings(max_examples=200, deadline=None)
@given(drafts=drafts, promotion=st.one_of(percent, fixed))
def test_a_coupons_discount_is_what_it_promises_on_the_orders_in_its_scope_only(drafts, promotion):
    """PRM-1: percent (basis points, rounded down) or fixed, capped at its base; other sellers' orders untouched;
    below the minimum spend, or with nothing to take off, nothing, with a warning, and not applied."""
    priced = price_orders(drafts, [promotion], PPN)

    in_scope = [promotion.seller_id in (None, d.seller_id) for d in drafts]
    spend = sum(li.quantity * li.unit_price for d, s in zip(drafts, in_scope, strict=True) if s for li in d.lines)
    if promotion.target == "items":
        base = spend
        given_off = [o.discount for o in priced.orders]
    else:
        base = sum(d.shipping for d, s in zip(drafts, in_scope, strict=True) if s)
        given_off = [o.shipping_discount for o in priced.orders]
    applies = any(in_scope) and spend >= promotion.min_spend and discount_of(promotion, base) > 0
    assert sum(given_off) == (discount_of(promotion, base) if applies else 0)
    assert all(off == 0 for off, s in zip(given_off, in_scope, strict=True) if not s)
    assert bool(priced.warnings) == (not applies)
    assert [c.discount for c in priced.coupons] == ([sum(given_off)] if applies else [])  # PRM-2: none for nothing
    if applies and promotion.kind == "percent":
        assert sum(given_off) == base * promotion.value // 10_000


def test_shipping_is_taxed_after_its_discount_ppn_11_percent():
    """CHK-11: goods 100 000, shipping 20 000 less a 50 % shipping coupon: tax 11 % of 110 000."""
    draft = OrderDraft("sel_a", "wh", (PricedLine("p1", None, "kopi", 2, 50_000),), 20_000)

    [order] = price_orders([draft], [promotion("ONGKIR", "percent", "shipping", 5000)], PPN).orders

    assert (order.shipping_discount, order.tax, order.total) == (10_000, 12_100, 122_100)


def test_a_fixed_discount_is_split_over_the_lines_by_largest_remainder_and_sums_exactly():
    """ORD-2: 100 off three equal lines is 34 + 33 + 33, never 33 x 3 = 99."""
    draft = OrderDraft("sel_a", "wh", tuple(PricedLine(f"p{n}", None, "kopi", 1, 1_000) for n in range(3)), 0)

    [order] = price_orders([draft], [promotion("SERATUS", "fixed", "items", 100)], 0).orders

    assert [line.discount for line in order.lines] == [34, 33, 33]
    assert sum(line.amount for line in order.lines) == 2_900


def test_a_fixed_shipping_discount_larger_than_the_shipping_takes_only_the_shipping():
    """PRM-1: shipping discount <= shipping cost."""
    draft = OrderDraft("sel_a", "wh", (PricedLine("p1", None, "kopi", 1, 30_000),), 9_000)

    priced = price_orders([draft], [promotion("GRATIS", "fixed", "shipping", 50_000)], PPN)

    assert priced.orders[0].shipping_discount == 9_000
    assert priced.coupons[0].discount == 9_000


def test_stacked_coupons_never_take_more_than_the_goods():
    draft = OrderDraft("sel_a", "wh", (PricedLine("p1", None, "kopi", 1, 10_000),), 0)

    priced = price_orders(
        [draft], [promotion("SETENGAH", "percent", "items", 5000), promotion("BESAR", "fixed", "items", 99_999)], 0
    )

    assert [c.discount for c in priced.coupons] == [5_000, 5_000]
    assert priced.orders[0].total == 0


def test_a_coupon_that_takes_nothing_off_is_not_applied_so_its_use_is_not_counted():
    """PRM-2 (issue 10 review, defect 1): confirm redeems the coupons the engine applied. A shipping coupon on free
    shipping, or a coupon stacked after one that already took all, gives nothing: it must not be applied, or the
    buyer spends a limited use (per customer, or the last of its total) on nothing."""
    free_shipping = OrderDraft("sel_a", "wh", (PricedLine("p1", None, "kopi", 1, 10_000),), 0)

    priced = price_orders(
        [free_shipping],
        [
            promotion("ONGKIR", "fixed", "shipping", 5_000, per_customer_limit=1),
            promotion("GRATIS", "percent", "items", 10_000),
            promotion("LAGI", "fixed", "items", 1_000, usage_limit=1),
        ],
        PPN,
    )

    assert [(c.code, c.discount) for c in priced.coupons] == [("GRATIS", 10_000)]
    assert len(priced.warnings) == 2
    assert all("takes nothing off" in warning for warning in priced.warnings)
