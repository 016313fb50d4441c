"""The traffic model: visitors in sessions that walk the shop's funnel, plus bots.

Humans land on a page, browse categories and products, some add to cart, fewer check
out, fewer still buy; each step can also be where they leave. Bots click BOT_SPEED times
faster and come in two kinds: crawlers announce themselves with a bot user agent and
sweep every page; scrapers hide behind a browser's agent and sweep product pages, never
adding to cart. Every session is labelled (``labels``), the ground truth bot detection
is measured against. Faker fills the pools of users, agents, countries and referrers once
at start-up; the hot path only draws from those pools with one seeded ``random.Random``,
so the same seed gives the same traffic, in the same order. Identifiers (event_id,
session_id) are also mixed with a per-run nonce: a producer restarted with the same seed
must not resend the event_ids of its last run, which the job would drop as duplicates.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from faker import Faker

from app.contract import SCHEMA_VERSION, format_event_time
from app.producer import catalog as pages

# Where a human goes after each kind of page: (next stage, probability); "exit" ends it.
FUNNEL: dict[str, tuple[tuple[str, float], ...]] = {
    "home": (
        ("category", 0.55),
        ("search", 0.15),
        ("product", 0.10),
        ("static", 0.05),
        ("exit", 0.15),
    ),
    "search": (("product", 0.60), ("category", 0.10), ("exit", 0.30)),
    "category": (("product", 0.65), ("category", 0.10), ("home", 0.05), ("exit", 0.20)),
    "product": (("cart", 0.20), ("product", 0.30), ("category", 0.15), ("exit", 0.35)),
    "cart": (("checkout", 0.55), ("product", 0.15), ("exit", 0.30)),
    "checkout": (("confirmation", 0.60), ("cart", 0.10), ("exit", 0.30)),
    "confirmation": (("home", 0.10), ("exit", 0.90)),
    "static": (("home", 0.30), ("exit", 0.70)),
}
LANDING: tuple[tuple[str, float], ...] = (
    ("home", 0.45),
    ("category", 0.20),
    ("product", 0.25),
    ("search", 0.10),
)
# The event a stage's page sends, where it is not a plain page_view.
STAGE_EVENT_TYPES = {"checkout": "checkout", "confirmation": "purchase"}
# Chance that a human also clicks something on a page before moving on.
IN_PAGE_CLICK = 0.5
# A bot session is picked this many times more often than a human one: bots click fast.
BOT_SPEED = 5
BOT_SESSION_LENGTH = (50, 200)
# Session labels: the ground truth (the manifest's sessions carry them).
HUMAN, CRAWLER, SCRAPER = "human", "crawler", "scraper"

BOT_USER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0",
    "python-requests/2.32.3",
    "curl/8.5.0",
)
DEVICES = (("desktop", 0.55), ("mobile", 0.38), ("tablet", 0.07))
# uuid.UUID(int=..., version=4) without the object: clear the version and variant bits,
# then set version 4 and the RFC 4122 variant.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (4 << 76) | (0x8000 << 48)
SEARCH_REFERRERS = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")


@dataclass(frozen=True)
class Visitor:
    user_id: str
    user_agent: str
    device: str
    country: str
    referrer: str | None
    label: str  # HUMAN, CRAWLER or SCRAPER
    # A field, not a property: the hot path reads it for every event.
    is_bot: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_bot", self.label != HUMAN)


@dataclass
class Session:
    session_id: str
    visitor: Visitor
    stage: str = ""
    page: str = ""
    steps_left: int = 0  # bots only: how many more pages they fetch
    pending: list[tuple[str, str]] = field(default_factory=list)  # (page, event_type) queued


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    point = rng.random()
    for value, weight in options:
        point -= weight
        if point < 0:
            return value
    return options[-1][0]


@dataclass(frozen=True)
class Pools:
    """Built once with Faker; events only draw from these."""

    user_ids: tuple[str, ...]
    user_agents: tuple[str, ...]
    countries: tuple[str, ...]
    referrers: tuple[str, ...]

    @classmethod
    def build(cls, seed: int, users: int = 5000) -> Pools:
        fake = Faker()
        fake.seed_instance(seed)
        return cls(
            user_ids=tuple(
                f"u-{fake.unique.random_number(digits=8, fix_len=True)}" for _ in range(users)
            ),
            user_agents=tuple(fake.user_agent() for _ in range(300)),
            # A few countries dominate, as for a shop with a home market.
            countries=("US",) * 40
            + ("GB",) * 10
            + ("DE",) * 10
            + ("FR",) * 6
            + tuple(fake.country_code() for _ in range(34)),
            referrers=SEARCH_REFERRERS * 10 + tuple(fake.url() for _ in range(30)),
        )


class TrafficModel:
    """An endless, reproducible stream of click events."""

    def __init__(
        self,
        seed: int,
        bot_share: float = 0.05,
        concurrent_sessions: int = 64,
        catalog: pages.Catalog | None = None,
        pools: Pools | None = None,
        run_nonce: int = 0,
        record_labels: bool = False,
    ) -> None:
        if not 0 <= run_nonce < 1 << 128:
            raise ValueError("run_nonce must fit in 128 bits, as a UUID does")
        self.rng = random.Random(seed)
        self.run_nonce = run_nonce
        self.bot_share = bot_share
        self.catalog = catalog or pages.build_catalog(seed)
        self.pools = pools or Pools.build(seed)
        # session_id -> label, for the manifest; kept only when asked (it grows per session).
        self.labels: dict[str, str] | None = {} if record_labels else None
        self.sessions = [self._new_session() for _ in range(concurrent_sessions)]
        self._weights = [BOT_SPEED if s.visitor.is_bot else 1 for s in self.sessions]
        self._cumulative_weights = list(itertools.accumulate(self._weights))

    # -- identities -------------------------------------------------------------------

    def _uuid(self) -> str:
        """What str(uuid.UUID(int=bits ^ nonce, version=4)) gives, at a third of the cost."""
        bits = (self.rng.getrandbits(128) ^ self.run_nonce) & _UUID4_CLEAR | _UUID4_SET
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _new_session(self) -> Session:
        session = self._draw_session()
        if self.labels is not None:
            self.labels[session.session_id] = session.visitor.label
        return session

    def _draw_session(self) -> Session:
        rng = self.rng
        is_bot = rng.random() < self.bot_share
        if is_bot and rng.random() < 0.5:
            visitor = Visitor(
                user_id=f"bot-{rng.randrange(10_000):04d}",
                user_agent=rng.choice(BOT_USER_AGENTS),
                device="desktop",
                country=rng.choice(("US", "DE", "SG", "IE")),
                referrer=None,
                label=CRAWLER,
            )
            return Session(self._uuid(), visitor, steps_left=rng.randint(*BOT_SESSION_LENGTH))
        if is_bot:
            # A browser's agent and an ordinary-looking user id: only behaviour tells.
            visitor = Visitor(
                user_id=f"u-{rng.randrange(10**8):08d}",
                user_agent=rng.choice(self.pools.user_agents),
                device="desktop",
                country=rng.choice(self.pools.countries),
                referrer=None,
                label=SCRAPER,
            )
            return Session(self._uuid(), visitor, steps_left=rng.randint(*BOT_SESSION_LENGTH))
        visitor = Visitor(
            user_id=rng.choice(self.pools.user_ids),
            user_agent=rng.choice(self.pools.user_agents),
            device=_weighted(rng, DEVICES),
            country=rng.choice(self.pools.countries),
            referrer=rng.choice(self.pools.referrers) if rng.random() < 0.6 else None,
            label=HUMAN,
        )
        return Session(self._uuid(), visitor)

    # -- navigation -------------------------------------------------------------------

    def _page_for(self, stage: str, session: Session) -> str:
        rng, cat = self.rng, self.catalog
        if stage == "home":
            return pages.HOME
        if stage == "search":
            return pages.SEARCH
        if stage == "category":
            return cat.pick_category(rng)
        if stage == "product":
            # From a category page, stay in it half the time; otherwise the popular ones.
            if session.stage == "category" and rng.random() < 0.5:
                in_category = cat.products_in(session.page)
                if in_category:
                    return rng.choice(in_category)
            return cat.pick_product(rng)
        if stage == "cart":
            return pages.CART
        if stage == "checkout":
            return pages.CHECKOUT
        if stage == "confirmation":
            return pages.CONFIRMATION
        return rng.choice(pages.STATIC_PAGES)

    def _advance_human(self, session: Session) -> bool:
        """Queue the next page's events; False when the visitor leaves."""
        rng = self.rng
        stage = _weighted(rng, FUNNEL[session.stage]) if session.stage else _weighted(rng, LANDING)
        if stage == "exit":
            return False
        if stage == "cart" and session.stage == "product":
            # Adding to cart happens on the product page, then the cart opens.
            session.pending.append((session.page, "add_to_cart"))
        page = self._page_for(stage, session)
        event_type = STAGE_EVENT_TYPES.get(stage, "page_view")
        session.pending.append((page, event_type))
        if event_type == "page_view" and rng.random() < IN_PAGE_CLICK:
            session.pending.append((page, "click"))
        session.stage, session.page = stage, page
        return True

    def _advance_bot(self, session: Session) -> bool:
        if session.steps_left <= 0:
            return False
        session.steps_left -= 1
        # Bots sweep evenly rather than following popularity: crawlers every page,
        # scrapers the product pages.
        pages_swept = (
            self.catalog.products if session.visitor.label == SCRAPER else self.catalog.all_pages
        )
        page = self.rng.choice(pages_swept)
        session.pending.append((page, "page_view"))
        session.stage, session.page = "crawl", page
        return True

    def _pick_session(self) -> int:
        # rng.choices(range(n), weights=...)[0] draws exactly this: one random() scaled by
        # the float total, bisected into the cumulative weights. The weights change only
        # when a session is replaced by one of the other kind, so they are kept, not
        # rebuilt per event; the same seed picks the same sessions as with choices().
        cumulative = self._cumulative_weights
        point = self.rng.random() * (cumulative[-1] + 0.0)
        return bisect.bisect_right(cumulative, point, 0, len(cumulative) - 1)

    def _replace_session(self, index: int) -> Session:
        was_bot = self.sessions[index].visitor.is_bot
        session = self.sessions[index] = self._new_session()
        if session.visitor.is_bot != was_bot:
            # Sums in C over a list of ints: with thousands of sessions, rebuilding them
            # from the sessions' visitors cost the producer a fifth of its time.
            self._weights[index] = BOT_SPEED if session.visitor.is_bot else 1
            self._cumulative_weights = list(itertools.accumulate(self._weights))
        return session

    def next_event(self, now: datetime) -> dict[str, Any]:
        """The next event, stamped with ``now`` as its event time."""
        index = self._pick_session()
        session = self.sessions[index]
        while not session.pending:
            advance = self._advance_bot if session.visitor.is_bot else self._advance_human
            if not advance(session):
                session = self._replace_session(index)
        page, event_type = session.pending.pop(0)
        visitor = session.visitor
        return {
            "event_id": self._uuid(),
            "schema_version": SCHEMA_VERSION,
            "event_time": format_event_time(now),
            "user_id": visitor.user_id,
            "session_id": session.session_id,
            "page_url": page,
            "event_type": event_type,
            "referrer": visitor.referrer,
            "user_agent": visitor.user_agent,
            "device": visitor.device,
            "country": visitor.country,
        }
