#!/usr/bin/python
"""Ansible module: provision Metabase for the clickstream appliance over its REST API."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: metabase_provision
short_description: Metabase's first user, ClickHouse connection, cards and dashboard, by API
description:
  - Each step finds by name, creates what is missing and updates only what differs, so a
    second run changes nothing.
  - Sets Metabase up (first admin user, site name) when it has no user yet, otherwise
    logs in.
  - Creates or updates the ClickHouse connection; a salted fingerprint of its password in
    I(state_file) tells a rotated password apart, since Metabase never returns it.
  - Creates or updates one native-SQL card per entry of I(cards), its SQL read from
    I(queries_dir) on the host; creates the dashboard and puts its cards back in place.
  - Hides I(hidden_tables) of the connection from Metabase's sync once the sync found them.
  - Check mode only reads (GET; and logs in, a POST that changes no content). Diff mode
    returns, per card, the fields that differ.
  - Standard library only (urllib), so it runs on the host's system Python.
options:
  api_url: {type: str, required: true, description: Metabase as the host calls it.}
  public_url: {type: str, required: true, description: Metabase as a person opens it.}
  admin_email: {type: str, required: true, description: Login of the admin.}
  admin_password: {type: str, required: true, description: Password of the admin.}
  admin_first_name: {type: str, required: true, description: Admin's first name at setup.}
  admin_last_name: {type: str, required: true, description: Admin's last name at setup.}
  site_name: {type: str, required: true, description: Site name set at setup.}
  site_locale: {type: str, default: en, description: Site locale set at setup.}
  connection:
    type: dict
    required: true
    description: The ClickHouse connection, found by I(name).
    suboptions:
      name: {type: str, required: true, description: Connection name.}
      host: {type: str, required: true, description: ClickHouse host as Metabase sees it.}
      port: {type: int, required: true, description: ClickHouse HTTP port.}
      user: {type: str, required: true, description: ClickHouse user.}
      password: {type: str, required: true, description: Its password.}
      dbname: {type: str, required: true, description: The one database Metabase scans.}
      ssl: {type: bool, default: false, description: TLS to ClickHouse.}
  queries_dir: {type: path, required: true, description: Folder of the cards' query files.}
  state_file: {type: path, required: true, description: Where the password fingerprint lives.}
  cards:
    type: list
    elements: dict
    required: true
    description: The dashboard's cards, in order.
    suboptions:
      name: {type: str, required: true, description: Card name.}
      query_file: {type: str, required: true, description: File in I(queries_dir).}
      display: {type: str, required: true, description: Visualization, e.g. bar, table.}
      description: {type: str, description: Card description; blank means none.}
      visualization_settings: {type: dict, default: {}, description: Its settings.}
      layout:
        type: dict
        required: true
        description: Place on the 24-column grid.
        suboptions:
          row: {type: int, required: true, description: Grid row.}
          col: {type: int, required: true, description: Grid column.}
          size_x: {type: int, required: true, description: Width.}
          size_y: {type: int, required: true, description: Height.}
  dashboard_name: {type: str, required: true, description: Dashboard name.}
  dashboard_description: {type: str, description: Dashboard description.}
  refresh_seconds: {type: int, default: 15, description: The printed URL's refresh=N.}
  hidden_tables:
    type: list
    elements: str
    default: []
    description: Tables (views) of the connection to hide from Metabase's sync.
  wait_timeout: {type: int, default: 0, description: Seconds to wait for /api/health first.}
  request_timeout: {type: int, default: 60, description: Seconds per API call.}
"""

RETURN = r"""
actions:
  type: list
  elements: str
  returned: always
  description: What it did, or in check mode what it would do.
database_id: {type: int, returned: success, description: Id of the ClickHouse connection.}
card_ids: {type: dict, returned: success, description: Card name to card id.}
dashboard_id: {type: int, returned: success, description: Id of the dashboard.}
dashboard_url: {type: str, returned: success, description: Dashboard URL with refresh=N.}
"""

# The connection details that are ours to compare; Metabase adds its own (advanced options,
# tunnel settings), keeps them across a PUT (it merges details), and hides the password.
MANAGED_DETAIL_KEYS = ("host", "port", "user", "dbname", "ssl")
CARD_FIELDS = ("query", "database", "display", "visualization_settings", "description")

LAYOUT = {name: {"type": "int", "required": True} for name in ("row", "col", "size_x", "size_y")}
ARGUMENT_SPEC: dict[str, Any] = {
    "api_url": {"type": "str", "required": True},
    "public_url": {"type": "str", "required": True},
    "admin_email": {"type": "str", "required": True, "no_log": True},
    "admin_password": {"type": "str", "required": True, "no_log": True},
    "admin_first_name": {"type": "str", "required": True},
    "admin_last_name": {"type": "str", "required": True},
    "site_name": {"type": "str", "required": True},
    "site_locale": {"type": "str", "default": "en"},
    "connection": {
        "type": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "required": True},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "dbname": {"type": "str", "required": True},
            "ssl": {"type": "bool", "default": False},
        },
    },
    "queries_dir": {"type": "path", "required": True},
    "state_file": {"type": "path", "required": True},
    "cards": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "query_file": {"type": "str", "required": True},
            "display": {"type": "str", "required": True},
            "description": {"type": "str"},
            "visualization_settings": {"type": "dict", "default": {}},
            "layout": {"type": "dict", "required": True, "options": LAYOUT},
        },
    },
    "dashboard_name": {"type": "str", "required": True},
    "dashboard_description": {"type": "str"},
    "refresh_seconds": {"type": "int", "default": 15},
    "hidden_tables": {"type": "list", "elements": "str", "default": []},
    "wait_timeout": {"type": "int", "default": 0},
    "request_timeout": {"type": "int", "default": 60},
}


class ProvisionError(Exception):
    """A failure the operator must act on; the message says what and where."""


def text_or_none(value: str | None) -> str | None:
    # Metabase refuses a blank card description (NonBlankString) and stores null for none.
    return (value or "").strip() or None


# --------------------------------------------------------------------------- API client


class Client:
    """JSON over HTTP to Metabase; every error names the call that failed."""

    def __init__(self, base_url: str, timeout: float, secret_values: list[str]) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session_id: str | None = None
        self._secrets = [value for value in secret_values if value]

    def scrub(self, text: str) -> str:
        # Metabase validation errors can echo request fields; never let a secret through.
        for value in self._secrets:
            text = text.replace(value, "***")
        return text

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if auth and self.session_id:
            headers["X-Metabase-Session"] = self.session_id
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        call = f"{method} {path.split('?')[0]}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read())
            raise ProvisionError(self.scrub(f"{call} failed: HTTP {exc.code}: {detail}")) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProvisionError(
                f"{call} failed: cannot reach Metabase at {self.base_url}: {reason}"
            ) from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise ProvisionError(
                f"{call} failed: the answer is not JSON: {payload[:200]!r}"
            ) from None


def _error_detail(payload: bytes) -> str:
    text = payload.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text[:500] or "(empty body)"
    if isinstance(parsed, dict):
        for key in ("message", "errors", "specific-errors"):
            if parsed.get(key):
                value = parsed[key]
                return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return json.dumps(parsed, sort_keys=True)[:500]


def _as_list(answer: Any, call: str) -> list[dict[str, Any]]:
    # GET /api/database and /api/search wrap their list in {"data": [...]}; /api/card doesn't.
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        answer = answer["data"]
    if not isinstance(answer, list):
        raise ProvisionError(f"{call} returned {type(answer).__name__}, expected a list")
    return answer


def _find_by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    matches = [item for item in items if item.get("name") == name and not item.get("archived")]
    # Someone made a copy by hand: manage the oldest, which is the one provisioning created.
    return min(matches, key=lambda item: item["id"]) if matches else None


# ------------------------------------------------------------------------ password state


def _fingerprint(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 200_000).hex()


class PasswordState:
    """A salted fingerprint of the ClickHouse password Metabase was given.

    Metabase never returns a stored password, so without this a rotated password could not
    be noticed. When the file is missing (a new host, or it was deleted) the password is
    sent again once and that run reports a change.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    self.data = json.load(handle)
            except (OSError, json.JSONDecodeError) as exc:
                raise ProvisionError(f"cannot read state file {path}: {exc}") from exc

    def matches(self, database_id: int, password: str) -> bool:
        entry = self.data.get("clickhouse_password", {})
        if entry.get("database_id") != database_id or "salt" not in entry:
            return False
        return hmac.compare_digest(entry.get("hash", ""), _fingerprint(password, entry["salt"]))

    def remember(self, database_id: int, password: str) -> None:
        salt = secrets.token_hex(16)
        self.data["clickhouse_password"] = {
            "database_id": database_id,
            "salt": salt,
            "hash": _fingerprint(password, salt),
        }
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        # Created 0600 from the start: the fingerprint is not the password, but it is
        # still material for guessing it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)


# ------------------------------------------------------------------------- cards


def read_query(path: str) -> str:
    """The card's SQL, exactly as the file holds it: the file is the one source of truth."""
    try:
        with open(path, encoding="utf-8") as handle:
            sql = handle.read()
    except OSError as exc:
        raise ProvisionError(f"cannot read query file {path}: {exc.strerror}") from None
    if not sql.strip():
        raise ProvisionError(f"query file {path} is empty")
    return sql


def card_body(card: dict[str, Any], sql: str, database_id: int | None) -> dict[str, Any]:
    return {
        "name": card["name"],
        "type": "question",
        "description": text_or_none(card["description"]),
        "display": card["display"],
        "visualization_settings": card["visualization_settings"],
        "dataset_query": {
            "type": "native",
            "native": {"query": sql, "template-tags": {}},
            "database": database_id,
        },
    }


def _native_sql(dataset_query: dict[str, Any]) -> str | None:
    # The pinned Metabase returns the legacy shape {"native": {"query": ...}}; newer ones
    # may return MBQL 5 {"stages": [{"native": ...}]}. Read either, so an upgrade does
    # not look like a changed query.
    native = dataset_query.get("native")
    if isinstance(native, dict):
        return native.get("query")
    stages = dataset_query.get("stages")
    if isinstance(stages, list) and stages and isinstance(stages[0], dict):
        value = stages[0].get("native")
        return value if isinstance(value, str) else None
    return None


def card_fields(card: dict[str, Any]) -> dict[str, Any]:
    """The fields provisioning manages, by the names the actions and the diff use."""
    query = card.get("dataset_query") or {}
    return {
        "query": _native_sql(query),
        "database": query.get("database"),
        "display": card.get("display"),
        "visualization_settings": card.get("visualization_settings"),
        "description": card.get("description"),
    }


def card_differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    have, want = card_fields(current), card_fields(wanted)
    return [key for key in CARD_FIELDS if have[key] != want[key]]


def fields_text(fields: dict[str, Any], keys: list[str]) -> str:
    """Fields as diff text: the SQL as its lines, everything else as one JSON line."""
    lines = []
    for key in keys:
        value = fields[key]
        if key == "query" and isinstance(value, str):
            lines.append("query:\n" + value.rstrip("\n"))
        elif isinstance(value, str):
            lines.append(f"{key}: {value}")
        else:
            lines.append(f"{key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines) + "\n" if lines else ""


# ------------------------------------------------------------------------ provisioning


class Provisioner:
    def __init__(self, params: dict[str, Any], check_mode: bool) -> None:
        self.params = params
        self.check_mode = check_mode
        connection = params["connection"]
        self.client = Client(
            params["api_url"],
            params["request_timeout"],
            [params["admin_email"], params["admin_password"], connection["password"]],
        )
        self.actions: list[str] = []
        self.diff: list[dict[str, str]] = []
        self.database_id: int | None = None
        self.card_ids: dict[str, int | None] = {}
        self.dashboard_id: int | None = None

    def did(self, done: str, would: str, what: str) -> None:
        self.actions.append(f"{would if self.check_mode else done} {what}")

    def write(self, method: str, path: str, body: Any) -> Any:
        """A call that changes Metabase: made only outside check mode."""
        return None if self.check_mode else self.client.call(method, path, body)

    def run(self) -> None:
        if self.params["wait_timeout"] > 0:
            self.wait_until_healthy(self.params["wait_timeout"])
        # Read every query file first: a missing one stops the run before it changes anything.
        sqls = [
            read_query(os.path.join(self.params["queries_dir"], card["query_file"]))
            for card in self.params["cards"]
        ]
        if not self.ensure_session():
            # Check mode on a Metabase without a user: no login, so nothing to read; all of
            # it would be created.
            self.plan_everything()
            return
        self.database_id = self.ensure_database()
        self.ensure_cards(sqls)
        self.ensure_dashboard()
        self.ensure_hidden_tables()

    def wait_until_healthy(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                answer = self.client.call("GET", "/api/health", auth=False) or {}
                if answer.get("status") == "ok":
                    return
            except ProvisionError:
                if time.monotonic() >= deadline:
                    raise
            if time.monotonic() >= deadline:
                raise ProvisionError(f"GET /api/health did not report ok within {seconds:g} s")
            time.sleep(2)

    def ensure_session(self) -> bool:
        """Log in, or set Metabase up first; False in check mode when no user exists yet."""
        params = self.params
        properties = self.client.call("GET", "/api/session/properties", auth=False) or {}
        if properties.get("has-user-setup"):
            answer = self.client.call(
                "POST",
                "/api/session",
                {"username": params["admin_email"], "password": params["admin_password"]},
                auth=False,
            )
            self.client.session_id = _session_id(answer, "POST /api/session")
            return True
        self.did(
            "set up",
            "would set up",
            f"Metabase: first admin user and site name {params['site_name']!r}",
        )
        if self.check_mode:
            return False
        token = properties.get("setup-token")
        if not token:
            raise ProvisionError(
                "GET /api/session/properties: Metabase has no user yet but gave no setup-token"
            )
        answer = self.client.call(
            "POST",
            "/api/setup",
            {
                "token": token,
                # Metabase 0.54's setup takes the site name in prefs only.
                "user": {
                    "email": params["admin_email"],
                    "password": params["admin_password"],
                    "first_name": params["admin_first_name"],
                    "last_name": params["admin_last_name"],
                },
                "prefs": {"site_name": params["site_name"], "site_locale": params["site_locale"]},
            },
            auth=False,
        )
        self.client.session_id = _session_id(answer, "POST /api/setup")
        return True

    def plan_everything(self) -> None:
        connection = self.params["connection"]["name"]
        self.did("created", "would create", f"database connection {connection!r}")
        for card in self.params["cards"]:
            self.did("created", "would create", f"card {card['name']!r}")
        self.did("created", "would create", f"dashboard {self.params['dashboard_name']!r}")

    def ensure_database(self) -> int | None:
        connection = self.params["connection"]
        name = connection["name"]
        details = {key: connection[key] for key in MANAGED_DETAIL_KEYS}
        body = {
            "name": name,
            "engine": "clickhouse",
            "details": {**details, "password": connection["password"]},
        }
        state = PasswordState(self.params["state_file"])
        existing = _find_by_name(
            _as_list(self.client.call("GET", "/api/database"), "GET /api/database"), name
        )
        if existing is None:
            # Metabase tests the connection first and answers 400 when it cannot connect.
            created = self.write("POST", "/api/database", body)
            database_id = int(created["id"]) if created else None
            self.did("created", "would create", f"database connection {name!r}{_id(database_id)}")
            if database_id is not None:
                state.remember(database_id, connection["password"])
            return database_id

        database_id = int(existing["id"])
        current = self.client.call("GET", f"/api/database/{database_id}") or {}
        stored = current.get("details") or {}
        differences = [key for key in MANAGED_DETAIL_KEYS if stored.get(key) != details[key]]
        if current.get("engine") != "clickhouse":
            differences.insert(0, "engine")
        if not state.matches(database_id, connection["password"]):
            differences.append("password")
        if differences:
            # Metabase merges the details sent into the stored ones, so options set in its
            # UI survive; it tests the connection and answers 400 when it cannot connect.
            self.write("PUT", f"/api/database/{database_id}", body)
            self.did(
                "updated",
                "would update",
                f"database connection {name!r} (id {database_id}): " + ", ".join(differences),
            )
            if not self.check_mode:
                state.remember(database_id, connection["password"])
        return database_id

    def ensure_cards(self, sqls: list[str]) -> None:
        existing_cards = _as_list(self.client.call("GET", "/api/card?f=all"), "GET /api/card")
        for card, sql in zip(self.params["cards"], sqls, strict=True):
            name = card["name"]
            wanted = card_body(card, sql, self.database_id)
            existing = _find_by_name(existing_cards, name)
            if existing is None:
                created = self.write("POST", "/api/card", wanted)
                self.card_ids[name] = int(created["id"]) if created else None
                self.did("created", "would create", f"card {name!r}{_id(self.card_ids[name])}")
                self.add_diff(f"card {name!r}", {}, card_fields(wanted), list(CARD_FIELDS))
                continue
            card_id = int(existing["id"])
            self.card_ids[name] = card_id
            differences = card_differences(existing, wanted)
            if differences:
                changes = {key: wanted[key] for key in wanted if key not in ("name", "type")}
                self.write("PUT", f"/api/card/{card_id}", changes)
                self.did(
                    "updated",
                    "would update",
                    f"card {name!r} (id {card_id}): " + ", ".join(differences),
                )
                self.add_diff(
                    f"card {name!r} (id {card_id})",
                    card_fields(existing),
                    card_fields(wanted),
                    differences,
                )

    def add_diff(self, header: str, before: dict, after: dict, keys: list[str]) -> None:
        self.diff.append(
            {
                "before_header": header,
                "after_header": header,
                "before": fields_text(before, keys) if before else "",
                "after": fields_text(after, keys),
            }
        )

    def find_dashboard(self, name: str) -> dict[str, Any] | None:
        # GET /api/dashboard (f=all) is deprecated in 0.54; search is what replaces it. Its
        # q matches loosely, so the name is compared exactly here.
        query = urllib.parse.urlencode({"models": "dashboard", "q": name})
        found = _as_list(self.client.call("GET", f"/api/search?{query}"), "GET /api/search")
        return _find_by_name([item for item in found if item.get("model") == "dashboard"], name)

    def ensure_dashboard(self) -> None:
        params = self.params
        name = params["dashboard_name"]
        description = text_or_none(params["dashboard_description"])
        existing = self.find_dashboard(name)
        if existing is None:
            created = self.write(
                "POST", "/api/dashboard", {"name": name, "description": description}
            )
            self.dashboard_id = int(created["id"]) if created else None
            self.did("created", "would create", f"dashboard {name!r}{_id(self.dashboard_id)}")
            current: dict[str, Any] = {"description": description}
        else:
            self.dashboard_id = int(existing["id"])
            current = self.client.call("GET", f"/api/dashboard/{self.dashboard_id}") or {}
        if self.dashboard_id is None:
            return  # check mode: a new dashboard would get its cards in the same run

        current_cards = current.get("dashcards") or []
        # Keep the id of a dashcard that already shows a wanted card, so an update moves it
        # instead of deleting and re-adding it; new ones get negative ids, as the API asks.
        by_card: dict[int, dict[str, Any]] = {}
        for dashcard in sorted(current_cards, key=lambda item: item["id"]):
            by_card.setdefault(dashcard.get("card_id"), dashcard)
        wanted_cards = []
        for index, card in enumerate(params["cards"], start=1):
            card_id = self.card_ids[card["name"]]
            reuse = by_card.get(card_id)
            wanted_cards.append(
                {
                    "id": reuse["id"] if reuse else -index,
                    "card_id": card_id,
                    **card["layout"],
                    "parameter_mappings": [],
                    "series": [],
                    "visualization_settings": {},
                }
            )

        def layout(cards: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return sorted(
                (c.get("card_id") or 0, c["row"], c["col"], c["size_x"], c["size_y"]) for c in cards
            )

        what = []
        if layout(current_cards) != layout(wanted_cards):
            what.append("cards")
        if current.get("description") != description:
            what.append("description")
        if what:
            self.write(
                "PUT",
                f"/api/dashboard/{self.dashboard_id}",
                {"description": description, "dashcards": wanted_cards},
            )
            self.did(
                "updated",
                "would update",
                f"dashboard {name!r} (id {self.dashboard_id}): " + ", ".join(what),
            )

    def ensure_hidden_tables(self) -> None:
        """Hide the parameterised views from Metabase's sync.

        Metabase's ClickHouse sync fails on a parameterised view (it has no columns without
        its parameters; metabase/metabase#66395), and the cards query them by name anyway.
        Sync skips hidden tables. They exist in Metabase only after its first sync, which
        runs in the background after the connection is created: a view not found yet is
        hidden by the next run.
        """
        hidden = set(self.params["hidden_tables"])
        if not hidden or self.database_id is None:
            return
        tables = _as_list(self.client.call("GET", "/api/table"), "GET /api/table")
        for table in sorted(tables, key=lambda item: item["id"]):
            if (
                table.get("db_id") == self.database_id
                and table.get("name") in hidden
                and table.get("visibility_type") != "hidden"
            ):
                self.write("PUT", f"/api/table/{table['id']}", {"visibility_type": "hidden"})
                self.did(
                    "hid",
                    "would hide",
                    f"table {table['name']!r} (id {table['id']}) from Metabase's sync",
                )

    def report(self) -> dict[str, Any]:
        dashboard_url = None
        if self.dashboard_id is not None:
            dashboard_url = (
                f"{self.params['public_url'].rstrip('/')}/dashboard/{self.dashboard_id}"
                f"#refresh={self.params['refresh_seconds']}"
            )
        return {
            "changed": bool(self.actions),
            "actions": self.actions,
            "database_id": self.database_id,
            "card_ids": self.card_ids,
            "dashboard_id": self.dashboard_id,
            "dashboard_url": dashboard_url,
        }


def _id(value: int | None) -> str:
    return f" (id {value})" if value is not None else ""


def _session_id(answer: Any, call: str) -> str:
    if not isinstance(answer, dict) or not answer.get("id"):
        raise ProvisionError(f"{call} returned no session id")
    return str(answer["id"])


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    names = [card["name"] for card in module.params["cards"]]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        module.fail_json(msg=f"card names must be unique; twice: {', '.join(twice)}")
    if not names:
        module.fail_json(msg="cards must list at least one card")

    provisioner = Provisioner(module.params, module.check_mode)
    try:
        provisioner.run()
    except ProvisionError as exc:
        # What happened before the failure is still reported, so the task shows it changed.
        module.fail_json(msg=str(exc), **provisioner.report())
    result = provisioner.report()
    if module._diff:
        result["diff"] = provisioner.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
