"""The notifier's ledger: every alert change it has dealt with, in SQLite, on disk.

A change is recorded once it has been posted (or deliberately not posted), before the
notifier moves its Kafka offset past it. After a SIGKILL the notifier reads the changes
after its last committed offset again and skips those the ledger holds: none is posted
twice, none is lost. (The one window left is between the receiver's 200 and the ledger's
commit, a few milliseconds; Slack's webhooks offer no idempotency key to close it.)

It also keeps the latest processor heartbeat, which pipeline_stalled is judged from, so a
restarted notifier still knows how long the processor has been silent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# What happened to a change: posted to the webhook; logged (no webhook configured);
# suppressed (cooldown); refused (the receiver answered 4xx: retrying cannot help).
POSTED, LOGGED, SUPPRESSED, REFUSED = "posted", "logged", "suppressed", "refused"


class Ledger:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS changes (alert_id TEXT NOT NULL, state TEXT NOT NULL, "
            "rule TEXT NOT NULL, subject TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, "
            "outcome TEXT NOT NULL, recorded_ms INTEGER NOT NULL, "
            "PRIMARY KEY (alert_id, state))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS facts (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )

    def outcome(self, alert_id: str, state: str) -> str | None:
        row = self._db.execute(
            "SELECT outcome FROM changes WHERE alert_id = ? AND state = ?", (alert_id, state)
        ).fetchone()
        return row[0] if row else None

    def record(
        self,
        alert_id: str,
        state: str,
        rule: str,
        subject: str,
        first_seen_ms: int,
        outcome: str,
        recorded_ms: int,
    ) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO changes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (alert_id, state, rule, subject, first_seen_ms, outcome, recorded_ms),
        )

    def last_posted_firing_ms(self, rule: str, subject: str, before_ms: int) -> int | None:
        """first_seen of the latest firing of rule and subject posted, started before before_ms."""
        row = self._db.execute(
            "SELECT max(first_seen_ms) FROM changes WHERE rule = ? AND subject = ? "
            "AND state = 'firing' AND outcome IN (?, ?) AND first_seen_ms < ?",
            (rule, subject, POSTED, LOGGED, before_ms),
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def open_firing(self, rule: str) -> list[tuple[str, str, int]]:
        """(alert_id, subject, first_seen_ms) of this rule's firings not resolved yet."""
        return self._db.execute(
            "SELECT alert_id, subject, first_seen_ms FROM changes f WHERE rule = ? "
            "AND state = 'firing' AND NOT EXISTS (SELECT 1 FROM changes r "
            "WHERE r.alert_id = f.alert_id AND r.state = 'resolved')",
            (rule,),
        ).fetchall()

    def get(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM facts WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def put(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?)", (name, value))

    def close(self) -> None:
        self._db.close()
