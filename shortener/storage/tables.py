"""Table definitions shared by the queries and the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)

# Integer primary keys become SQLite's rowid and BIGSERIAL elsewhere. No id is ever handed out
# twice (a retried DELETE of a URI must never reach a newer row): every table with an id is
# ``sqlite_autoincrement`` (SQLite would otherwise reuse the id of the newest row once it is
# deleted), and PostgreSQL's sequences never repeat a value. See migration 0004.
Identifier = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Stores naive UTC and hands back aware UTC datetimes on every dialect."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; pass UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Raised by every change, in the same UPDATE: the ETag's version (see services/preconditions).
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    sqlite_autoincrement=True,
)

links = Table(
    "links",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("target", Text, nullable=False),
    Column("title", String(255), nullable=True),
    Column("redirect_status", SmallInteger, nullable=False, default=302),
    Column("visit_count", BigInteger, nullable=False, default=0),
    Column("owner_id", Identifier, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Raised by every change, in the same UPDATE; visits change visit_count, never this.
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    # Lifetime and visit cap (migration 0008): redirects only within [valid_since, valid_until)
    # and while cap_used < max_visits; cap_used is raised atomically by each capped redirect,
    # exhausted_at is when it reached the cap. Afterwards visitors go to expired_target (or 410).
    Column("valid_since", UTCDateTime, nullable=True),
    Column("valid_until", UTCDateTime, nullable=True),
    Column("max_visits", BigInteger, nullable=True),
    Column("cap_used", BigInteger, nullable=False, default=0, server_default="0"),
    Column("exhausted_at", UTCDateTime, nullable=True),
    Column("expired_target", Text, nullable=True),
    # Listed in GET /robots.txt as allowed to crawl (migration 0009).
    Column("crawlable", Boolean, nullable=False, default=False, server_default=false()),
    # Query forwarding, UTM fields and the hash of a link's password (migration 0010).
    Column("forward_query", Boolean, nullable=False, default=False, server_default=false()),
    Column("utm_source", String(255), nullable=True),
    Column("utm_medium", String(255), nullable=True),
    Column("utm_campaign", String(255), nullable=True),
    Column("utm_term", String(255), nullable=True),
    Column("utm_content", String(255), nullable=True),
    Column("password_hash", String(255), nullable=True),
    # Redirect rules and A/B variants, as JSON text; NULL: none (migration 0011, services/rules.py).
    Column("rules", Text, nullable=True),
    Column("variants", Text, nullable=True),
    # The part of visit_count counted by another shortener and brought in by an import
    # (migration 0012, services/importing.py); visits recorded here are the rest.
    Column("imported_visits", BigInteger, nullable=False, default=0, server_default="0"),
    # Keyset pagination of one owner's links, newest first.
    Index(None, "owner_id", "id"),
    # Purging expired and exhausted links.
    Index(None, "valid_until"),
    Index(None, "exhausted_at"),
    # The title sort's key: the title, '' for none (NULLs sort differently on each database);
    # written with the title by storage/link_queries.py (migration 0014).
    Column("sort_title", String(255), nullable=False, default="", server_default=text("''")),
    # Finding links (migration 0014, storage/link_filters.py): a keyset index per sort of
    # GET /links, per owner and across owners, each ending in id; exact targets.
    Index(None, "owner_id", "created_at", "id"),
    Index(None, "created_at", "id"),
    Index(None, "owner_id", "visit_count", "id"),
    Index(None, "visit_count", "id"),
    Index(None, "owner_id", "slug"),
    Index(None, "owner_id", "sort_title", "id"),
    Index(None, "sort_title", "id"),
    Index("ix_links_target", "target", postgresql_using="hash"),
    sqlite_autoincrement=True,
)
# Only the crawlable links' slugs, in order: GET /robots.txt reads nothing else. Queries use the
# same condition (SQLite: "crawlable = 1"); SQLite would not use the index for "crawlable".
CRAWLABLE = links.c.crawlable == true()
Index("ix_links_crawlable_slug", links.c.slug, sqlite_where=CRAWLABLE, postgresql_where=CRAWLABLE)

visits = Table(
    "visits",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("link_id", Identifier, ForeignKey("links.id", ondelete="CASCADE"), nullable=False),
    Column("visited_at", UTCDateTime, nullable=False),
    Column("referrer", String(1024), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("browser", String(64), nullable=True),
    Column("os", String(64), nullable=True),
    Column("is_bot", Boolean, nullable=False),
    Column("ip", String(45), nullable=True),
    # Given when the visit is captured: a visit delivered twice is stored once (migration 0006).
    Column("uid", String(40), nullable=True),
    # Where the visitor was sent, by which rule or variant (indexes; NULL: neither), and the
    # visitor's country from the GeoIP database (NULL without one). Migration 0011.
    Column("target_used", Text, nullable=True),
    Column("rule", SmallInteger, nullable=True),
    Column("variant", SmallInteger, nullable=True),
    Column("country", String(2), nullable=True),
    Index(None, "uid", unique=True),
    # Newest-first keyset pages of one link's visits, and time-window filters on them.
    Index(None, "link_id", "id"),
    Index(None, "link_id", "visited_at"),
    sqlite_autoincrement=True,
)

# Visits counted per link, hour, dimension and value, written in the same transaction as the
# visits: statistics read a few thousand of these instead of millions of visits.
visit_rollups = Table(
    "visit_rollups",
    metadata,
    Column("link_id", Identifier, ForeignKey("links.id", ondelete="CASCADE"), nullable=False),
    Column("dimension", String(16), nullable=False),  # total | browser | os | referrer
    Column("hour", UTCDateTime, nullable=False),
    # total: the URL the visits were sent to ("" when not recorded); others: "" for none
    Column("value", String(255), nullable=False),
    Column("is_bot", Boolean, nullable=False),
    Column("visits", BigInteger, nullable=False),
    PrimaryKeyConstraint("link_id", "dimension", "hour", "value", "is_bot"),
    # Totals across every link (the admin's /stats).
    Index(None, "dimension", "hour"),
)

# API tokens: only the SHA-256 digest of each secret is kept, and a request finds its token by
# that digest (unique index). Revoking a token deletes its row; deleting a user deletes theirs.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("user_id", Identifier, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("scopes", String(255), nullable=False),  # space-separated, e.g. "links:read"
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    # Keyset pagination of one user's tokens, newest first.
    Index(None, "user_id", "id"),
    sqlite_autoincrement=True,
)

# Idempotency-Key claims of POSTs, per credential (a password: token_id 0), kept 24 hours. A
# finished claim holds the answer to replay; a token's answer is stored without its body, so
# its secret is never kept. ``attempt`` is random per claim: only its holder completes it.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("user_id", Identifier, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_id", Identifier, nullable=False),  # 0: a password
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of method, URI and body
    Column("state", String(16), nullable=False),  # in-progress | done
    Column("attempt", String(32), nullable=False),
    Column("response_status", SmallInteger, nullable=True),
    Column("response_location", Text, nullable=True),
    Column("response_etag", String(255), nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("user_id", "token_id", "key"),
    # Purging keys older than 24 hours.
    Index(None, "created_at"),
    sqlite_autoincrement=True,
)

# One row (name "links") whose counter every change of a link raises in the same transaction:
# workers on other hosts poll it to know when their link cache is stale (link_changes.py).
link_changes = Table(
    "link_changes",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("counter", BigInteger, nullable=False, default=0, server_default="0"),
)

# Webhooks (migration 0013, services/webhooks.py): each subscription with its signing secret
# (kept as given: signing needs it) and its run of consecutive failures (disabled at 20).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("user_id", Identifier, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", String(255), nullable=False),  # space-separated, e.g. "link.created"
    Column("tags", Text, nullable=True),  # a JSON list; NULL: every link
    Column("active", Boolean, nullable=False, default=True),
    Column("secret", String(100), nullable=False),  # whsec_<base64>
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    Column("consecutive_failures", Integer, nullable=False, default=0, server_default="0"),
    Column("disabled_at", UTCDateTime, nullable=True),  # when the failures disabled it
    Index(None, "user_id", "id"),
    sqlite_autoincrement=True,
)

# The outbox: a message is inserted in the same transaction as the change it reports; the
# sender takes those whose next_attempt_at has come (NULL once delivered or given up).
webhook_messages = Table(
    "webhook_messages",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("webhook_id", Identifier, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("uid", String(40), nullable=False, unique=True),  # the webhook-id header
    Column("event", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the body, byte for byte as signed and sent
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Index(None, "next_attempt_at"),
    Index(None, "webhook_id", "id"),
    sqlite_autoincrement=True,
)

# Every attempt to deliver a message: GET /webhooks/<id>/deliveries.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("webhook_id", Identifier, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column(
        "message_id",
        Identifier,
        ForeignKey("webhook_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("status_code", SmallInteger, nullable=True),
    Column("response_ms", Integer, nullable=False),
    Column("error", String(255), nullable=True),
    Index(None, "webhook_id", "id"),
    Index(None, "message_id"),
    sqlite_autoincrement=True,
)

# Tags (migration 0014, storage/tag_queries.py): each owner's, ``name`` as first given, ``key``
# its case-folded form (one tag per owner and key); ``link_tags`` keeps each link's in order.
tags = Table(
    "tags",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("owner_id", Identifier, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("owner_id", "key"),
    # Tag filters across owners (an admin's GET /links?tag=).
    Index(None, "key"),
    sqlite_autoincrement=True,
)

link_tags = Table(
    "link_tags",
    metadata,
    Column("link_id", Identifier, ForeignKey("links.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", Identifier, ForeignKey("tags.id", ondelete="CASCADE"), nullable=False),
    Column("position", SmallInteger, nullable=False),
    PrimaryKeyConstraint("link_id", "tag_id"),
    Index(None, "tag_id", "link_id"),
)

# One revision per change of a link, written in the change's transaction (migration 0015,
# services/history.py). No foreign keys: revisions outlive their link (admins read them by
# slug) and its owner. ``by_id`` NULL: the command line's operator.
link_revisions = Table(
    "link_revisions",
    metadata,
    Column("id", Identifier, primary_key=True, autoincrement=True),
    Column("link_id", Identifier, nullable=False),
    Column("slug", String(64), nullable=False),
    Column("owner_id", Identifier, nullable=False),
    Column("event", String(16), nullable=False),  # created | updated | deleted
    Column("at", UTCDateTime, nullable=False),
    Column("by_id", Identifier, nullable=True),
    Column("by_username", String(64), nullable=True),
    Column("via", String(16), nullable=False),  # password | token | cli
    Column("token_id", Identifier, nullable=True),
    Column("changes", Text, nullable=False),  # JSON: {field: [old, new]}
    # One link's history, newest first; a slug's across its links (admins).
    Index(None, "link_id", "id"),
    Index(None, "slug", "id"),
    sqlite_autoincrement=True,
)
