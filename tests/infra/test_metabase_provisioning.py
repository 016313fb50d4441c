"""The Metabase provisioning program, run for real against a FAKE Metabase API.

Metabase itself cannot run here: no Metabase jar or image is reachable from this machine
(see docs/test-machine.md). So each test starts ``FakeMetabase``, an in-process
``http.server`` that implements only the endpoints the program calls, with real state
(ids handed out in order, lists that grow, a session check, the setup token, obfuscated
passwords the way Metabase returns them). The fake is the only mock here; the program is
the real file the role installs, run as a subprocess with ``python3 -I -S`` (no
site-packages), as the role runs it on the host, and its config is rendered from the
role's own template and defaults by real Ansible.

What the fake cannot prove, only a real Metabase can: that Metabase accepts these payloads,
that the ClickHouse driver connects, that the cards' SQL runs. Those are checked on a host.
"""

from __future__ import annotations

import json
import os
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

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "ansible" / "roles" / "metabase"
PROGRAM = ROLE / "files" / "provision_metabase.py"
QUERIES = REPO / "app" / "sql" / "queries"

ADMIN_EMAIL = "admin@clickstream.example"
ADMIN_PASSWORD = "Wh1te-Heron-Quartz-92"
CLICKHOUSE_PASSWORD = "ch-Secret-7731"
SECRET_VALUES = (ADMIN_EMAIL, ADMIN_PASSWORD, CLICKHOUSE_PASSWORD)

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
OBFUSCATED = "**MetabasePass**"


# ------------------------------------------------------------------------- the fake


class FakeError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class FakeMetabase:
    """Just enough of Metabase's REST API, with state, to provision against.

    Shapes follow Metabase 0.54: ``GET /api/database`` wraps its list in ``data``, stored
    passwords come back as ``**MetabasePass**``, ``PUT /api/dashboard/:id`` takes the full
    ``dashcards`` list (negative ids create, missing ones are deleted), a fresh instance
    already holds the "Sample Database" (id 1).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.setup_token = "5e7a0c52-fake-setup-token"
        self.user: dict[str, str] | None = None
        self.site_name: str | None = None
        self.sessions: set[str] = set()
        self.databases: dict[int, dict[str, Any]] = {
            1: {
                "id": 1,
                "name": "Sample Database",
                "engine": "h2",
                "details": {"db": "zip:/app/metabase.jar!/sample-database.db"},
                "is_sample": True,
            }
        }
        self.cards: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[int, dict[str, Any]] = {}
        self.dashcards: dict[int, dict[str, Any]] = {}
        self.next_ids = {"database": 2, "card": 1, "dashboard": 1, "dashcard": 1}
        self.requests: list[tuple[str, str, Any]] = []
        self.failures: dict[tuple[str, str], tuple[int, Any]] = {}

    # -- helpers the tests use

    def complete_setup(self, email: str, password: str) -> None:
        """State of a Metabase someone already set up by hand."""
        self.user = {"email": email, "password": password}
        self.site_name = "Set up by hand"

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
        if kind == "card":
            return self._card(method, item_id, query, body)
        if kind == "dashboard":
            return self._dashboard(method, item_id, query, body)
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

    def _database(self, method: str, item_id: int | None, body: Any) -> Any:
        if method == "GET" and item_id is None:
            data = [self._public_database(d) for d in self.databases.values()]
            return {"data": data, "total": len(data)}
        if method == "POST" and item_id is None:
            if not body.get("name") or body.get("engine") not in ("clickhouse", "h2", "postgres"):
                raise FakeError(400, {"errors": {"engine": "value must be a valid engine."}})
            if not isinstance(body.get("details"), dict):
                raise FakeError(400, {"errors": {"details": "value must be a map."}})
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
            details = dict(body.get("details", database["details"]))
            if details.get("password") == OBFUSCATED:  # Metabase keeps the stored one
                details["password"] = database["details"].get("password")
            database.update(
                name=body.get("name", database["name"]),
                engine=body.get("engine", database["engine"]),
                details=details,
            )
            return self._public_database(database)
        raise FakeError(405, "Method not allowed")

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

    def _dashboard(self, method: str, item_id: int | None, query: dict, body: Any) -> Any:
        if method == "GET" and item_id is None:
            assert query.get("f") == ["all"], query
            return [d for d in self.dashboards.values() if not d["archived"]]
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


# ------------------------------------------------------------ config from the role


@pytest.fixture(scope="module")
def role_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """provision.json as the role renders it: its template and defaults, through Ansible."""
    out = tmp_path_factory.mktemp("rendered") / "provision.json"
    env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "--connection=local",
            "--inventory=localhost,",
            "--module-name=ansible.builtin.template",
            f"--args=src={ROLE / 'templates' / 'provision.json.j2'} dest={out} mode=0600",
            f"--extra-vars=@{ROLE / 'defaults' / 'main.yml'}",
            f"--extra-vars=role_path={ROLE}",
            # The module runs on "localhost" too: use this interpreter, not discovery's.
            f"--extra-vars=ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


@pytest.fixture
def setup_files(
    tmp_path: Path, role_config: dict[str, Any], fake: tuple[FakeMetabase, str]
) -> dict[str, Path]:
    """The role's config pointed at the fake, a private copy of the queries, the secrets."""
    _, url = fake
    queries = tmp_path / "queries"
    shutil.copytree(QUERIES, queries)
    config = json.loads(json.dumps(role_config))
    config["metabase"]["url"] = url
    config["queries_dir"] = str(queries)
    config["state_file"] = str(tmp_path / "state" / "provision-state.json")
    config_path = tmp_path / "provision.json"
    config_path.write_text(json.dumps(config))
    secrets_path = tmp_path / "provision-secrets.env"
    secrets_path.write_text(
        "# test secrets\n"
        f"METABASE_ADMIN_EMAIL={ADMIN_EMAIL}\n"
        f"METABASE_ADMIN_PASSWORD={ADMIN_PASSWORD}\n"
        f"METABASE_CLICKHOUSE_PASSWORD={CLICKHOUSE_PASSWORD}\n"
    )
    secrets_path.chmod(0o600)
    return {
        "config": config_path,
        "secrets": secrets_path,
        "queries": queries,
        "state": Path(config["state_file"]),
    }


def run(files: dict[str, Path], *extra: str, env: dict[str, str] | None = None) -> tuple:
    """Run the installed program as the role does: stdlib only (-I -S), secrets in a file."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("METABASE_")}
    command = [sys.executable, "-I", "-S", str(PROGRAM), "--config", str(files["config"])]
    result = subprocess.run(
        [*command, "--secrets-file", str(files["secrets"]), *extra],
        capture_output=True,
        text=True,
        env={**clean_env, **(env or {})},
        timeout=60,
        check=False,
    )
    for secret in SECRET_VALUES:
        assert secret not in result.stdout + result.stderr, "a secret was printed"
    return result.returncode, json.loads(result.stdout), result.stderr


# ------------------------------------------------------------------------- the tests


def test_first_run_sets_up_metabase_and_creates_connection_cards_and_dashboard(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    code, report, _ = run(setup_files)

    assert code == 0
    assert report == {
        "changed": True,
        "actions": [
            "set up Metabase: first admin user and site name 'Clickstream'",
            "created database connection 'Clickstream ClickHouse' (id 2)",
            "created card 'Clicks per page, last minute' (id 1)",
            "created card 'Clicks per minute, top pages, last hour' (id 2)",
            "created card 'Rejected events by reason, last hour' (id 3)",
            "created card 'Pipeline health, last hour' (id 4)",
            "created card 'Where every record went (last hour)' (id 5)",
            "created card 'Unique visitors per minute, last hour' (id 6)",
            "created card 'Funnel, last hour (bots by agent excluded)' (id 7)",
            "created card 'Sessions per minute: bounce rate and problems, last 3 hours' (id 8)",
            "created card 'Problem sessions, latest 100' (id 9)",
            "created card 'Bots: users flagged, by last seen' (id 10)",
            "created card 'Active sessions now (last 5 minutes)' (id 11)",
            "created card 'Alerts: firing now, then the last 7 days' (id 12)",
            "created dashboard 'Clickstream live' (id 1)",
            "updated dashboard 'Clickstream live' (id 1): cards",
        ],
        "database_id": 2,
        "card_ids": {
            "Clicks per page, last minute": 1,
            "Clicks per minute, top pages, last hour": 2,
            "Rejected events by reason, last hour": 3,
            "Pipeline health, last hour": 4,
            "Where every record went (last hour)": 5,
            "Unique visitors per minute, last hour": 6,
            "Funnel, last hour (bots by agent excluded)": 7,
            "Sessions per minute: bounce rate and problems, last 3 hours": 8,
            "Problem sessions, latest 100": 9,
            "Bots: users flagged, by last seen": 10,
            "Active sessions now (last 5 minutes)": 11,
            "Alerts: firing now, then the last 7 days": 12,
        },
        "dashboard_id": 1,
        "dashboard_url": "http://localhost:3000/dashboard/1#refresh=15",
    }

    # Setup: the first user from the secrets, the site settings from the config.
    assert metabase.user == {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    assert metabase.body_of("POST", "/api/setup") == {
        "token": "5e7a0c52-fake-setup-token",
        "user": {
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "first_name": "Clickstream",
            "last_name": "Admin",
            "site_name": "Clickstream",
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
    assert oct(setup_files["state"].stat().st_mode & 0o777) == "0o600"


def test_second_run_creates_nothing_and_reports_unchanged(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    assert run(setup_files)[0] == 0
    writes_before = len(metabase.writes())

    code, report, stderr = run(setup_files)

    assert code == 0
    assert report["changed"] is False
    assert report["actions"] == []
    assert report["dashboard_url"] == "http://localhost:3000/dashboard/1#refresh=15"
    # The only write of the second run is the login.
    assert metabase.writes()[writes_before:] == [("POST", "/api/session")]
    assert len(metabase.databases) == 2
    assert len(metabase.cards) == len(EXPECTED_CARDS)
    assert len(metabase.dashboards) == 1
    assert metabase.dashcard_layout(1) == EXPECTED_DASHCARDS
    assert "nothing to change" in stderr


def test_changed_query_file_updates_its_card_in_place(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    assert run(setup_files)[0] == 0
    query_file = setup_files["queries"] / "rejected_by_reason.sql"
    new_sql = query_file.read_text().replace("INTERVAL 1 HOUR", "INTERVAL 2 HOUR")
    assert new_sql != query_file.read_text()
    query_file.write_text(new_sql)

    code, report, _ = run(setup_files)

    assert code == 0
    assert report["changed"] is True
    assert report["actions"] == [
        "updated card 'Rejected events by reason, last hour' (id 3): query",
    ]
    assert metabase.cards[3]["dataset_query"]["native"]["query"] == new_sql
    assert sorted(metabase.cards) == list(range(1, len(EXPECTED_CARDS) + 1))
    # The dashboard still shows the same card through the same dashcard.
    assert metabase.dashcard_layout(1)[2] == (3, 3, 8, 0, 12, 7)


def test_changed_display_and_settings_update_the_card_in_place(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    assert run(setup_files)[0] == 0
    config = json.loads(setup_files["config"].read_text())
    health = config["cards"][3]
    assert health["name"] == "Pipeline health, last hour"
    health["display"] = "line"
    health["visualization_settings"] = {"graph.dimensions": ["minute"]}
    setup_files["config"].write_text(json.dumps(config))

    code, report, _ = run(setup_files)

    assert code == 0
    assert report["actions"] == [
        "updated card 'Pipeline health, last hour' (id 4): display, visualization_settings",
    ]
    assert metabase.cards[4]["display"] == "line"
    assert metabase.cards[4]["visualization_settings"] == {"graph.dimensions": ["minute"]}
    assert sorted(metabase.cards) == list(range(1, len(EXPECTED_CARDS) + 1))


def test_already_set_up_metabase_skips_setup_and_logs_in(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    metabase.complete_setup(ADMIN_EMAIL, ADMIN_PASSWORD)

    code, report, stderr = run(setup_files)

    assert code == 0
    assert [p for m, p, _ in metabase.requests if m == "POST"][:1] == ["/api/session"]
    assert ("POST", "/api/setup") not in metabase.writes()
    assert metabase.body_of("POST", "/api/session") == {
        "username": ADMIN_EMAIL,
        "password": ADMIN_PASSWORD,
    }
    assert metabase.site_name == "Set up by hand"
    assert report["actions"][0] == "created database connection 'Clickstream ClickHouse' (id 2)"
    assert len(report["actions"]) == 3 + len(EXPECTED_CARDS)
    assert "logged in: Metabase was already set up" in stderr


def test_api_error_exits_non_zero_with_a_message_naming_the_call(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    metabase.fail("POST", "/api/card", 500, {"message": "Card table is locked"})

    code, report, stderr = run(setup_files)

    assert code == 1
    message = "POST /api/card failed: HTTP 500: Card table is locked"
    assert stderr.splitlines()[-1] == f"error: {message}"
    assert report["failed"] is True
    assert report["error"] == message
    # What happened before the failure is still reported, so Ansible shows it changed.
    assert report["changed"] is True
    assert report["actions"] == [
        "set up Metabase: first admin user and site name 'Clickstream'",
        "created database connection 'Clickstream ClickHouse' (id 2)",
    ]
    assert metabase.cards == {}
    assert metabase.dashboards == {}


def test_wrong_admin_password_fails_on_login_without_printing_it(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    metabase.complete_setup(ADMIN_EMAIL, "the-password-someone-changed-by-hand")

    code, report, _ = run(setup_files)

    assert code == 1
    assert report["error"] == (
        'POST /api/session failed: HTTP 401: {"password": "did not match stored password"}'
    )
    assert metabase.databases.keys() == {1}


def test_error_bodies_echoing_a_secret_are_scrubbed(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    # Metabase's validation errors can quote request fields; simulate one quoting the
    # ClickHouse password. run() also asserts no secret reaches stdout or stderr.
    metabase, _ = fake
    metabase.fail(
        "POST", "/api/database", 400, {"message": f"cannot connect with {CLICKHOUSE_PASSWORD}"}
    )

    code, report, _ = run(setup_files)

    assert code == 1
    assert report["error"] == "POST /api/database failed: HTTP 400: cannot connect with ***"


def test_unreachable_metabase_names_the_call_and_the_address(
    setup_files: dict[str, Path], tmp_path: Path
) -> None:
    config = json.loads(setup_files["config"].read_text())
    config["metabase"]["url"] = "http://127.0.0.1:9"  # discard port: nothing listens
    setup_files["config"].write_text(json.dumps(config))

    code, report, _ = run(setup_files)

    assert code == 1
    assert report["error"].startswith(
        "GET /api/session/properties failed: cannot reach Metabase at http://127.0.0.1:9: "
    )
    assert report["changed"] is False


def test_changed_connection_details_and_rotated_password_update_the_database(
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path]
) -> None:
    metabase, _ = fake
    assert run(setup_files)[0] == 0
    config = json.loads(setup_files["config"].read_text())
    config["database"]["details"]["host"] = "clickhouse-2"
    setup_files["config"].write_text(json.dumps(config))
    rotated = "ch-Rotated-5150"

    code, report, _ = run(setup_files, env={"METABASE_CLICKHOUSE_PASSWORD": rotated})

    assert code == 0
    assert report["actions"] == [
        "updated database connection 'Clickstream ClickHouse' (id 2): host, password",
    ]
    assert metabase.databases[2]["details"]["host"] == "clickhouse-2"
    assert metabase.databases[2]["details"]["password"] == rotated
    assert sorted(metabase.databases) == [1, 2]
    # Same password again: nothing to do (the fingerprint in the state file matches).
    code, report, _ = run(setup_files, env={"METABASE_CLICKHOUSE_PASSWORD": rotated})
    assert (code, report["actions"]) == (0, [])


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
    fake: tuple[FakeMetabase, str], setup_files: dict[str, Path], edit: Any
) -> None:
    metabase, _ = fake
    assert run(setup_files)[0] == 0
    edit(metabase)
    assert metabase.dashcard_layout(1) != EXPECTED_DASHCARDS

    code, report, _ = run(setup_files)

    assert code == 0
    assert report["actions"] == ["updated dashboard 'Clickstream live' (id 1): cards"]
    layout = metabase.dashcard_layout(1)
    # Dashcards that survived keep their ids; a re-added one gets the next free id.
    ids = [row[0] for row in EXPECTED_DASHCARDS]
    removed = [i for i in ids if i != 4] + [len(ids) + 1]  # dashcard 4 back as a new one
    expected_ids = removed if edit is _remove_a_card else ids
    assert [row[0] for row in layout] == expected_ids
    assert sorted(row[1:] for row in layout) == [row[1:] for row in EXPECTED_DASHCARDS]


def test_secrets_file_readable_by_others_is_refused(setup_files: dict[str, Path]) -> None:
    setup_files["secrets"].chmod(0o644)

    code, report, stderr = run(setup_files)

    assert code == 2
    assert report["error"] == (
        f"secrets file {setup_files['secrets']} is accessible to group or others "
        "(mode 0644); chmod 600 it"
    )
    assert stderr.strip() == f"error: {report['error']}"


def test_missing_secrets_are_named(setup_files: dict[str, Path]) -> None:
    setup_files["secrets"].write_text(f"METABASE_ADMIN_EMAIL={ADMIN_EMAIL}\n")

    code, report, _ = run(setup_files)

    assert code == 2
    assert report["error"] == (
        "missing secrets: METABASE_ADMIN_PASSWORD, METABASE_CLICKHOUSE_PASSWORD "
        "(set them in the environment or in the --secrets-file)"
    )


def test_check_config_reads_every_query_file_and_contacts_nothing(
    setup_files: dict[str, Path],
) -> None:
    config = json.loads(setup_files["config"].read_text())
    config["metabase"]["url"] = "http://127.0.0.1:9"
    setup_files["config"].write_text(json.dumps(config))

    code, report, _ = run(setup_files, "--check-config")

    assert code == 0
    assert [(c["name"], c["query_file"], c["display"]) for c in report["cards"]] == [
        (name, query_file, display) for name, (query_file, display, _) in EXPECTED_CARDS.items()
    ]
    assert report["dashboard"] == "Clickstream live"
    assert report["refresh_seconds"] == 15


def test_missing_query_file_is_a_config_error(setup_files: dict[str, Path]) -> None:
    (setup_files["queries"] / "pipeline_health.sql").unlink()

    code, report, _ = run(setup_files)

    assert code == 2
    assert report["error"] == (
        f"cannot read query file {setup_files['queries'] / 'pipeline_health.sql'}: "
        "No such file or directory"
    )
