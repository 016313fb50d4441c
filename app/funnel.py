"""The shop's funnel and what a page view is: one definition for the producer's ground
truth (app/producer/manifest.py) and for ClickHouse (app/sql/008_sessions_and_funnel.sql,
whose SQL a test checks against these functions).

A session reaches a step when it has an event at that step or a later one: a visitor who
lands on a product page has passed home and category in the funnel's sense, so the counts
never grow down the funnel and step-to-step conversion stays between 0 and 1.
"""

from __future__ import annotations

FUNNEL_STEPS = ("home", "category", "product", "cart", "checkout", "purchase")
# Events that happen on a page already loaded; every other event is a page view.
IN_PAGE_EVENT_TYPES = ("click", "add_to_cart")


def funnel_step(page_url: str, event_type: str | None) -> int:
    """1 (home) to 6 (purchase), or 0 for a page outside the funnel (search, help...)."""
    if event_type == "purchase":
        return 6
    if event_type == "checkout" or page_url == "/checkout":
        return 5
    if event_type == "add_to_cart" or page_url == "/cart":
        return 4
    if page_url.startswith("/products/"):
        return 3
    if page_url.startswith("/category/"):
        return 2
    if page_url == "/":
        return 1
    return 0


def is_page_view(event_type: str | None) -> bool:
    return event_type not in IN_PAGE_EVENT_TYPES
