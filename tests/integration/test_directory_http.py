"""Sites and customers (user records) over HTTP, against real Redis and databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, insert, select, update

from yardmaster.api import directory
from yardmaster.shared import queues
from yardmaster.shared.jobs import JobKind, JobState
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.models import Customer, Job, Site

PROBLEM = "application/problem+json"


def body_of(response: Any, status: int) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def create_site(client: FlaskClient, name: str = "Acme", **fields: Any) -> dict[str, Any]:
    return dict(body_of(client.post("/sites", json={"name": name, **fields}), 201))


def create_customer(
    client: FlaskClient, site_id: int, name: str = "Ada", **fields: Any
) -> dict[str, Any]:
    response = client.post("/customers", json={"site_id": site_id, "name": name, **fields})
    return dict(body_of(response, 201))


def refused(response: Any, status: int = 400) -> dict[str, Any]:
    """The problem document of a refused request."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status
    return dict(body)


def moment(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp)


def count(engine: Engine, model: type[Site] | type[Customer]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def add_jobs(engine: Engine, customer_id: int, states: list[JobState]) -> None:
    """Jobs of the customer, in ``states``, inserted directly (no worker, no Redis)."""
    store = JobStore(engine)
    for state in states:
        job = store.create(JobKind.WORK, {"execution_time": 1.0}, queues.DEFAULT)
        with engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(customer_id=customer_id, owner=str(customer_id), state=state)
            )


SITE_FIELDS = {
    "name": "Acme Stores",
    "domain": "acme.example",
    "url": "https://acme.example/shop",
    "description": "Groceries in three cities",
}
CUSTOMER_FIELDS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+44 (20) 7946-0958",
    "address": "12 St James's Square",
    "country": "United Kingdom",
    "state": "England",
    "city": "London",
    "pincode": "SW1Y 4JH",
    "dob": "1815-12-10",
    "is_active": True,
}


# --- The index ---------------------------------------------------------------------------


def test_the_index_links_to_sites_and_customers(client: FlaskClient) -> None:
    links = body_of(client.get("/"), 200)["links"]

    assert links["sites"] == "/sites"
    assert links["customers"] == "/customers"


# --- Creating and reading ----------------------------------------------------------------


def test_a_created_site_is_answered_201_with_its_location_and_can_be_read_back(
    client: FlaskClient,
) -> None:
    response = client.post("/sites", json=SITE_FIELDS)

    site = body_of(response, 201)
    assert response.headers["Location"] == f"/sites/{site['id']}"
    assert {k: site[k] for k in SITE_FIELDS} == SITE_FIELDS
    assert site["created_at"].endswith("Z")
    assert site["updated_at"] == site["created_at"]
    assert site["active_records"] == 0
    assert site["volume_tier"] == "low"
    assert site["links"] == {
        "self": f"/sites/{site['id']}",
        "customers": f"/customers?site_id={site['id']}",
    }
    assert body_of(client.get(f"/sites/{site['id']}"), 200) == site


def test_a_site_needs_only_a_name_and_the_other_fields_default_to_empty(
    client: FlaskClient,
) -> None:
    site = create_site(client, "Bare")

    assert (site["domain"], site["url"], site["description"]) == ("", "", "")


def test_a_created_customer_shows_every_field_its_tiers_and_links(client: FlaskClient) -> None:
    site = create_site(client)

    response = client.post("/customers", json={"site_id": site["id"], **CUSTOMER_FIELDS})

    customer = body_of(response, 201)
    assert response.headers["Location"] == f"/customers/{customer['id']}"
    assert {k: customer[k] for k in CUSTOMER_FIELDS} == CUSTOMER_FIELDS
    assert customer["site_id"] == site["id"]
    assert customer["created_at"].endswith("Z")
    assert customer["queued_jobs"] == 0
    assert customer["activity_tier"] == "active"
    assert customer["volume_tier"] == "low"
    assert customer["links"] == {
        "self": f"/customers/{customer['id']}",
        "site": f"/sites/{site['id']}",
        "jobs": f"/jobs?owner={customer['id']}",
    }
    assert body_of(client.get(f"/customers/{customer['id']}"), 200) == customer


def test_a_customer_needs_only_a_site_and_a_name_is_active_by_default_and_has_no_dob(
    client: FlaskClient,
) -> None:
    customer = create_customer(client, create_site(client)["id"])

    assert customer["is_active"] is True
    assert customer["dob"] is None
    assert customer["email"] == customer["phone"] == customer["pincode"] == ""


def test_surrounding_whitespace_of_text_fields_is_trimmed(client: FlaskClient) -> None:
    site = create_site(client, "  Padded  ", domain=" padded.example ")

    assert (site["name"], site["domain"]) == ("Padded", "padded.example")


# --- Listing -----------------------------------------------------------------------------


def test_sites_are_listed_by_id_a_page_at_a_time_with_a_link_to_the_next_page(
    client: FlaskClient,
) -> None:
    ids = [create_site(client, f"site {n}")["id"] for n in range(5)]

    first = body_of(client.get("/sites?per_page=2"), 200)
    last = body_of(client.get("/sites?page=3&per_page=2"), 200)

    assert [s["id"] for s in first["items"]] == ids[:2]
    assert (first["total"], first["page"], first["per_page"], first["pages"]) == (5, 1, 2, 3)
    assert first["next"] == "/sites?per_page=2&page=2"
    assert [s["id"] for s in last["items"]] == ids[4:]
    assert last["next"] is None
    assert body_of(client.get(first["next"]), 200)["items"][0]["id"] == ids[2]


def test_an_empty_list_has_one_page_and_no_next_link(client: FlaskClient) -> None:
    listing = body_of(client.get("/sites"), 200)

    assert listing == {
        "items": [],
        "total": 0,
        "page": 1,
        "per_page": 50,
        "pages": 1,
        "next": None,
    }


def test_a_page_past_the_end_is_empty(client: FlaskClient) -> None:
    create_site(client)

    listing = body_of(client.get("/sites?page=9"), 200)

    assert (listing["items"], listing["total"], listing["next"]) == ([], 1, None)


def test_per_page_above_200_is_read_as_200(client: FlaskClient) -> None:
    assert body_of(client.get("/customers?per_page=500"), 200)["per_page"] == 200


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=two",
        "per_page=0",
        "per_page=1.5",
        "site_id=x",
        "site_id=0",
        "active=yes",
    ],
)
def test_bad_paging_or_filters_are_refused_with_400(client: FlaskClient, query: str) -> None:
    problem = refused(client.get(f"/customers?{query}"))

    assert query.split("=")[0] in problem["detail"]


def test_customers_are_filtered_by_site_and_activity_and_the_next_link_keeps_the_filters(
    client: FlaskClient,
) -> None:
    one, two = create_site(client, "one")["id"], create_site(client, "two")["id"]
    active = [create_customer(client, one, f"active {n}")["id"] for n in range(3)]
    create_customer(client, one, "inactive", is_active=False)
    create_customer(client, two, "elsewhere")

    page = body_of(client.get(f"/customers?site_id={one}&active=true&per_page=2"), 200)
    rest = body_of(client.get(page["next"]), 200)

    assert page["total"] == 3
    assert page["next"] == f"/customers?site_id={one}&active=true&per_page=2&page=2"
    assert [c["id"] for c in page["items"] + rest["items"]] == active
    inactive = body_of(client.get("/customers?active=false"), 200)
    assert [c["name"] for c in inactive["items"]] == ["inactive"]
    assert body_of(client.get(f"/customers?site_id={two}"), 200)["total"] == 1
    assert body_of(client.get("/customers?site_id=999"), 200)["total"] == 0


# --- Bulk creation -----------------------------------------------------------------------


def test_a_list_of_sites_is_created_together_and_answered_with_every_item(
    client: FlaskClient,
) -> None:
    response = client.post("/sites", json=[{"name": "north"}, {"name": "south"}])

    items = body_of(response, 201)["items"]
    assert [s["name"] for s in items] == ["north", "south"]
    assert body_of(client.get("/sites"), 200)["total"] == 2


def test_a_list_of_customers_is_created_together(client: FlaskClient) -> None:
    site_id = create_site(client)["id"]

    response = client.post(
        "/customers",
        json=[{"site_id": site_id, "name": "Ada"}, {"site_id": site_id, "name": "Grace"}],
    )

    items = body_of(response, 201)["items"]
    assert [c["name"] for c in items] == ["Ada", "Grace"]
    assert body_of(client.get(f"/sites/{site_id}"), 200)["active_records"] == 2


def test_one_bad_site_in_a_list_refuses_the_whole_list_naming_its_index(
    client: FlaskClient, engine: Engine
) -> None:
    response = client.post(
        "/sites", json=[{"name": "good"}, {"name": "bad", "url": "ftp://x"}, {"name": "fine"}]
    )

    problem = refused(response)
    assert problem["errors"] == [
        {"index": 1, "field": "url", "message": "must start with http:// or https://"}
    ]
    assert problem["detail"] == "item 1: url: must start with http:// or https://"
    assert count(engine, Site) == 0


def test_one_bad_customer_in_a_list_refuses_the_whole_list_naming_its_index(
    client: FlaskClient, engine: Engine
) -> None:
    site_id = create_site(client)["id"]

    response = client.post(
        "/customers",
        json=[
            {"site_id": site_id, "name": "Ada"},
            {"site_id": site_id, "name": "Grace", "email": "grace-at-example.com"},
        ],
    )

    problem = refused(response)
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, "email")]
    assert count(engine, Customer) == 0


def test_every_bad_item_of_a_list_is_reported_in_order(client: FlaskClient) -> None:
    response = client.post("/sites", json=[{"name": ""}, "not an object", {"nom": "x"}])

    errors = refused(response)["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "name"),
        (1, None),
        (2, "name"),
        (2, "nom"),
    ]


@pytest.mark.parametrize("path", ["/sites", "/customers"])
def test_an_empty_list_is_refused_with_400(client: FlaskClient, path: str) -> None:
    assert "empty" in refused(client.post(path, json=[]))["detail"]


def test_a_site_name_taken_or_given_twice_in_a_list_is_a_400_for_that_item(
    client: FlaskClient, engine: Engine
) -> None:
    taken = create_site(client, "taken")

    response = client.post(
        "/sites", json=[{"name": "new"}, {"name": "taken"}, {"name": "twice"}, {"name": "twice"}]
    )

    errors = refused(response)["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "name"), (3, "name")]
    assert f"id {taken['id']}" in errors[0]["message"]
    assert "item 2" in errors[1]["message"]
    assert count(engine, Site) == 1


def test_customers_of_an_unknown_site_in_a_list_are_refused_naming_the_site(
    client: FlaskClient, engine: Engine
) -> None:
    site_id = create_site(client)["id"]

    response = client.post(
        "/customers", json=[{"site_id": site_id, "name": "Ada"}, {"site_id": 4242, "name": "X"}]
    )

    problem = refused(response)
    assert problem["errors"] == [
        {"index": 1, "field": "site_id", "message": "there is no site 4242"}
    ]
    assert count(engine, Customer) == 0


# --- Replacing (PUT) and updating (PATCH) ------------------------------------------------


def test_put_replaces_every_field_of_a_site_and_empties_those_left_out(
    client: FlaskClient,
) -> None:
    site = create_site(client, **{k: v for k, v in SITE_FIELDS.items() if k != "name"})

    replaced = body_of(client.put(f"/sites/{site['id']}", json={"name": "Renamed"}), 200)

    assert (replaced["name"], replaced["domain"], replaced["url"]) == ("Renamed", "", "")
    assert replaced["description"] == ""
    assert replaced["created_at"] == site["created_at"]
    assert moment(replaced["updated_at"]) > moment(site["updated_at"])


def test_patch_changes_only_the_fields_sent(client: FlaskClient) -> None:
    site = create_site(client, **{k: v for k, v in SITE_FIELDS.items() if k != "name"})

    patched = body_of(client.patch(f"/sites/{site['id']}", json={"domain": "new.example"}), 200)

    assert patched["domain"] == "new.example"
    assert {k: patched[k] for k in ("name", "url", "description")} == {
        k: site[k] for k in ("name", "url", "description")
    }


def test_put_of_a_customer_needs_its_required_fields_patch_does_not(
    client: FlaskClient,
) -> None:
    site_id = create_site(client)["id"]
    customer = create_customer(client, site_id, **CUSTOMER_FIELDS)
    path = f"/customers/{customer['id']}"

    missing = refused(client.put(path, json={"email": "x@example.com"}))
    patched = body_of(client.patch(path, json={"email": "x@example.com"}), 200)
    replaced = body_of(client.put(path, json={"site_id": site_id, "name": "New"}), 200)

    assert {(e["field"], e["message"]) for e in missing["errors"]} == {
        ("site_id", "is required"),
        ("name", "is required"),
    }
    assert (patched["email"], patched["city"], patched["dob"]) == (
        "x@example.com",
        "London",
        "1815-12-10",
    )
    assert (replaced["name"], replaced["email"], replaced["city"]) == ("New", "", "")
    assert (replaced["dob"], replaced["is_active"]) == (None, True)


def test_patch_can_clear_dob_with_null_but_not_a_required_field(client: FlaskClient) -> None:
    customer = create_customer(client, create_site(client)["id"], dob="1990-01-31")
    path = f"/customers/{customer['id']}"

    assert body_of(client.patch(path, json={"dob": None}), 200)["dob"] is None
    problem = refused(client.patch(path, json={"name": None}))
    assert problem["errors"] == [{"field": "name", "message": "must be a string"}]


def test_an_empty_patch_changes_nothing_not_even_updated_at(client: FlaskClient) -> None:
    site = create_site(client)

    assert body_of(client.patch(f"/sites/{site['id']}", json={}), 200) == site


def test_a_customer_moves_to_another_site_and_the_site_counts_follow(
    client: FlaskClient,
) -> None:
    one, two = create_site(client, "one")["id"], create_site(client, "two")["id"]
    customer = create_customer(client, one)

    body_of(client.patch(f"/customers/{customer['id']}", json={"site_id": two}), 200)

    assert body_of(client.get(f"/sites/{one}"), 200)["active_records"] == 0
    assert body_of(client.get(f"/sites/{two}"), 200)["active_records"] == 1


def test_moving_a_customer_to_an_unknown_site_is_refused_naming_it(client: FlaskClient) -> None:
    customer = create_customer(client, create_site(client)["id"])

    problem = refused(client.patch(f"/customers/{customer['id']}", json={"site_id": 77}))

    assert problem["detail"] == "site_id: there is no site 77"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_list_is_refused_by_put_and_patch(client: FlaskClient, method: str) -> None:
    site = create_site(client)

    response = client.open(f"/sites/{site['id']}", method=method, json=[{"name": "x"}])

    assert "one JSON object" in refused(response)["detail"]


# --- Unknown ids -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sites/999", "/customers/999", "/sites/99999999999"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_an_unknown_id_is_404(client: FlaskClient, path: str, method: str) -> None:
    body = {"name": "x", "site_id": 1} if path.startswith("/customers") else {"name": "x"}
    if method == "PATCH":
        body = {"name": "x"}

    response = client.open(path, method=method, json=body if method in ("PUT", "PATCH") else None)

    assert refused(response, 404)["detail"] == f"no {path.split('/')[1][:-1]} {path.split('/')[2]}"


# --- Conflicts ---------------------------------------------------------------------------


def test_a_site_name_already_taken_is_a_409(client: FlaskClient, engine: Engine) -> None:
    taken = create_site(client, "taken")

    problem = refused(client.post("/sites", json={"name": "taken"}), 409)

    assert problem["detail"] == f"a site named 'taken' already exists (id {taken['id']})"
    assert count(engine, Site) == 1


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_renaming_a_site_to_a_taken_name_is_a_409_but_keeping_its_own_name_is_not(
    client: FlaskClient, method: str
) -> None:
    create_site(client, "taken")
    site = create_site(client, "mine")
    path = f"/sites/{site['id']}"

    refused(client.open(path, method=method, json={"name": "taken"}), 409)
    body_of(client.open(path, method=method, json={"name": "mine", "domain": "d"}), 200)


def test_a_site_that_still_has_customers_cannot_be_deleted(
    client: FlaskClient, engine: Engine
) -> None:
    site_id = create_site(client)["id"]
    customer = create_customer(client, site_id, is_active=False)

    problem = refused(client.delete(f"/sites/{site_id}"), 409)
    assert "delete them or move them" in problem["detail"]
    assert problem["customers"] == 1
    assert count(engine, Site) == 1

    assert client.delete(f"/customers/{customer['id']}").status_code == 204
    assert client.delete(f"/sites/{site_id}").status_code == 204
    refused(client.get(f"/sites/{site_id}"), 404)


@pytest.mark.parametrize(
    "state",
    [
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.PAUSING,
        JobState.PAUSED,
        JobState.RESUMING,
        JobState.STOPPING,
    ],
)
def test_a_customer_with_an_unfinished_job_cannot_be_deleted(
    client: FlaskClient, engine: Engine, state: JobState
) -> None:
    customer = create_customer(client, create_site(client)["id"])
    add_jobs(engine, customer["id"], [state])

    problem = refused(client.delete(f"/customers/{customer['id']}"), 409)

    assert problem["unfinished_jobs"] == 1
    assert count(engine, Customer) == 1


def test_a_customer_whose_jobs_are_all_over_can_be_deleted(
    client: FlaskClient, engine: Engine
) -> None:
    customer = create_customer(client, create_site(client)["id"])
    add_jobs(engine, customer["id"], [JobState.FINISHED, JobState.FAILED, JobState.STOPPED])

    response = client.delete(f"/customers/{customer['id']}")

    assert response.status_code == 204
    assert response.get_data() == b""
    refused(client.get(f"/customers/{customer['id']}"), 404)


def insert_site(engine: Engine, name: str) -> None:
    """A site inserted behind the API's back."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(Site).values(
                name=name, domain="", url="", description="", created_at=now, updated_at=now
            )
        )


@pytest.fixture
def blind_first_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first look-up of existing rows sees none: as if a concurrent request inserted the
    row between this request's check and its write."""
    real, calls = directory.existing, []

    def blind_once(session: Any, column: Any, values: Any) -> dict[Any, int]:
        calls.append(column)
        return {} if len(calls) == 1 else real(session, column, values)

    monkeypatch.setattr(directory, "existing", blind_once)


@pytest.mark.usefixtures("blind_first_check")
def test_a_name_taken_between_the_check_and_the_insert_is_still_a_409(
    client: FlaskClient, engine: Engine
) -> None:
    insert_site(engine, "raced")

    refused(client.post("/sites", json={"name": "raced"}), 409)
    assert count(engine, Site) == 1


@pytest.mark.usefixtures("blind_first_check")
def test_a_bulk_create_that_loses_a_race_creates_nothing_and_names_the_item(
    client: FlaskClient, engine: Engine
) -> None:
    insert_site(engine, "raced")

    problem = refused(client.post("/sites", json=[{"name": "new"}, {"name": "raced"}]))

    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(1, "name")]
    assert count(engine, Site) == 1


# --- Validation --------------------------------------------------------------------------


def test_a_customer_of_an_unknown_site_is_refused_with_400_naming_the_site(
    client: FlaskClient, engine: Engine
) -> None:
    problem = refused(client.post("/customers", json={"site_id": 4242, "name": "Ada"}))

    assert problem["errors"] == [{"field": "site_id", "message": "there is no site 4242"}]
    assert problem["detail"] == "site_id: there is no site 4242"
    assert count(engine, Customer) == 0


def test_a_dob_in_the_future_is_refused(client: FlaskClient) -> None:
    site_id = create_site(client)["id"]
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()

    problem = refused(
        client.post("/customers", json={"site_id": site_id, "name": "Ada", "dob": tomorrow})
    )

    assert problem["errors"] == [{"field": "dob", "message": "must not be in the future"}]


def test_an_unknown_field_is_refused_and_named(client: FlaskClient, engine: Engine) -> None:
    problem = refused(client.post("/sites", json={"name": "Acme", "colour": "red"}))

    assert problem["errors"][0]["field"] == "colour"
    assert problem["detail"].startswith("colour: is not a field of a site")
    assert "name, domain, url, description" in problem["detail"]
    assert count(engine, Site) == 0


def test_a_read_only_field_is_refused_as_read_only(client: FlaskClient) -> None:
    site = create_site(client)

    problem = refused(client.put(f"/sites/{site['id']}", json={**site}))

    assert {e["field"] for e in problem["errors"]} == {
        "id",
        "created_at",
        "updated_at",
        "active_records",
        "volume_tier",
        "links",
    }
    assert {e["message"] for e in problem["errors"]} == {"is read-only"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"name": 5}, "name"),
        ({"domain": "d" * 256}, "domain"),
        ({"url": "example.com"}, "url"),
        ({"url": "https://" + "u" * 505}, "url"),
        ({"description": None}, "description"),
    ],
)
def test_an_invalid_site_is_refused_naming_the_field(
    client: FlaskClient, fields: dict[str, Any], field: str
) -> None:
    problem = refused(client.post("/sites", json={"name": "Acme", **fields}))

    assert [e["field"] for e in problem["errors"]] == [field]
    assert problem["detail"] == f"{field}: {problem['errors'][0]['message']}"


def test_the_longest_allowed_values_are_accepted(client: FlaskClient) -> None:
    site = create_site(client, "n" * 128, domain="d" * 255, url="https://" + "u" * 504)
    customer = create_customer(
        client,
        site["id"],
        "c" * 128,
        email="e" * 242 + "@example.com",
        phone="1" * 32,
        country="c" * 64,
        state="s" * 64,
        city="c" * 64,
        pincode="p" * 16,
    )

    assert len(customer["email"]) == 254


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"site_id": "1"}, "site_id"),
        ({"site_id": True}, "site_id"),
        ({"site_id": 0}, "site_id"),
        ({"name": ""}, "name"),
        ({"email": "ada"}, "email"),
        ({"email": "ada@example"}, "email"),
        ({"email": "a@b@example.com"}, "email"),
        ({"email": "ada lovelace@example.com"}, "email"),
        ({"email": "e" * 243 + "@example.com"}, "email"),
        ({"phone": "555-CALL-NOW"}, "phone"),
        ({"phone": "1" * 33}, "phone"),
        ({"country": "c" * 65}, "country"),
        ({"state": "s" * 65}, "state"),
        ({"city": "c" * 65}, "city"),
        ({"pincode": "p" * 17}, "pincode"),
        ({"dob": "10/12/1815"}, "dob"),
        ({"dob": "1815-02-30"}, "dob"),
        ({"dob": "1815-12-10T00:00:00"}, "dob"),
        ({"dob": 19991231}, "dob"),
        ({"is_active": "yes"}, "is_active"),
        ({"is_active": 1}, "is_active"),
    ],
)
def test_an_invalid_customer_is_refused_naming_the_field(
    client: FlaskClient, engine: Engine, fields: dict[str, Any], field: str
) -> None:
    site_id = create_site(client)["id"]

    problem = refused(client.post("/customers", json={"site_id": site_id, "name": "A", **fields}))

    assert [e["field"] for e in problem["errors"]] == [field]
    assert count(engine, Customer) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "detail"),
    [
        ('{"name": "Acme"}', "text/plain", "Content-Type: application/json"),
        ("name=Acme", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        ('{"name": ', "application/json", "not valid JSON"),
        ("", "application/json", "not valid JSON"),
        ('"Acme"', "application/json", "expected a JSON object"),
        ("null", "application/json", "expected a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_400(
    client: FlaskClient, data: str, content_type: str, detail: str
) -> None:
    problem = refused(client.post("/sites", data=data, content_type=content_type))

    assert detail in problem["detail"]


# --- Tiers -------------------------------------------------------------------------------


def test_a_site_counts_only_its_active_customers_and_a_small_site_is_low_volume(
    client: FlaskClient,
) -> None:
    site_id = create_site(client)["id"]
    for n in range(3):
        create_customer(client, site_id, f"active {n}")
    create_customer(client, site_id, "gone", is_active=False)

    site = body_of(client.get(f"/sites/{site_id}"), 200)

    assert (site["active_records"], site["volume_tier"]) == (3, "low")


def test_a_customer_with_five_queued_jobs_is_very_active(
    client: FlaskClient, engine: Engine
) -> None:
    customer = create_customer(client, create_site(client)["id"])
    add_jobs(engine, customer["id"], [JobState.QUEUED] * 5 + [JobState.RUNNING])

    shown = body_of(client.get(f"/customers/{customer['id']}"), 200)
    listed = body_of(client.get("/customers"), 200)["items"][0]

    assert (shown["queued_jobs"], shown["activity_tier"]) == (5, "very_active")
    assert listed["activity_tier"] == "very_active"
    jobs = body_of(client.get(shown["links"]["jobs"]), 200)
    assert jobs["total"] == 6


def test_a_customer_with_four_queued_jobs_is_still_active(
    client: FlaskClient, engine: Engine
) -> None:
    customer = create_customer(client, create_site(client)["id"])
    add_jobs(engine, customer["id"], [JobState.QUEUED] * 4)

    shown = body_of(client.get(f"/customers/{customer['id']}"), 200)

    assert (shown["queued_jobs"], shown["activity_tier"]) == (4, "active")
