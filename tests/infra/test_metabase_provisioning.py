"""The role's metabase_provision module, run for real against a FAKE Metabase API.

Metabase itself cannot run here: no Metabase jar or image is reachable from this machine
(see docs/test-machine.md). So each test starts ``FakeMetabase``, an in-process
``http.server`` that implements only the endpoints the module calls, with real state (ids
handed out in order, lists that grow, a session check, the setup token, obfuscated
passwords, the connection test, details merged on update, blank descriptions refused, the
way Metabase 0.54 does them). The fake is the only stand-in here; the module is the role's
file, run as Ansible runs it:

- through the real ``ansible-playbook``, the role's own ``tasks/provision.yml`` with the
  role's defaults, against localhost: first run, second run unchanged, ``--check`` (reads,
  writes nothing), ``--diff`` (a card's change as text), secrets absent from ``-v`` output
  and an API error failing the task with a message naming the call;
- directly (``python metabase_provision.py args.json``, Ansible's module protocol) for the
  rest, with the arguments the task passes, built from the role's defaults.

What the fake cannot prove, only a real Metabase can: that Metabase accepts these payloads,
that the ClickHouse driver connects, that the cards' SQL runs. Those are checked on a host.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible" / "roles" / "metabase"
MODULE = ROLE / "library" / "metabase_provision.py"
QUERIES = REPO / "app" / "sql" / "queries"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
BIN = Path(sys.executable).parent

ADMIN_EMAIL = "admin@clickstream.example"
ADMIN_PASSWORD = "Wh1te-Heron-Quartz-92"
CLICKHOUSE_PASSWORD = "ch-Secret-7731"
SECRET_VALUES = (ADMIN_EMAIL, ADMIN_PASSWORD, CLICKHOUSE_PASSWORD)


def assert_no_secret_printed(result: subprocess.CompletedProcess) -> None:
    """Every run, of the module or of a playbook, is checked: no secret in any output."""
    for secret in SECRET_VALUES:
        assert secret not in result.stdout + result.stderr, "a secret was printed"


# What the role's defaults ask for: card name -> (query file, display, (row, col, w, h)).
EXPECTED_CARDS = {
    "Clicks per page, last minute": ("clicks_per_page_last_minute.sql", "bar", (0, 0, 12, 8)),
    "Clicks per minute, top pages, last hour": (
        "clicks_per_minute_top_pages.sql",
        "line",
        (0, 12, 12, 8),
    ),
    "Rejected events by reason, last hour": ("rejected_by_reason.sql", "bar", (8, 0, 12, 7)),
    "Pipeline health, last hour": ("pipeline_health.sql", "table", (8, 12, 12, 7)),
    "Where every record went (last hour)": ("pipeline_accounting.sql", "table", (15, 0, 24, 7)),
    "Unique visitors per minute, last hour": (
        "unique_visitors_per_minute.sql",
        "line",
        (22, 0, 24, 7),
    ),
    "Funnel, last hour (bots by agent excluded)": ("funnel_last_hour.sql", "bar", (29, 0, 12, 8)),
    "Sessions per minute: bounce rate and problems, last 3 hours": (
        "sessions_per_minute.sql",
        "table",
        (29, 12, 12, 8),
    ),
    "Problem sessions, latest 100": ("problem_sessions.sql", "table", (37, 0, 24, 8)),
    "Bots: users flagged, by last seen": ("bots.sql", "table", (45, 0, 16, 7)),
    "Active sessions now (last 5 minutes)": ("active_sessions.sql", "table", (45, 16, 8, 7)),
    "Alerts: firing now, then the last 7 days": ("alerts.sql", "table", (52, 0, 24, 7)),
}
# The dashboard they make on a fresh Metabase: (dashcard id, card id, row, col, w, h).
EXPECTED_DASHCARDS = [
    (n, n, *layout) for n, (_, _, layout) in enumerate(EXPECTED_CARDS.values(), 1)
]
FIRST_RUN_ACTIONS = [
    "set up Metabase: first admin user and site name 'Clickstream'",
    "created database connection 'Clickstream ClickHouse' (id 2)",
    *(f"created card {name!r} (id {n})" for n, name in enumerate(EXPECTED_CARDS, 1)),
    "created dashboard 'Clickstream live' (id 1)",
    "updated dashboard 'Clickstream live' (id 1): cards",
]
OBFUSCATED = "**MetabasePass**"


# ------------------------------------------------------------------------- the fake


class FakeError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def non_blank(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class FakeMetabase:
    """Just enough of Metabase's REST API, with state, to provision against.

    Shapes follow Metabase 0.54: ``GET /api/database`` and ``GET /api/search`` wrap their
    lists in ``data``, stored passwords come back as ``**MetabasePass**``, ``POST`` and
    ``PUT /api/database`` test the connection (against ``clickhouse``, the ClickHouse
    servers this fake can "reach") and answer 400 when it fails, ``PUT /api/database/:id``
    merges the details sent into the stored ones, a card's description is null or
    non-blank, ``PUT /api/dashboard/:id`` takes the full ``dashcards`` list (negative ids
    create, missing ones are deleted), a fresh instance already holds the "Sample
    Database" (id 1). ``GET /api/dashboard`` (the list, deprecated) is not served: the
    module must find its dashboard through search.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.setup_token = "5e7a0c52-fake-setup-token"
        self.user: dict[str, str] | None = None
        self.site_name: str | None = None
        self.sessions: set[str] = set()
        # (host, port) -> {user: password}: what a connection test can reach.
        self.clickhouse: dict[tuple[str, int], dict[str, str]] = {
            ("clickhouse", 8123): {"metabase": CLICKHOUSE_PASSWORD}
        }
        self.databases: dict[int, dict[str, Any]] = {
            1: {
                "id": 1,
                "name": "Sample Database",
                "engine": "h2",
                "details": {"db": "zip:/app/metabase.jar!/sample-database.db"},
                "is_sample": True,
            }
        }
        self.tables: dict[int, dict[str, Any]] = {}
        self.cards: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[int, dict[str, Any]] = {}
        self.dashcards: dict[int, dict[str, Any]] = {}
        self.next_ids = {"database": 2, "table": 1, "card": 1, "dashboard": 1, "dashcard": 1}
        self.requests: list[tuple[str, str, Any]] = []
        self.failures: dict[tuple[str, str], tuple[int, Any]] = {}

    # -- helpers the tests use

    def complete_setup(self, email: str, password: str) -> None:
        """State of a Metabase someone already set up by hand."""
        self.user = {"email": email, "password": password}
        self.site_name = "Set up by hand"

    def sync(self, database_id: int, names: list[str]) -> None:
        """What Metabase's background sync does after a connection is added: find tables."""
        for name in names:
            table_id = self._new_id("table")
            self.tables[table_id] = {
                "id": table_id,
                "db_id": database_id,
                "schema": "clickstream",
                "name": name,
                "visibility_type": None,
            }

    def fail(self, method: str, path: str, status: int, body: Any) -> None:
        self.failures[(method, path)] = (status, body)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m in ("POST", "PUT", "DELETE")]

    def body_of(self, method: str, path: str) -> Any:
        bodies = [b for m, p, b in self.requests if (m, p) == (method, path)]
        assert len(bodies) == 1, f"{method} {path} was called {len(bodies)} times"
        return bodies[0]

    def dashcard_layout(self, dashboard_id: int) -> list[tuple[int, int, int, int, int, int]]:
        return sorted(
            (d["id"], d["card_id"], d["row"], d["col"], d["size_x"], d["size_y"])
            for d in self.dashcards.values()
            if d["dashboard_id"] == dashboard_id
        )

    def _new_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] += 1
        return value

    # -- request handling

    def handle(self, method: str, raw_path: str, headers: Any, body: Any) -> tuple[int, Any]:
        url = urlparse(raw_path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        with self.lock:
            self.requests.append((method, path, body))
            if (method, path) in self.failures:
                return self.failures[(method, path)]
            try:
                return 200, self._route(method, path, query, headers, body)
            except FakeError as exc:
                return exc.status, exc.body

    def _route(self, method: str, path: str, query: dict, headers: Any, body: Any) -> Any:
        if (method, path) == ("GET", "/api/health"):
            return {"status": "ok"}
        if (method, path) == ("GET", "/api/session/properties"):
            return {
                "setup-token": self.setup_token,
                "has-user-setup": self.user is not None,
                "site-name": self.site_name,
            }
        if (method, path) == ("POST", "/api/setup"):
            return self._setup(body)
        if (method, path) == ("POST", "/api/session"):
            return self._login(body)
        if headers.get("X-Metabase-Session") not in self.sessions:
            raise FakeError(401, "Unauthenticated")

        parts = path.strip("/").split("/")  # ["api", kind] or ["api", kind, id]
        kind = parts[1] if len(parts) > 1 else ""
        item_id = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else None
        if kind == "database":
            return self._database(method, item_id, body)
        if kind == "table":
            return self._table(method, item_id, body)
        if kind == "card":
            return self._card(method, item_id, query, body)
        if kind == "dashboard" and (item_id is not None or method == "POST"):
            return self._dashboard(method, item_id, body)
        if (method, kind) == ("GET", "search"):
            return self._search(query)
        raise FakeError(404, "API endpoint does not exist.")

    def _session(self) -> dict[str, str]:
        session = f"session-{len(self.sessions) + 1}"
        self.sessions.add(session)
        return {"id": session}

    def _setup(self, body: dict) -> dict[str, str]:
        if body.get("token") != self.setup_token:
            raise FakeError(400, {"errors": {"token": "Token does not match the setup token."}})
        if self.user is not None:
            raise FakeError(
                403,
                {
                    "message": "The /api/setup route can only be used to create the first "
                    "user, however a user currently exists."
                },
            )
        user, prefs = body.get("user") or {}, body.get("prefs") or {}
        if not user.get("email") or not user.get("password") or not prefs.get("site_name"):
            raise FakeError(400, {"errors": {"user": "email and password, prefs: site_name"}})
        self.user = {"email": user["email"], "password": user["password"]}
        self.site_name = prefs["site_name"]
        return self._session()

    def _login(self, body: dict) -> dict[str, str]:
        if self.user is None or body != {
            "username": self.user["email"],
            "password": self.user["password"],
        }:
            raise FakeError(401, {"errors": {"password": "did not match stored password"}})
        return self._session()

    def _public_database(self, database: dict) -> dict:
        details = dict(database["details"])
        if "password" in details:
            details["password"] = OBFUSCATED
        return {**database, "details": details}

    def _test_connection(self, details: dict) -> None:
        """Metabase's test-database-connection: a 400 with its message when it fails."""
        host, port = details.get("host"), details.get("port")
        users = self.clickhouse.get((host, port))
        if users is None:
            raise FakeError(
                400,
                {
                    "message": f"Host '{host}' is not reachable",
                    "errors": {"host": "check your host settings"},
                },
            )
        if users.get(details.get("user")) != details.get("password"):
            raise FakeError(
                400,
                {
                    "message": f"Connection to '{host}:{port}' successful, but could not "
                    "connect to DB."
                },
            )

    def _database(self, method: str, item_id: int | None, body: Any) -> Any:
        if method == "GET" and item_id is None:
            data = [self._public_database(d) for d in self.databases.values()]
            return {"data": data, "total": len(data)}
        if method == "POST" and item_id is None:
            if not body.get("name") or body.get("engine") not in ("clickhouse", "h2", "postgres"):
                raise FakeError(400, {"errors": {"engine": "value must be a valid engine."}})
            if not isinstance(body.get("details"), dict):
                raise FakeError(400, {"errors": {"details": "value must be a map."}})
            self._test_connection(body["details"])
            new_id = self._new_id("database")
            self.databases[new_id] = {
                "id": new_id,
                "name": body["name"],
                "engine": body["engine"],
                "details": dict(body["details"]),
                "is_sample": False,
            }
            return self._public_database(self.databases[new_id])
        database = self.databases.get(item_id)  # type: ignore[arg-type]
        if database is None:
            raise FakeError(404, "Not found.")
        if method == "GET":
            return self._public_database(database)
        if method == "PUT":
            details = database["details"]
            if "details" in body:
                # upsert-sensitive-fields: the stored details, with those sent on top, and
                # the obfuscated password standing for the stored one.
                details = {**database["details"], **body["details"]}
                if details.get("password") == OBFUSCATED:
                    details["password"] = database["details"].get("password")
            engine = body.get("engine", database["engine"])
            if details != database["details"] or engine != database["engine"]:
                self._test_connection(details)
            database.update(name=body.get("name", database["name"]), engine=engine, details=details)
            return self._public_database(database)
        raise FakeError(405, "Method not allowed")

    def _table(self, method: str, item_id: int | None, body: Any) -> Any:
        if method == "GET" and item_id is None:
            return list(self.tables.values())
        table = self.tables.get(item_id)  # type: ignore[arg-type]
        if table is None:
            raise FakeError(404, "Not found.")
        if method == "PUT":
            if body.get("visibility_type") not in (None, "hidden", "technical", "cruft"):
                raise FakeError(400, {"errors": {"visibility_type": "invalid"}})
            table["visibility_type"] = body.get("visibility_type")
            return table
        raise FakeError(405, "Method not allowed")

    def _check_description(self, body: dict) -> None:
        # POST and PUT /api/card: description [:maybe ms/NonBlankString].
        if body.get("description") is not None and not non_blank(body["description"]):
            raise FakeError(
                400, {"errors": {"description": "nullable value must be a non-blank string."}}
            )

    def _card(self, method: str, item_id: int | None, query: dict, body: Any) -> Any:
        if method == "GET" and item_id is None:
            assert query.get("f") == ["all"], query
            return [c for c in self.cards.values() if not c["archived"]]
        if method == "POST" and item_id is None:
            for key, kind in (
                ("name", str),
                ("display", str),
                ("dataset_query", dict),
                ("visualization_settings", dict),
            ):
                if not isinstance(body.get(key), kind) or (kind is str and not body[key]):
                    raise FakeError(400, {"errors": {key: f"value must be a {kind.__name__}."}})
            self._check_description(body)
            self._check_query(body["dataset_query"])
            new_id = self._new_id("card")
            self.cards[new_id] = {
                "id": new_id,
                "name": body["name"],
                "type": body.get("type", "question"),
                "description": body.get("description"),
                "display": body["display"],
                "visualization_settings": body["visualization_settings"],
                "dataset_query": body["dataset_query"],
                "collection_id": body.get("collection_id"),
                "archived": False,
            }
            return self.cards[new_id]
        card = self.cards.get(item_id)  # type: ignore[arg-type]
        if card is None:
            raise FakeError(404, "Not found.")
        if method == "PUT":
            self._check_description(body)
            if "dataset_query" in body:
                self._check_query(body["dataset_query"])
            for key in ("name", "description", "display", "visualization_settings"):
                if key in body:
                    card[key] = body[key]
            if "dataset_query" in body:
                card["dataset_query"] = body["dataset_query"]
            return card
        raise FakeError(405, "Method not allowed")

    def _check_query(self, dataset_query: dict) -> None:
        if dataset_query.get("database") not in self.databases:
            raise FakeError(400, {"message": "Database does not exist."})
        if dataset_query.get("type") != "native" or not dataset_query["native"].get("query"):
            raise FakeError(400, {"message": "Only native queries in this fake."})

    def _search(self, query: dict) -> dict:
        # GET /api/search: q matches loosely (here: a case-insensitive substring), models
        # filters, archived items only when asked.
        words = (query.get("q") or [""])[0].lower()
        models = query.get("models") or ["dashboard", "card"]
        archived = (query.get("archived") or ["false"])[0] == "true"
        found = [
            {"model": "dashboard", "id": d["id"], "name": d["name"], "archived": d["archived"]}
            for d in self.dashboards.values()
            if "dashboard" in models
        ] + [
            {"model": "card", "id": c["id"], "name": c["name"], "archived": c["archived"]}
            for c in self.cards.values()
            if "card" in models
        ]
        data = [r for r in found if words in r["name"].lower() and r["archived"] == archived]
        return {"data": data, "total": len(data), "models": models}

    def _dashboard(self, method: str, item_id: int | None, body: Any) -> Any:
        if method == "POST" and item_id is None:
            if not body.get("name"):
                raise FakeError(400, {"errors": {"name": "value must be a non-blank string."}})
            new_id = self._new_id("dashboard")
            self.dashboards[new_id] = {
                "id": new_id,
                "name": body["name"],
                "description": body.get("description"),
                "archived": False,
            }
            return self.dashboards[new_id]
        dashboard = self.dashboards.get(item_id)  # type: ignore[arg-type]
        if dashboard is None:
            raise FakeError(404, "Not found.")
        if method == "GET":
            cards = [d for d in self.dashcards.values() if d["dashboard_id"] == item_id]
            return {**dashboard, "dashcards": cards, "tabs": []}
        if method == "PUT":
            if "description" in body:
                dashboard["description"] = body["description"]
            if "dashcards" in body:
                self._replace_dashcards(item_id, body["dashcards"])  # type: ignore[arg-type]
            return dashboard
        raise FakeError(405, "Method not allowed")

    def _replace_dashcards(self, dashboard_id: int, wanted: list[dict]) -> None:
        ids = [d.get("id") for d in wanted]
        if len(ids) != len(set(ids)):
            raise FakeError(400, {"errors": {"dashcards": "ids must be unique"}})
        current = {k for k, d in self.dashcards.items() if d["dashboard_id"] == dashboard_id}
        for item in wanted:
            for key in ("size_x", "size_y"):
                if not isinstance(item.get(key), int) or item[key] < 1:
                    raise FakeError(400, {"errors": {key: "value must be a positive integer."}})
            for key in ("row", "col"):
                if not isinstance(item.get(key), int) or item[key] < 0:
                    raise FakeError(400, {"errors": {key: "value must be >= 0."}})
            if item.get("card_id") not in self.cards:
                raise FakeError(404, {"message": f"Card {item.get('card_id')} does not exist."})
            if item["id"] >= 0 and item["id"] not in current:
                raise FakeError(400, {"message": f"Dashcard {item['id']} is not on this one."})
        for stale in current - set(ids):
            del self.dashcards[stale]
        for item in wanted:
            dashcard_id = item["id"] if item["id"] >= 0 else self._new_id("dashcard")
            self.dashcards[dashcard_id] = {
                "id": dashcard_id,
                "dashboard_id": dashboard_id,
                "card_id": item["card_id"],
                "row": item["row"],
                "col": item["col"],
                "size_x": item["size_x"],
                "size_y": item["size_y"],
            }


def _serve(fake: FakeMetabase) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = fake.handle(self.command, self.path, self.headers, body)
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[tuple[FakeMetabase, str]]:
    metabase = FakeMetabase()
    server = _serve(metabase)
    try:
        yield metabase, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------- running the module directly


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    """A private copy of the query files, as the role installs them on the host."""
    copy = tmp_path / "install" / "queries"
    shutil.copytree(QUERIES, copy)
    return copy


@pytest.fixture
def args(tmp_path: Path, queries: Path, fake: tuple[FakeMetabase, str]) -> dict[str, Any]:
    """The module's arguments as tasks/provision.yml passes them, from the role's defaults."""
    _, url = fake
    return {
        "api_url": url,
        "public_url": "http://localhost:3000",
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "admin_first_name": DEFAULTS["metabase_admin_first_name"],
        "admin_last_name": DEFAULTS["metabase_admin_last_name"],
        "site_name": DEFAULTS["metabase_site_name"],
        "site_locale": DEFAULTS["metabase_site_locale"],
        "connection": {
            "name": DEFAULTS["metabase_clickhouse_connection_name"],
            "host": DEFAULTS["metabase_clickhouse_host"],
            "port": DEFAULTS["metabase_clickhouse_port"],
            "user": DEFAULTS["metabase_clickhouse_user"],
            "password": CLICKHOUSE_PASSWORD,
            "dbname": DEFAULTS["metabase_clickhouse_database"],
            "ssl": DEFAULTS["metabase_clickhouse_ssl"],
        },
        "queries_dir": str(queries),
        "state_file": str(tmp_path / "state" / "provision-state.json"),
        "cards": copy.deepcopy(DEFAULTS["metabase_cards"]),
        "dashboard_name": DEFAULTS["metabase_dashboard_name"],
        "dashboard_description": DEFAULTS["metabase_dashboard_description"],
        "refresh_seconds": DEFAULTS["metabase_dashboard_refresh_seconds"],
        "hidden_tables": DEFAULTS["metabase_hidden_tables"],
    }


def run(args: dict[str, Any], *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run the module as Ansible does: its arguments in a file, its result JSON on stdout."""
    args_file = Path(args["queries_dir"]).parent / "args.json"
    flags = {"_ansible_check_mode": check, "_ansible_diff": diff}
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, **flags}}))
    result = subprocess.run(
        [sys.executable, str(MODULE), str(args_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_no_secret_printed(result)
    report = json.loads(result.stdout)
    assert result.returncode == (1 if report.get("failed") else 0), result.stderr
    return report


# ----------------------------------------------------- through the real ansible-playbook


@pytest.fixture
def playbook(tmp_path: Path, queries: Path, fake: tuple[FakeMetabase, str]):
    """ansible-playbook running the role's tasks/provision.yml on localhost, at the fake."""
    _, url = fake
    play = tmp_path / "provision.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Provision Metabase",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Run the role's provisioning",
                            "ansible.builtin.include_role": {
                                "name": "metabase",
                                "tasks_from": "provision.yml",
                            },
                        }
                    ],
                }
            ]
        )
    )
    variables = tmp_path / "vars.json"

    def ansible_playbook(*options: str, **overrides: Any) -> subprocess.CompletedProcess:
        variables.write_text(
            json.dumps(
                {
                    "metabase_api_url": url,
                    "metabase_install_dir": str(queries.parent),
                    "metabase_state_dir": str(tmp_path / "state"),
                    "metabase_admin_email": ADMIN_EMAIL,
                    "metabase_admin_password": ADMIN_PASSWORD,
                    "metabase_clickhouse_password": CLICKHOUSE_PASSWORD,
                    "metabase_health_retries": 1,
                    "ansible_python_interpreter": sys.executable,
                    **overrides,
                }
            )
        )
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        )
        result = subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                f"@{variables}",
                *options,
                str(play),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )
        assert_no_secret_printed(result)
        return result

    return ansible_playbook


def recap(result: subprocess.CompletedProcess) -> dict[str, int]:
    line = re.search(r"^localhost\s+:\s+(.*)$", result.stdout, re.MULTILINE)
    assert line, result.stdout + result.stderr
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line.group(1))}


def test_playbook_provisions_then_a_second_run_changes_nothing(
    fake: tuple[FakeMetabase, str], playbook: Any
) -> None:
    metabase, _ = fake
    first = playbook()
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["changed"] == 1
    assert "http://localhost:3000/dashboard/1#refresh=15 (through the SSH tunnel" in first.stdout
    assert len(metabase.cards) == len(EXPECTED_CARDS)
    assert metabase.dashcard_layout(1) == EXPECTED_DASHCARDS
    writes_before = len(metabase.writes())

    second = playbook()

    assert second.returncode == 0, second.stdout + second.stderr
    assert (recap(second)["changed"], recap(second)["failed"]) == (0, 0)
    assert "http://localhost:3000/dashboard/1#refresh=15" in second.stdout
    # The only write of the second run is the login.
    assert metabase.writes()[writes_before:] == [("POST", "/api/session")]


def test_playbook_check_mode_writes_nothing_and_reports_changed(
    fake: tuple[FakeMetabase, str], playbook: Any
) -> None:
    metabase, _ = fake
    result = playbook("--check", "-v")

    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result)["changed"] == 1
    # A fresh Metabase: without a user there is nothing to log in to, so nothing is
    # written at all, not even a session.
    assert metabase.writes() == []
    assert metabase.user is None
    assert "would set up Metabase: first admin user and site name 'Clickstream'" in result.stdout
    assert "would create dashboard 'Clickstream live'" in result.stdout


def test_playbook_check_mode_on_a_provisioned_metabase_only_logs_in(
    fake: tuple[FakeMetabase, str], playbook: Any, queries: Path
) -> None:
    metabase, _ = fake
    assert playbook().returncode == 0
    (queries / "bots.sql").write_text((queries / "bots.sql").read_text() + "-- changed\n")
    writes_before = len(metabase.writes())
    before = copy.deepcopy(metabase.cards)

    result = playbook("--check", "-v")

    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result)["changed"] == 1
    assert "would update card 'Bots: users flagged, by last seen' (id 10): query" in result.stdout
    assert metabase.writes()[writes_before:] == [("POST", "/api/session")]
    assert metabase.cards == before


def test_playbook_diff_shows_the_fields_of_a_card_that_change(
    fake: tuple[FakeMetabase, str], playbook: Any
) -> None:
    metabase, _ = fake
    assert playbook().returncode == 0
    cards = copy.deepcopy(DEFAULTS["metabase_cards"])
    cards[3]["display"] = "line"
    cards[3]["visualization_settings"] = {"graph.dimensions": ["minute"]}

    result = playbook("--diff", metabase_cards=cards)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "--- before: card 'Pipeline health, last hour' (id 4)\n"
        "+++ after: card 'Pipeline health, last hour' (id 4)\n"
        "@@ -1,2 +1,2 @@\n"
        "-display: table\n"
        "-visualization_settings: {}\n"
        "+display: line\n"
        '+visualization_settings: {"graph.dimensions": ["minute"]}\n'
    ) in result.stdout
    assert metabase.cards[4]["display"] == "line"


def test_playbook_api_error_fails_the_task_naming_the_call_without_secrets(
    fake: tuple[FakeMetabase, str], playbook: Any
) -> None:
    # Metabase's validation errors can quote request fields: one quoting the ClickHouse
    # password. The playbook runs with -vvv, which prints the module's whole result and the
    # arguments it was given; playbook() asserts no secret reaches stdout or stderr.
    metabase, _ = fake
    metabase.fail("POST", "/api/card", 500, {"message": f"locked by {CLICKHOUSE_PASSWORD}"})

    result = playbook("-vvv")

    assert result.returncode == 2
    assert recap(result)["failed"] == 1
    assert '"msg": "POST /api/card failed: HTTP 500: locked by ***"' in result.stdout
    # The arguments are printed, the secret ones (no_log) as Ansible hides them.
    assert '"admin_password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"' in result.stdout
    assert '"api_url": "http://127.0.0.1:' in result.stdout
    assert metabase.cards == {}


# ------------------------------------------------------------------------- the module


def test_first_run_sets_up_metabase_and_creates_connection_cards_and_dashboard(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    report = run(args)

    assert report["changed"] is True
    assert report["actions"] == FIRST_RUN_ACTIONS
    assert report["database_id"] == 2
    assert report["card_ids"] == {name: n for n, name in enumerate(EXPECTED_CARDS, 1)}
    assert report["dashboard_id"] == 1
    assert report["dashboard_url"] == "http://localhost:3000/dashboard/1#refresh=15"

    # Setup: the first user from the secrets, the site settings in prefs (0.54's setup
    # takes no site name in the user).
    assert metabase.user == {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    assert metabase.body_of("POST", "/api/setup") == {
        "token": "5e7a0c52-fake-setup-token",
        "user": {
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "first_name": "Clickstream",
            "last_name": "Admin",
        },
        "prefs": {"site_name": "Clickstream", "site_locale": "en"},
    }

    # One connection beside the sample database, with the details the role sets.
    assert sorted(metabase.databases) == [1, 2]
    assert metabase.databases[2] == {
        "id": 2,
        "name": "Clickstream ClickHouse",
        "engine": "clickhouse",
        "details": {
            "host": "clickhouse",
            "port": 8123,
            "user": "metabase",
            "dbname": "clickstream",
            "ssl": False,
            "password": CLICKHOUSE_PASSWORD,
        },
        "is_sample": False,
    }

    # Native cards whose SQL is the repository's query file, byte for byte.
    assert len(metabase.cards) == len(EXPECTED_CARDS)
    for card_id, (name, (query_file, display, _)) in enumerate(EXPECTED_CARDS.items(), 1):
        card = metabase.cards[card_id]
        assert card["name"] == name
        assert card["display"] == display
        assert card["dataset_query"] == {
            "type": "native",
            "native": {"query": (QUERIES / query_file).read_text(), "template-tags": {}},
            "database": 2,
        }
    assert metabase.cards[1]["description"] == (
        "Clicks per page in the last complete minute and the running one."
    )
    assert metabase.cards[1]["visualization_settings"] == {
        "graph.dimensions": ["page_url"],
        "graph.metrics": ["clicks"],
    }
    assert metabase.cards[2]["visualization_settings"] == {
        "graph.dimensions": ["minute", "page_url"],
        "graph.metrics": ["clicks"],
    }
    assert metabase.cards[6]["visualization_settings"] == {
        "graph.dimensions": ["minute"],
        "graph.metrics": ["unique_visitors", "unique_visitors_without_bot_agents"],
    }
    assert metabase.cards[7]["visualization_settings"] == {
        "graph.dimensions": ["step_name"],
        "graph.metrics": ["sessions"],
    }

    # One dashboard holding every card at its place on the 24-column grid.
    assert [d["name"] for d in metabase.dashboards.values()] == ["Clickstream live"]
    assert metabase.dashcard_layout(1) == EXPECTED_DASHCARDS
    # Found again through search, not the deprecated dashboard list.
    assert ("GET", "/api/search") in [(m, p) for m, p, _ in metabase.requests]
    assert ("GET", "/api/dashboard") not in [(m, p) for m, p, _ in metabase.requests]
    state = Path(args["state_file"])
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_second_run_creates_nothing_and_reports_unchanged(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    writes_before = len(metabase.writes())

    report = run(args)

    assert report["changed"] is False
    assert report["actions"] == []
    assert report["dashboard_url"] == "http://localhost:3000/dashboard/1#refresh=15"
    # The only write of the second run is the login.
    assert metabase.writes()[writes_before:] == [("POST", "/api/session")]
    assert len(metabase.databases) == 2
    assert len(metabase.cards) == len(EXPECTED_CARDS)
    assert len(metabase.dashboards) == 1
    assert metabase.dashcard_layout(1) == EXPECTED_DASHCARDS


def test_changed_query_file_updates_its_card_in_place(
    fake: tuple[FakeMetabase, str], args: dict[str, Any], queries: Path
) -> None:
    metabase, _ = fake
    run(args)
    query_file = queries / "rejected_by_reason.sql"
    new_sql = query_file.read_text().replace("INTERVAL 1 HOUR", "INTERVAL 2 HOUR")
    assert new_sql != query_file.read_text()
    query_file.write_text(new_sql)

    report = run(args)

    assert report["changed"] is True
    assert report["actions"] == [
        "updated card 'Rejected events by reason, last hour' (id 3): query",
    ]
    assert metabase.cards[3]["dataset_query"]["native"]["query"] == new_sql
    assert sorted(metabase.cards) == list(range(1, len(EXPECTED_CARDS) + 1))
    # The dashboard still shows the same card through the same dashcard.
    assert metabase.dashcard_layout(1)[2] == (3, 3, 8, 0, 12, 7)


def test_changed_display_and_settings_update_the_card_in_place(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    health = args["cards"][3]
    assert health["name"] == "Pipeline health, last hour"
    health["display"] = "line"
    health["visualization_settings"] = {"graph.dimensions": ["minute"]}

    report = run(args, diff=True)

    assert report["actions"] == [
        "updated card 'Pipeline health, last hour' (id 4): display, visualization_settings",
    ]
    assert report["diff"] == [
        {
            "before_header": "card 'Pipeline health, last hour' (id 4)",
            "after_header": "card 'Pipeline health, last hour' (id 4)",
            "before": "display: table\nvisualization_settings: {}\n",
            "after": 'display: line\nvisualization_settings: {"graph.dimensions": ["minute"]}\n',
        }
    ]
    assert metabase.cards[4]["display"] == "line"
    assert metabase.cards[4]["visualization_settings"] == {"graph.dimensions": ["minute"]}
    assert sorted(metabase.cards) == list(range(1, len(EXPECTED_CARDS) + 1))


def test_diff_of_a_changed_query_shows_the_sql_lines(
    fake: tuple[FakeMetabase, str], args: dict[str, Any], queries: Path
) -> None:
    run(args)
    old_sql = (queries / "bots.sql").read_text()
    (queries / "bots.sql").write_text(old_sql + "-- reviewed\n")

    report = run(args, check=True, diff=True)

    assert report["actions"] == [
        "would update card 'Bots: users flagged, by last seen' (id 10): query"
    ]
    [diff] = report["diff"]
    assert diff["before"] == "query:\n" + old_sql.rstrip("\n") + "\n"
    assert diff["after"] == "query:\n" + old_sql + "-- reviewed\n"


def test_blank_description_is_sent_as_null_which_metabase_accepts(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    # Metabase refuses a blank card description (400); none at all is null.
    metabase, _ = fake
    args["cards"][0]["description"] = "   "
    del args["cards"][1]["description"]

    assert run(args)["changed"] is True

    assert metabase.cards[1]["description"] is None
    assert metabase.cards[2]["description"] is None
    assert run(args)["actions"] == []


def test_already_set_up_metabase_skips_setup_and_logs_in(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    metabase.complete_setup(ADMIN_EMAIL, ADMIN_PASSWORD)

    report = run(args)

    assert [p for m, p, _ in metabase.requests if m == "POST"][:1] == ["/api/session"]
    assert ("POST", "/api/setup") not in metabase.writes()
    assert metabase.body_of("POST", "/api/session") == {
        "username": ADMIN_EMAIL,
        "password": ADMIN_PASSWORD,
    }
    assert metabase.site_name == "Set up by hand"
    assert report["actions"] == FIRST_RUN_ACTIONS[1:]


def test_api_error_fails_with_a_message_naming_the_call(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    metabase.fail("POST", "/api/card", 500, {"message": "Card table is locked"})

    report = run(args)

    assert report["failed"] is True
    assert report["msg"] == "POST /api/card failed: HTTP 500: Card table is locked"
    # What happened before the failure is still reported, so Ansible shows it changed.
    assert report["changed"] is True
    assert report["actions"] == FIRST_RUN_ACTIONS[:2]
    assert metabase.cards == {}
    assert metabase.dashboards == {}


def test_wrong_admin_password_fails_on_login_without_printing_it(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    metabase.complete_setup(ADMIN_EMAIL, "the-password-someone-changed-by-hand")

    report = run(args)

    assert report["msg"] == (
        'POST /api/session failed: HTTP 401: {"password": "did not match stored password"}'
    )
    assert metabase.databases.keys() == {1}


def test_error_bodies_echoing_a_secret_are_scrubbed(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    # Metabase's validation errors can quote request fields; simulate one quoting the
    # ClickHouse password. run() also asserts no secret reaches stdout or stderr.
    metabase, _ = fake
    metabase.fail(
        "POST", "/api/database", 400, {"message": f"cannot connect with {CLICKHOUSE_PASSWORD}"}
    )

    report = run(args)

    assert report["msg"] == "POST /api/database failed: HTTP 400: cannot connect with ***"


def test_unreachable_metabase_names_the_call_and_the_address(args: dict[str, Any]) -> None:
    args["api_url"] = "http://127.0.0.1:9"  # discard port: nothing listens

    report = run(args)

    assert report["msg"].startswith(
        "GET /api/session/properties failed: cannot reach Metabase at http://127.0.0.1:9: "
    )
    assert report["changed"] is False


def test_waiting_for_a_metabase_that_never_answers_names_the_health_call(
    args: dict[str, Any],
) -> None:
    args.update(api_url="http://127.0.0.1:9", wait_timeout=1)

    report = run(args)

    assert report["msg"].startswith(
        "GET /api/health failed: cannot reach Metabase at http://127.0.0.1:9: "
    )


def test_a_wrong_clickhouse_password_is_refused_by_metabases_connection_test(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    metabase.clickhouse[("clickhouse", 8123)]["metabase"] = "the-one-clickhouse-has"

    report = run(args)

    assert report["msg"] == (
        "POST /api/database failed: HTTP 400: Connection to 'clickhouse:8123' successful, "
        "but could not connect to DB."
    )
    assert sorted(metabase.databases) == [1]
    assert not Path(args["state_file"]).exists()


def test_an_unreachable_clickhouse_host_is_refused_on_update_and_nothing_is_remembered(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    state_before = Path(args["state_file"]).read_text()
    args["connection"]["host"] = "clickhouse-gone"

    report = run(args)

    assert (
        report["msg"]
        == "PUT /api/database/2 failed: HTTP 400: Host 'clickhouse-gone' is not reachable"
    )
    assert metabase.databases[2]["details"]["host"] == "clickhouse"
    assert Path(args["state_file"]).read_text() == state_before


def test_changed_connection_details_and_rotated_password_update_the_database(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    # An option set by hand in Metabase's UI: the update keeps it (Metabase merges details).
    metabase.databases[2]["details"]["clickhouse-settings"] = "max_result_rows=1000"
    rotated = "ch-Rotated-5150"
    metabase.clickhouse[("clickhouse-2", 8123)] = {"metabase": rotated}
    args["connection"].update(host="clickhouse-2", password=rotated)

    report = run(args)

    assert report["actions"] == [
        "updated database connection 'Clickstream ClickHouse' (id 2): host, password",
    ]
    assert metabase.databases[2]["details"] == {
        "host": "clickhouse-2",
        "port": 8123,
        "user": "metabase",
        "dbname": "clickstream",
        "ssl": False,
        "password": rotated,
        "clickhouse-settings": "max_result_rows=1000",
    }
    assert sorted(metabase.databases) == [1, 2]
    # Same password again: nothing to do (the fingerprint in the state file matches).
    assert run(args)["actions"] == []


def test_parameterised_views_are_hidden_from_the_sync_once_it_found_them(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    # Metabase's first sync, in the background after the connection was added.
    metabase.sync(2, ["page_clicks_latest", "top_pages", "funnel_last", "unique_visitors_last"])
    metabase.sync(1, ["top_pages"])  # the sample database's table of that name stays

    report = run(args)

    assert report["actions"] == [
        "hid table 'top_pages' (id 2) from Metabase's sync",
        "hid table 'funnel_last' (id 3) from Metabase's sync",
        "hid table 'unique_visitors_last' (id 4) from Metabase's sync",
    ]
    assert {
        t["name"]: t["visibility_type"] for t in metabase.tables.values() if t["db_id"] == 2
    } == {
        "page_clicks_latest": None,
        "top_pages": "hidden",
        "funnel_last": "hidden",
        "unique_visitors_last": "hidden",
    }
    assert metabase.tables[5]["visibility_type"] is None
    assert run(args)["actions"] == []


def test_the_hidden_tables_are_the_parameterised_views_the_migrations_create() -> None:
    # A parameterised view takes {name:Type} parameters; Metabase's sync fails on them.
    views = set()
    for migration in sorted((REPO / "app" / "sql").glob("*.sql")):
        for statement in migration.read_text().split(";"):
            created = re.search(r"CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?(\w+)", statement)
            if created and re.search(r"\{\w+:\w+\}", statement):
                views.add(created.group(1))
    assert sorted(DEFAULTS["metabase_hidden_tables"]) == sorted(views)


def _move_a_card(metabase: FakeMetabase) -> None:
    metabase.dashcards[2].update(row=20, col=0)


def _add_a_card(metabase: FakeMetabase) -> None:
    free = len(EXPECTED_CARDS) + 1  # the next card id and the next dashcard id
    metabase.cards[free] = {**metabase.cards[1], "id": free, "name": "Scratch"}
    metabase.dashcards[free] = {**metabase.dashcards[1], "id": free, "card_id": free, "row": 60}


def _show_a_card_twice(metabase: FakeMetabase) -> None:
    # Same card, same place: the set of positions is unchanged, only the count differs.
    free = len(EXPECTED_DASHCARDS) + 1
    metabase.dashcards[free] = {**metabase.dashcards[1], "id": free}


def _remove_a_card(metabase: FakeMetabase) -> None:
    del metabase.dashcards[4]


@pytest.mark.parametrize("edit", [_move_a_card, _add_a_card, _show_a_card_twice, _remove_a_card])
def test_dashboard_edited_by_hand_is_put_back(
    fake: tuple[FakeMetabase, str], args: dict[str, Any], edit: Any
) -> None:
    metabase, _ = fake
    run(args)
    edit(metabase)
    assert metabase.dashcard_layout(1) != EXPECTED_DASHCARDS

    report = run(args)

    assert report["actions"] == ["updated dashboard 'Clickstream live' (id 1): cards"]
    layout = metabase.dashcard_layout(1)
    # Dashcards that survived keep their ids; a re-added one gets the next free id.
    ids = [row[0] for row in EXPECTED_DASHCARDS]
    removed = [i for i in ids if i != 4] + [len(ids) + 1]  # dashcard 4 back as a new one
    expected_ids = removed if edit is _remove_a_card else ids
    assert [row[0] for row in layout] == expected_ids
    assert sorted(row[1:] for row in layout) == [row[1:] for row in EXPECTED_DASHCARDS]


def test_check_mode_reports_what_a_run_would_do_and_writes_nothing_but_the_login(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    run(args)
    metabase.dashcards[2].update(row=20, col=0)
    args["connection"]["port"] = 9000
    metabase.clickhouse[("clickhouse", 9000)] = {"metabase": CLICKHOUSE_PASSWORD}
    writes_before = len(metabase.writes())

    report = run(args, check=True)

    assert report["changed"] is True
    assert report["actions"] == [
        "would update database connection 'Clickstream ClickHouse' (id 2): port",
        "would update dashboard 'Clickstream live' (id 1): cards",
    ]
    assert metabase.writes()[writes_before:] == [("POST", "/api/session")]
    assert metabase.databases[2]["details"]["port"] == 8123


def test_check_mode_on_a_fresh_metabase_plans_everything_without_any_write(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    report = run(args, check=True)

    assert report["actions"] == [
        "would set up Metabase: first admin user and site name 'Clickstream'",
        "would create database connection 'Clickstream ClickHouse'",
        *(f"would create card {name!r}" for name in EXPECTED_CARDS),
        "would create dashboard 'Clickstream live'",
    ]
    assert metabase.writes() == []
    assert report["dashboard_url"] is None


def test_duplicate_card_names_are_refused_before_any_call(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    args["cards"][1]["name"] = args["cards"][0]["name"]

    report = run(args)

    assert report["msg"] == "card names must be unique; twice: Clicks per page, last minute"
    assert metabase.requests == []


def test_a_card_without_its_layout_is_refused_by_the_argument_spec(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    del args["cards"][2]["layout"]["size_y"]

    report = run(args)

    assert report["msg"] == ("missing required arguments: size_y found in cards -> layout")
    assert metabase.requests == []


def test_missing_query_file_fails_before_anything_is_written(
    fake: tuple[FakeMetabase, str], args: dict[str, Any], queries: Path
) -> None:
    metabase, _ = fake
    (queries / "pipeline_health.sql").unlink()

    report = run(args)

    assert report["msg"] == (
        f"cannot read query file {queries / 'pipeline_health.sql'}: No such file or directory"
    )
    assert metabase.requests == []


def test_missing_secrets_are_named_by_the_argument_spec(
    fake: tuple[FakeMetabase, str], args: dict[str, Any]
) -> None:
    metabase, _ = fake
    del args["admin_password"]
    del args["connection"]["password"]

    report = run(args)

    assert report["msg"] == "missing required arguments: admin_password"
    assert metabase.requests == []


def _spec_shape(options: dict[str, Any]) -> dict[str, tuple]:
    return {
        name: (
            option.get("type", "str"),
            option.get("required", False),
            option.get("default"),
            _spec_shape(option.get("options") or option.get("suboptions") or {}),
        )
        for name, option in options.items()
    }


def test_the_modules_documentation_is_its_argument_spec() -> None:
    # ansible-doc reads DOCUMENTATION, Ansible checks ARGUMENT_SPEC: they must agree.
    sys.path.insert(0, str(MODULE.parent))
    try:
        import metabase_provision as module
    finally:
        sys.path.remove(str(MODULE.parent))
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert _spec_shape(documented) == _spec_shape(module.ARGUMENT_SPEC)
