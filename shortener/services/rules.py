"""Redirect rules and A/B splits: where a link sends this visitor.

A link may have ``rules`` (an ordered list of ``{"conditions": [...], "target": URL}``) and
``variants`` (2 to 10 ``{"target": URL, "weight": 1..100}``, weights summing to 100). The first
rule whose conditions all hold decides; otherwise a variant is chosen (weighted random choice,
kept for ``VARIANT_COOKIE_DAYS`` by a cookie scoped to the short link's path); otherwise the
link's ``target``. Conditions are pure functions of a ``Visitor`` (headers, address, query,
time, country), worked out lazily: a rule on the query string never parses the User-Agent.

Rules and variants are stored as JSON text on the link and compiled once per lookup (the link
cache keeps the compiled form), so a link without them pays nothing: it stays on the fast path
(fast_redirect.py); a link with them is handed to the view, like a link with a window or a cap.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

import ua_parser

MAX_RULES = 50
MAX_CONDITIONS = 20
MIN_VARIANTS, MAX_VARIANTS = 2, 10
MIN_WEIGHT, MAX_WEIGHT, TOTAL_WEIGHT = 1, 100, 100
VARIANT_COOKIE = "shortener_variant"
VARIANT_COOKIE_DAYS = 30
VARIANT_COOKIE_MAX_AGE = VARIANT_COOKIE_DAYS * 24 * 3600

DEVICES = ("mobile", "tablet", "desktop", "ios", "android")
CONDITION_TYPES = (
    "device", "os", "browser", "language", "query", "country", "ip", "before", "after",
)  # fmt: skip
FAMILY_MAX_LENGTH = 64
QUERY_NAME_MAX_LENGTH = 256
QUERY_VALUE_MAX_LENGTH = 1024


# -- the visitor --------------------------------------------------------------------------
class Visitor:
    """What conditions look at, each part worked out on first use."""

    __slots__ = ("user_agent", "accept_language", "query_string", "remote_addr", "now",
                 "_country_of", "_cache")  # fmt: skip

    def __init__(
        self,
        *,
        user_agent: str | None = None,
        accept_language: str | None = None,
        query_string: str = "",
        remote_addr: str | None = None,
        now: datetime | None = None,
        country_of: Callable[[str | None], str | None] | None = None,
    ) -> None:
        self.user_agent = user_agent or ""
        self.accept_language = accept_language or ""
        self.query_string = query_string or ""
        self.remote_addr = remote_addr
        self.now = now or datetime.now(UTC)
        self._country_of = country_of
        self._cache: dict[str, object] = {}

    def _get(self, key: str, compute: Callable[[], object]):
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    @property
    def agent(self) -> tuple[str, str, frozenset[str]]:
        """(browser family, OS family, device kinds), lowercase."""
        return self._get("agent", lambda: describe_agent(self.user_agent))

    @property
    def languages(self) -> tuple[tuple[str, float], ...]:
        return self._get("languages", lambda: parse_accept_language(self.accept_language))

    @property
    def query(self) -> dict[str, list[str]]:
        return self._get("query", lambda: parse_qs(self.query_string, keep_blank_values=True))

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        return self._get("address", lambda: parse_address(self.remote_addr))

    @property
    def country(self) -> str | None:
        if self._country_of is None:
            return None
        return self._get("country", lambda: self._country_of(self.remote_addr))


@functools.lru_cache(maxsize=8192)
def describe_agent(user_agent: str) -> tuple[str, str, frozenset[str]]:
    """(browser family, OS family, device kinds) of a User-Agent, lowercase; kinds are some of
    mobile, tablet, desktop (exactly one of these three, or none for a bot or an unknown
    agent), ios and android."""
    if not user_agent:
        return "", "", frozenset()
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family.lower() if result.user_agent else ""
    os_family = result.os.family.lower() if result.os else ""
    device = result.device.family if result.device else ""
    kinds: set[str] = set()
    if device == "Spider":
        return browser, os_family, frozenset()
    lowered = user_agent.lower()
    if os_family in ("ios", "ipados") or device in ("iPhone", "iPad", "iPod"):
        kinds.add("ios")
        kinds.add("tablet" if device == "iPad" or "ipad" in lowered else "mobile")
    elif os_family == "android":
        kinds.add("android")
        kinds.add("mobile" if "mobile" in lowered else "tablet")
    elif "tablet" in lowered:
        kinds.add("tablet")
    elif "mobile" in lowered or "phone" in lowered:
        kinds.add("mobile")
    elif os_family and os_family != "other":
        kinds.add("desktop")
    return browser, os_family, frozenset(kinds)


def parse_accept_language(header: str) -> tuple[tuple[str, float], ...]:
    """``Accept-Language`` as (language range lowercase, q) pairs, in the order sent; an entry
    with a malformed q counts as q=0 (not acceptable), ``q`` above 1 as 1."""
    entries = []
    for part in header.split(",")[:50]:
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        entries.append((tag, quality))
    return tuple(entries)


def accepts_language(languages: Sequence[tuple[str, float]], wanted: str) -> bool:
    """Whether a visitor sending ``languages`` accepts ``wanted``: a language it lists with
    q > 0 is ``wanted`` or a subtag of it ("de" is met by de-AT; "de-AT" is not met by de).
    q=0 means not acceptable; "*" meets no rule (it names no language)."""
    wanted = wanted.lower()
    prefix = wanted + "-"
    return any(
        quality > 0 and (tag == wanted or tag.startswith(prefix)) for tag, quality in languages
    )


def parse_address(remote_addr: str | None):
    if not remote_addr:
        return None
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# -- conditions ---------------------------------------------------------------------------
Matcher = Callable[[Visitor], bool]


def compile_condition(condition: dict) -> Matcher:
    """A checked condition (as the schema stores it) as a function of a Visitor."""
    kind, value = condition["type"], condition.get("value")
    if kind == "device":
        return lambda visitor: value in visitor.agent[2]
    if kind == "os":
        family = value.lower()
        return lambda visitor: visitor.agent[1] == family
    if kind == "browser":
        family = value.lower()
        return lambda visitor: visitor.agent[0] == family
    if kind == "language":
        return lambda visitor: accepts_language(visitor.languages, value)
    if kind == "query":
        name = condition["name"]
        if value is None:
            return lambda visitor: name in visitor.query
        return lambda visitor: value in visitor.query.get(name, ())
    if kind == "country":
        country = value.upper()
        return lambda visitor: visitor.country == country
    if kind == "ip":
        network = ipaddress.ip_network(value, strict=False)
        return lambda visitor: (
            (address := visitor.address) is not None
            and address.version == network.version
            and address in network
        )
    if kind in ("before", "after"):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        if kind == "before":
            return lambda visitor: visitor.now < moment
        return lambda visitor: visitor.now >= moment
    raise ValueError(f"unknown condition type {kind!r}")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    target: str
    matchers: tuple[Matcher, ...]

    def holds(self, visitor: Visitor) -> bool:
        return all(matcher(visitor) for matcher in self.matchers)


@dataclass(frozen=True, slots=True)
class Routing:
    """A link's rules and variants, compiled (kept by the link cache with the link)."""

    rules: tuple[CompiledRule, ...] = ()
    targets: tuple[str, ...] = ()  # of the variants
    cumulative: tuple[int, ...] = ()  # running sums of the variants' weights
    fingerprint: str = ""  # of the variants: a cookie from other variants is ignored
    uses_country: bool = field(default=False)

    def first_rule(self, visitor: Visitor) -> int | None:
        for index, rule in enumerate(self.rules):
            if rule.holds(visitor):
                return index
        return None

    def choose_variant(self, rng: random.Random | None = None) -> int:
        return choose(self.cumulative, rng)

    def kept_variant(self, cookie: str | None) -> int | None:
        """The variant a visitor's cookie names, if it is one of these variants."""
        if not cookie or not self.targets:
            return None
        index, _, fingerprint = cookie.partition(".")
        if fingerprint != self.fingerprint or not index.isdigit():
            return None
        number = int(index)
        return number if number < len(self.targets) else None

    def cookie_value(self, index: int) -> str:
        return f"{index}.{self.fingerprint}"


def choose(cumulative: Sequence[int], rng: random.Random | None = None) -> int:
    """Weighted random choice: the index whose weight range holds a uniform draw."""
    draw = (rng or _random).randrange(cumulative[-1])
    for index, upper in enumerate(cumulative):
        if draw < upper:
            return index
    return len(cumulative) - 1  # not reached


_random = random.SystemRandom()


def compile_routing(rules: list[dict] | None, variants: list[dict] | None) -> Routing | None:
    """Rules and variants as stored (lists of dicts), compiled; None when there are none."""
    if not rules and not variants:
        return None
    compiled = tuple(
        CompiledRule(rule["target"], tuple(compile_condition(c) for c in rule["conditions"]))
        for rule in rules or ()
    )
    targets, cumulative, running = [], [], 0
    for variant in variants or ():
        running += variant["weight"]
        targets.append(variant["target"])
        cumulative.append(running)
    fingerprint = ""
    if variants:
        text = json.dumps(
            [[v["target"], v["weight"]] for v in variants], separators=(",", ":")
        ).encode()
        fingerprint = hashlib.sha256(text).hexdigest()[:12]
    return Routing(
        rules=compiled,
        targets=tuple(targets),
        cumulative=tuple(cumulative),
        fingerprint=fingerprint,
        uses_country=any(c["type"] == "country" for r in rules or () for c in r["conditions"]),
    )


def dump_json(value: list[dict] | None) -> str | None:
    """Rules or variants as stored: compact JSON, or NULL for none."""
    return None if not value else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(text: str | None) -> list[dict] | None:
    return None if text is None else json.loads(text)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a visitor goes and why: rule index, variant index (and the cookie to set)."""

    target: str
    rule: int | None = None
    variant: int | None = None
    set_cookie: str | None = None  # the cookie value to send, when newly assigned


def decide(
    routing: Routing,
    default_target: str,
    visitor: Visitor,
    cookie: str | None,
    rng: random.Random | None = None,
) -> Decision:
    """Rules first, then the variant (kept from the cookie or drawn), else the target."""
    rule = routing.first_rule(visitor)
    if rule is not None:
        return Decision(routing.rules[rule].target, rule=rule)
    if routing.targets:
        kept = routing.kept_variant(cookie)
        if kept is not None:
            return Decision(routing.targets[kept], variant=kept)
        chosen = routing.choose_variant(rng)
        return Decision(routing.targets[chosen], variant=chosen,
                        set_cookie=routing.cookie_value(chosen))  # fmt: skip
    return Decision(default_target)


def compile_stored(rules: str | None, variants: str | None) -> Routing | None:
    """Rules and variants as stored (JSON text, None for none), compiled."""
    return compile_routing(load_json(rules), load_json(variants))
