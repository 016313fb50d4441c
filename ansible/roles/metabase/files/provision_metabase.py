#!/usr/bin/env python3
"""Provision Metabase for the clickstream appliance, idempotently, over its REST API.

What it does, in order, each step find-or-create and update-if-different:

1. First-user setup (``POST /api/setup`` with the token from ``GET /api/session/properties``)
   only when Metabase reports ``has-user-setup: false``; otherwise it logs in
   (``POST /api/session``).
2. The ClickHouse connection (``/api/database``), found by name; its details are updated
   when host, port, user, database, SSL or the password changed.
3. One native-SQL card per entry of the config (``/api/card``), found by name; the SQL is
   read verbatim from the query files at run time, so each query lives in one file.
4. The dashboard (``/api/dashboard``), found by name; its cards and their positions are set
   with ``PUT /api/dashboard/:id`` and a ``dashcards`` list (negative ids create new ones).

Running it twice creates nothing twice. It prints one JSON object on stdout with
``changed`` (for Ansible's ``changed_when``), the ids it manages and the dashboard URL; logs
go to stderr. An API error stops it with exit status 1 and a message naming the call.

Metabase's dashboard API stores no auto-refresh interval (``PUT /api/dashboard/:id`` takes
none); a viewer gets auto-refresh by opening the dashboard with the URL fragment
``#refresh=N``. The printed ``dashboard_url`` carries that fragment.

Secrets never travel on the command line: they come from the environment or from a
``--secrets-file`` of ``KEY=VALUE`` lines that only its owner may read:

    METABASE_ADMIN_EMAIL, METABASE_ADMIN_PASSWORD, METABASE_CLICKHOUSE_PASSWORD

Standard library only (Python 3.11): it runs on the appliance's system Python.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("provision_metabase")

SECRET_KEYS = ("METABASE_ADMIN_EMAIL", "METABASE_ADMIN_PASSWORD", "METABASE_CLICKHOUSE_PASSWORD")
# Details Metabase hands back for a connection are ours to compare only for these keys;
# it adds its own (advanced options, tunnel settings) and hides the password.
MANAGED_DETAIL_KEYS = ("host", "port", "user", "dbname", "ssl")
EXIT_API_ERROR = 1
EXIT_CONFIG_ERROR = 2


class ProvisionError(Exception):
    """A failure the operator must act on; the message says what and where."""


class ConfigError(ProvisionError):
    """The config, the secrets or a query file is missing or malformed."""


class ApiError(ProvisionError):
    """Metabase answered an API call with an error, or could not be reached."""


# ------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CardSpec:
    name: str
    query_file: str
    display: str
    description: str
    visualization_settings: dict[str, Any]
    row: int
    col: int
    size_x: int
    size_y: int
    sql: str


@dataclass(frozen=True)
class Config:
    metabase_url: str
    public_url: str
    site_name: str
    site_locale: str
    admin_first_name: str
    admin_last_name: str
    database_name: str
    database_engine: str
    database_details: dict[str, Any]
    dashboard_name: str
    dashboard_description: str
    refresh_seconds: int
    cards: tuple[CardSpec, ...]
    state_file: Path
    request_timeout: float


@dataclass(frozen=True)
class Secrets:
    admin_email: str
    admin_password: str
    clickhouse_password: str

    def values(self) -> tuple[str, ...]:
        return (self.admin_email, self.admin_password, self.clickhouse_password)


def _require(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in mapping:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = mapping[key]
    # bool is an int in Python; a port of `true` is still a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    if kind is str and not value.strip():
        raise ConfigError(f"{where}: {key!r} must not be empty")
    return value


def load_config(path: Path) -> Config:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a JSON object")

    where = str(path)
    metabase = _require(raw, "metabase", dict, where)
    database = _require(raw, "database", dict, where)
    dashboard = _require(raw, "dashboard", dict, where)
    queries_dir = Path(_require(raw, "queries_dir", str, where))
    details = dict(_require(database, "details", dict, f"{where}: database"))
    for key in MANAGED_DETAIL_KEYS:
        if key not in details:
            raise ConfigError(f"{where}: database.details: missing key {key!r}")
    if "password" in details:
        raise ConfigError(
            f"{where}: database.details must not hold the password; "
            "pass METABASE_CLICKHOUSE_PASSWORD through the environment or the secrets file"
        )

    cards = []
    seen: set[str] = set()
    for index, item in enumerate(_require(raw, "cards", list, where)):
        card_where = f"{where}: cards[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{card_where}: expected an object")
        name = _require(item, "name", str, card_where)
        if name in seen:
            raise ConfigError(f"{card_where}: card name {name!r} appears twice")
        seen.add(name)
        query_file = _require(item, "query_file", str, card_where)
        layout = _require(item, "layout", dict, card_where)
        cards.append(
            CardSpec(
                name=name,
                query_file=query_file,
                display=_require(item, "display", str, card_where),
                description=item.get("description", ""),
                visualization_settings=dict(item.get("visualization_settings", {})),
                row=_require(layout, "row", int, f"{card_where}.layout"),
                col=_require(layout, "col", int, f"{card_where}.layout"),
                size_x=_require(layout, "size_x", int, f"{card_where}.layout"),
                size_y=_require(layout, "size_y", int, f"{card_where}.layout"),
                sql=read_query(queries_dir / query_file),
            )
        )
    if not cards:
        raise ConfigError(f"{where}: 'cards' must list at least one card")

    return Config(
        metabase_url=_require(metabase, "url", str, f"{where}: metabase").rstrip("/"),
        public_url=_require(metabase, "public_url", str, f"{where}: metabase").rstrip("/"),
        site_name=_require(metabase, "site_name", str, f"{where}: metabase"),
        site_locale=metabase.get("site_locale", "en"),
        admin_first_name=_require(metabase, "admin_first_name", str, f"{where}: metabase"),
        admin_last_name=_require(metabase, "admin_last_name", str, f"{where}: metabase"),
        database_name=_require(database, "name", str, f"{where}: database"),
        database_engine=_require(database, "engine", str, f"{where}: database"),
        database_details=details,
        dashboard_name=_require(dashboard, "name", str, f"{where}: dashboard"),
        dashboard_description=dashboard.get("description", ""),
        refresh_seconds=_require(dashboard, "refresh_seconds", int, f"{where}: dashboard"),
        cards=tuple(cards),
        state_file=Path(_require(raw, "state_file", str, where)),
        request_timeout=float(metabase.get("request_timeout", 60)),
    )


def read_query(path: Path) -> str:
    """The card's SQL, exactly as the file holds it: the file is the one source of truth."""
    try:
        sql = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read query file {path}: {exc.strerror}") from exc
    if not sql.strip():
        raise ConfigError(f"query file {path} is empty")
    return sql


def parse_secrets_file(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}") from exc
    # Refuse a file others can read: it would mean the secrets already leaked on this host.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets file {path} is accessible to group or others "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"secrets file {path}, line {number}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


def load_secrets(secrets_file: Path | None, environ: dict[str, str]) -> Secrets:
    values = parse_secrets_file(secrets_file) if secrets_file else {}
    # The environment wins, so a one-off run can override the file without editing it.
    values.update({key: environ[key] for key in SECRET_KEYS if environ.get(key)})
    missing = [key for key in SECRET_KEYS if not values.get(key)]
    if missing:
        raise ConfigError(
            "missing secrets: " + ", ".join(missing) + " (set them in the environment or in "
            "the --secrets-file)"
        )
    return Secrets(
        admin_email=values["METABASE_ADMIN_EMAIL"],
        admin_password=values["METABASE_ADMIN_PASSWORD"],
        clickhouse_password=values["METABASE_CLICKHOUSE_PASSWORD"],
    )


# --------------------------------------------------------------------------- API client


class Client:
    """JSON over HTTP to Metabase; every error names the call that failed."""

    def __init__(self, base_url: str, timeout: float, redact: tuple[str, ...]) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.session_id: str | None = None
        self._redact = tuple(value for value in redact if value)

    def scrub(self, text: str) -> str:
        # Metabase validation errors can echo request fields; never let a secret through.
        for value in self._redact:
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
            raise ApiError(self.scrub(f"{call} failed: HTTP {exc.code}: {detail}")) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(
                f"{call} failed: cannot reach Metabase at {self.base_url}: {reason}"
            ) from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise ApiError(f"{call} failed: the answer is not JSON: {payload[:200]!r}") from None


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
    # GET /api/database wraps its list in {"data": [...]}; /api/card and /api/dashboard don't.
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        answer = answer["data"]
    if not isinstance(answer, list):
        raise ApiError(f"{call} returned {type(answer).__name__}, expected a list")
    return answer


def _find_by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    matches = [item for item in items if item.get("name") == name and not item.get("archived")]
    if len(matches) > 1:
        # Someone made a copy by hand; manage the oldest, which is the one we created.
        LOG.warning("%d items named %r; managing the one with the lowest id", len(matches), name)
    return min(matches, key=lambda item: item["id"]) if matches else None


# ------------------------------------------------------------------------- provisioning


@dataclass
class Outcome:
    actions: list[str] = field(default_factory=list)
    database_id: int | None = None
    card_ids: dict[str, int] = field(default_factory=dict)
    dashboard_id: int | None = None
    dashboard_url: str | None = None

    def did(self, action: str) -> None:
        LOG.info("%s", action)
        self.actions.append(action)


def wait_until_healthy(client: Client, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if (client.call("GET", "/api/health", auth=False) or {}).get("status") == "ok":
                return
        except ApiError as exc:
            if time.monotonic() >= deadline:
                raise
            LOG.info("waiting for Metabase: %s", exc)
        if time.monotonic() >= deadline:
            raise ApiError(f"GET /api/health did not report ok within {seconds:g} s")
        time.sleep(2)


def ensure_session(client: Client, config: Config, creds: Secrets, outcome: Outcome) -> None:
    properties = client.call("GET", "/api/session/properties", auth=False) or {}
    if not properties.get("has-user-setup"):
        token = properties.get("setup-token")
        if not token:
            raise ApiError(
                "GET /api/session/properties: Metabase has no user yet but gave no setup-token"
            )
        answer = client.call(
            "POST",
            "/api/setup",
            {
                "token": token,
                "user": {
                    "email": creds.admin_email,
                    "password": creds.admin_password,
                    "first_name": config.admin_first_name,
                    "last_name": config.admin_last_name,
                    "site_name": config.site_name,
                },
                "prefs": {"site_name": config.site_name, "site_locale": config.site_locale},
            },
            auth=False,
        )
        client.session_id = _session_id(answer, "POST /api/setup")
        outcome.did(f"set up Metabase: first admin user and site name {config.site_name!r}")
        return
    answer = client.call(
        "POST",
        "/api/session",
        {"username": creds.admin_email, "password": creds.admin_password},
        auth=False,
    )
    client.session_id = _session_id(answer, "POST /api/session")
    LOG.info("logged in: Metabase was already set up")


def _session_id(answer: Any, call: str) -> str:
    if not isinstance(answer, dict) or not answer.get("id"):
        raise ApiError(f"{call} returned no session id")
    return str(answer["id"])


def _fingerprint(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 200_000).hex()


class PasswordState:
    """Remembers a salted fingerprint of the ClickHouse password Metabase was given.

    Metabase never returns a stored password, so without this a rotated password could not
    be noticed. When the file is missing (a new host, or it was deleted) the password is
    sent again once and that run reports a change.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read state file {path}: {exc}") from exc

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # Created 0600 from the start: the fingerprint is not the password, but it is
        # still material for guessing it.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)


def ensure_database(
    client: Client, config: Config, creds: Secrets, state: PasswordState, outcome: Outcome
) -> int:
    wanted = {**config.database_details, "password": creds.clickhouse_password}
    body = {"name": config.database_name, "engine": config.database_engine, "details": wanted}
    existing = _find_by_name(
        _as_list(client.call("GET", "/api/database"), "GET /api/database"), config.database_name
    )
    if existing is None:
        created = client.call("POST", "/api/database", body)
        database_id = int(created["id"])
        outcome.did(f"created database connection {config.database_name!r} (id {database_id})")
        state.remember(database_id, creds.clickhouse_password)
        return database_id

    database_id = int(existing["id"])
    current = client.call("GET", f"/api/database/{database_id}") or {}
    details = current.get("details") or {}
    differences = [
        key for key in MANAGED_DETAIL_KEYS if details.get(key) != config.database_details[key]
    ]
    if current.get("engine") != config.database_engine:
        differences.insert(0, "engine")
    if not state.matches(database_id, creds.clickhouse_password):
        differences.append("password")
    if differences:
        client.call("PUT", f"/api/database/{database_id}", body)
        outcome.did(
            f"updated database connection {config.database_name!r} (id {database_id}): "
            + ", ".join(differences)
        )
        state.remember(database_id, creds.clickhouse_password)
    return database_id


def card_body(spec: CardSpec, database_id: int) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": "question",
        "description": spec.description or None,
        "display": spec.display,
        "visualization_settings": spec.visualization_settings,
        "dataset_query": {
            "type": "native",
            "native": {"query": spec.sql, "template-tags": {}},
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


def card_differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    query = current.get("dataset_query") or {}
    differences = []
    if _native_sql(query) != wanted["dataset_query"]["native"]["query"]:
        differences.append("query")
    if query.get("database") != wanted["dataset_query"]["database"]:
        differences.append("database")
    for key in ("display", "visualization_settings", "description"):
        if current.get(key) != wanted[key]:
            differences.append(key)
    return differences


def ensure_cards(client: Client, config: Config, database_id: int, outcome: Outcome) -> None:
    existing_cards = _as_list(client.call("GET", "/api/card?f=all"), "GET /api/card")
    for spec in config.cards:
        wanted = card_body(spec, database_id)
        existing = _find_by_name(existing_cards, spec.name)
        if existing is None:
            created = client.call("POST", "/api/card", wanted)
            outcome.card_ids[spec.name] = int(created["id"])
            outcome.did(f"created card {spec.name!r} (id {created['id']})")
            continue
        card_id = int(existing["id"])
        outcome.card_ids[spec.name] = card_id
        differences = card_differences(existing, wanted)
        if differences:
            changes = {key: wanted[key] for key in wanted if key not in ("name", "type")}
            client.call("PUT", f"/api/card/{card_id}", changes)
            outcome.did(f"updated card {spec.name!r} (id {card_id}): " + ", ".join(differences))


def ensure_dashboard(client: Client, config: Config, outcome: Outcome) -> None:
    existing = _find_by_name(
        _as_list(client.call("GET", "/api/dashboard?f=all"), "GET /api/dashboard"),
        config.dashboard_name,
    )
    if existing is None:
        created = client.call(
            "POST",
            "/api/dashboard",
            {"name": config.dashboard_name, "description": config.dashboard_description or None},
        )
        dashboard_id = int(created["id"])
        outcome.did(f"created dashboard {config.dashboard_name!r} (id {dashboard_id})")
    else:
        dashboard_id = int(existing["id"])
    outcome.dashboard_id = dashboard_id
    outcome.dashboard_url = (
        f"{config.public_url}/dashboard/{dashboard_id}#refresh={config.refresh_seconds}"
    )

    current = client.call("GET", f"/api/dashboard/{dashboard_id}") or {}
    current_cards = current.get("dashcards") or []
    # Keep the id of a dashcard that already shows a wanted card, so an update moves it
    # instead of deleting and re-adding it; new ones get negative ids, as the API asks.
    by_card: dict[int, dict[str, Any]] = {}
    for dashcard in sorted(current_cards, key=lambda item: item["id"]):
        by_card.setdefault(dashcard.get("card_id"), dashcard)
    wanted_cards = []
    for index, spec in enumerate(config.cards, start=1):
        card_id = outcome.card_ids[spec.name]
        reuse = by_card.get(card_id)
        wanted_cards.append(
            {
                "id": reuse["id"] if reuse else -index,
                "card_id": card_id,
                "row": spec.row,
                "col": spec.col,
                "size_x": spec.size_x,
                "size_y": spec.size_y,
                "parameter_mappings": [],
                "series": [],
                "visualization_settings": {},
            }
        )

    def layout(cards: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {
            (card.get("card_id"), card["row"], card["col"], card["size_x"], card["size_y"])
            for card in cards
        }

    description = config.dashboard_description or None
    layout_differs = len(current_cards) != len(wanted_cards) or layout(current_cards) != layout(
        wanted_cards
    )
    description_differs = current.get("description") != description
    if layout_differs or description_differs:
        client.call(
            "PUT",
            f"/api/dashboard/{dashboard_id}",
            {"description": description, "dashcards": wanted_cards},
        )
        what = ["cards"] if layout_differs else []
        what += ["description"] if description_differs else []
        outcome.did(
            f"updated dashboard {config.dashboard_name!r} (id {dashboard_id}): " + ", ".join(what)
        )


def provision(config: Config, creds: Secrets, wait_seconds: float, outcome: Outcome) -> None:
    """Bring Metabase to the config; ``outcome`` records what changed, even on failure."""
    client = Client(config.metabase_url, config.request_timeout, creds.values())
    state = PasswordState(config.state_file)
    if wait_seconds > 0:
        wait_until_healthy(client, wait_seconds)
    ensure_session(client, config, creds, outcome)
    outcome.database_id = ensure_database(client, config, creds, state, outcome)
    ensure_cards(client, config, outcome.database_id, outcome)
    ensure_dashboard(client, config, outcome)


# --------------------------------------------------------------------------------- main


def _report(outcome: Outcome, error: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "changed": bool(outcome.actions),
        "actions": outcome.actions,
        "database_id": outcome.database_id,
        "card_ids": outcome.card_ids,
        "dashboard_id": outcome.dashboard_id,
        "dashboard_url": outcome.dashboard_url,
    }
    if error:
        report["failed"] = True
        report["error"] = error
    return report


def check_config(config: Config) -> dict[str, Any]:
    """What a run would provision, read from the files alone: no network."""
    return {
        "changed": False,
        "metabase_url": config.metabase_url,
        "database": {"name": config.database_name, "engine": config.database_engine},
        "dashboard": config.dashboard_name,
        "refresh_seconds": config.refresh_seconds,
        "cards": [
            {
                "name": spec.name,
                "query_file": spec.query_file,
                "display": spec.display,
                "sql_sha256": hashlib.sha256(spec.sql.encode()).hexdigest(),
            }
            for spec in config.cards
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="provisioning config (JSON)")
    parser.add_argument(
        "--secrets-file", type=Path, help="KEY=VALUE file, mode 0600 (environment overrides it)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for GET /api/health to report ok",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="read config, secrets and query files, print the plan, contact nothing",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")

    try:
        config = load_config(args.config)
        creds = load_secrets(args.secrets_file, dict(os.environ))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"changed": False, "failed": True, "error": str(exc)}))
        return EXIT_CONFIG_ERROR

    if args.check_config:
        print(json.dumps(check_config(config), indent=2))
        return 0

    outcome = Outcome()
    try:
        provision(config, creds, args.wait, outcome)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps(_report(outcome, str(exc))))
        return EXIT_CONFIG_ERROR if isinstance(exc, ConfigError) else EXIT_API_ERROR

    LOG.info("dashboard: %s", outcome.dashboard_url)
    if not outcome.actions:
        LOG.info("nothing to change")
    print(json.dumps(_report(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
