"""The registry through boto3's `iot` client: UpdateThing, thing types, static
thing groups with a hierarchy, memberships, event configurations, and the
registry events an MQTT subscriber receives once they are enabled."""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
from botocore.config import Config

from conftest import unique

ACCOUNT = "000000000000"
REGION = "us-east-1"

EVENT_FILTERS = [
    "$aws/events/thing/#",
    "$aws/events/thingType/#",
    "$aws/events/thingTypeAssociation/#",
    "$aws/events/thingGroup/#",
    "$aws/events/thingGroupMembership/#",
    "$aws/events/thingGroupHierarchy/#",
]


@pytest.fixture(scope="module", autouse=True)
def _ephemeral_https_port():
    """This module runs two servers at once (the module's and fresh ones):
    give each an ephemeral device-HTTPS port instead of the default 8443
    (`thingport serve` reads THINGPORT_HTTPS_LISTEN; a flag would win)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("THINGPORT_HTTPS_LISTEN", "127.0.0.1:0")
    yield
    mp.undo()


def iot_client(server):
    creds = json.loads((server.data_dir / "admin-credentials.json").read_text())
    endpoints = json.loads((server.data_dir / "endpoints.json").read_text())
    return boto3.client(
        "iot",
        endpoint_url=endpoints["api"],
        region_name=REGION,
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def iot(server):
    return iot_client(server)


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def names(items, key="groupName"):
    return [i[key] for i in items]


# ---------------------------------------------------------------------------
# UpdateThing
# ---------------------------------------------------------------------------

def test_update_thing_merge_replace_type_and_version(iot):
    name = unique("upd")
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"b": "2", "c": "3"}, "merge": True})
    t = iot.describe_thing(thingName=name)
    assert t["attributes"] == {"a": "1", "b": "2", "c": "3"}
    assert t["version"] == 2

    # merge: an empty value removes the attribute
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "", "d": "4"}, "merge": True},
                     expectedVersion=2)
    t = iot.describe_thing(thingName=name)
    assert t["attributes"] == {"b": "2", "c": "3", "d": "4"}
    assert t["version"] == 3

    # no merge: replace
    iot.update_thing(thingName=name, attributePayload={"attributes": {"z": "9"}})
    assert iot.describe_thing(thingName=name)["attributes"] == {"z": "9"}

    # no attribute payload: attributes unchanged, version still moves
    tt = unique("upd-type")
    iot.create_thing_type(thingTypeName=tt)
    iot.update_thing(thingName=name, thingTypeName=tt)
    t = iot.describe_thing(thingName=name)
    assert t["thingTypeName"] == tt
    assert t["attributes"] == {"z": "9"}
    assert t["version"] == 5
    assert name in [x["thingName"] for x in iot.list_things(thingTypeName=tt)["things"]]

    iot.update_thing(thingName=name, removeThingType=True)
    t = iot.describe_thing(thingName=name)
    assert "thingTypeName" not in t
    assert t["version"] == 6


def test_update_thing_errors(iot):
    name = unique("upd-err")
    iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.update_thing(thingName=unique("ghost"), attributePayload={"attributes": {"a": "1"}})
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing(thingName=name, thingTypeName=unique("no-such-type"))
    with pytest.raises(iot.exceptions.VersionConflictException) as e:
        iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "1"}}, expectedVersion=7)
    assert error_of(e) == ("VersionConflictException", 409)
    assert iot.describe_thing(thingName=name)["version"] == 1

    # at most 3 attributes without a type, 50 with one
    four = {f"k{i}": str(i) for i in range(4)}
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.update_thing(thingName=name, attributePayload={"attributes": four})
    assert error_of(e) == ("InvalidRequestException", 400)
    tt = unique("fifty")
    iot.create_thing_type(thingTypeName=tt)
    fifty = {f"k{i}": str(i) for i in range(50)}
    iot.update_thing(thingName=name, thingTypeName=tt, attributePayload={"attributes": fifty})
    assert len(iot.describe_thing(thingName=name)["attributes"]) == 50
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"one-more": "x"}, "merge": True})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, removeThingType=True)  # would leave 50 untyped attributes

    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, thingTypeName=tt, removeThingType=True)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"bad name": "x"}, "merge": True})


# ---------------------------------------------------------------------------
# Thing types
# ---------------------------------------------------------------------------

def test_thing_type_create_describe_list(iot):
    name = unique("sensor")
    r = iot.create_thing_type(
        thingTypeName=name,
        thingTypeProperties={"thingTypeDescription": "A temperature sensor", "searchableAttributes": ["room", "floor"]},
        tags=[{"Key": "team", "Value": "iot"}],
    )
    assert r["thingTypeName"] == name
    assert r["thingTypeArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thingtype/{name}"
    assert len(r["thingTypeId"]) == 36

    d = iot.describe_thing_type(thingTypeName=name)
    assert d["thingTypeId"] == r["thingTypeId"]
    assert d["thingTypeArn"] == r["thingTypeArn"]
    assert d["thingTypeProperties"] == {"thingTypeDescription": "A temperature sensor",
                                        "searchableAttributes": ["room", "floor"]}
    meta = d["thingTypeMetadata"]
    assert meta["deprecated"] is False
    assert "deprecationDate" not in meta
    assert isinstance(meta["creationDate"], datetime.datetime)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - meta["creationDate"]).total_seconds()) < 60

    others = [unique("sensor") for _ in range(3)]
    for o in others:
        iot.create_thing_type(thingTypeName=o)
    listed = iot.list_thing_types()["thingTypes"]
    assert {name, *others} <= {t["thingTypeName"] for t in listed}
    one = iot.list_thing_types(thingTypeName=name)["thingTypes"]
    assert len(one) == 1
    assert one[0]["thingTypeArn"] == r["thingTypeArn"]
    assert one[0]["thingTypeProperties"]["searchableAttributes"] == ["room", "floor"]
    assert one[0]["thingTypeMetadata"]["deprecated"] is False

    # pagination by hand and through boto3's paginator
    first = iot.list_thing_types(maxResults=2)
    assert len(first["thingTypes"]) == 2 and "nextToken" in first
    second = iot.list_thing_types(maxResults=2, nextToken=first["nextToken"])
    assert names(second["thingTypes"], "thingTypeName")[0] not in names(first["thingTypes"], "thingTypeName")
    pages = iot.get_paginator("list_thing_types").paginate(PaginationConfig={"PageSize": 1})
    via_pages = [t["thingTypeName"] for p in pages for t in p["thingTypes"]]
    assert via_pages == sorted(via_pages)
    assert set(via_pages) == {t["thingTypeName"] for t in listed}


def test_thing_type_bad_input(iot):
    name = unique("dup-type")
    iot.create_thing_type(thingTypeName=name)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing_type(thingTypeName=name)
    assert error_of(e) == ("ResourceAlreadyExistsException", 409)
    for bad in ["bad name", "bad!name", "x" * 129]:
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_thing_type(thingTypeName=bad)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_type(thingTypeName=unique("t"),
                              thingTypeProperties={"searchableAttributes": ["a", "b", "c", "d"]})
    ghost = unique("ghost-type")
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.describe_thing_type(thingTypeName=ghost)
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.deprecate_thing_type(thingTypeName=ghost)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.delete_thing_type(thingTypeName=ghost)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName=unique("typed"), thingTypeName=ghost)


def test_thing_type_deprecate_and_delete(iot):
    name = unique("old-type")
    iot.create_thing_type(thingTypeName=name)
    user = unique("typed")
    iot.create_thing(thingName=user, thingTypeName=name, attributePayload={"attributes": {"k": "v"}})

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName=name)  # not deprecated
    assert "deprecate" in e.value.response["Error"]["Message"]

    iot.deprecate_thing_type(thingTypeName=name)
    meta = iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]
    assert meta["deprecated"] is True
    assert isinstance(meta["deprecationDate"], datetime.datetime)
    assert iot.list_thing_types(thingTypeName=name)["thingTypes"][0]["thingTypeMetadata"]["deprecated"] is True

    # a deprecated type takes no new things
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName=unique("typed"), thingTypeName=name)
    other = unique("untyped")
    iot.create_thing(thingName=other)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName=other, thingTypeName=name)
    # ... but a thing that has it keeps it through updates
    iot.update_thing(thingName=user, thingTypeName=name, attributePayload={"attributes": {"k": "w"}})

    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_type(thingTypeName=name)  # still used
    assert "used by 1 thing" in e.value.response["Error"]["Message"]

    iot.deprecate_thing_type(thingTypeName=name, undoDeprecate=True)
    meta = iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]
    assert meta["deprecated"] is False
    iot.create_thing(thingName=unique("typed"), thingTypeName=name)
    for t in iot.list_things(thingTypeName=name)["things"]:
        iot.delete_thing(thingName=t["thingName"])

    # AWS makes you wait 5 minutes after deprecating; Thingport does not.
    iot.deprecate_thing_type(thingTypeName=name)
    iot.delete_thing_type(thingTypeName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=name)


# ---------------------------------------------------------------------------
# Thing groups
# ---------------------------------------------------------------------------

def test_thing_group_create_describe_update(iot):
    root, child = unique("root"), unique("child")
    r = iot.create_thing_group(
        thingGroupName=root,
        thingGroupProperties={"thingGroupDescription": "Building A",
                              "attributePayload": {"attributes": {"site": "berlin", "floor": "1"}}},
        tags=[{"Key": "env", "Value": "test"}],
    )
    assert r["thingGroupName"] == root
    assert r["thingGroupArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{root}"
    assert len(r["thingGroupId"]) == 36
    c = iot.create_thing_group(thingGroupName=child, parentGroupName=root)

    d = iot.describe_thing_group(thingGroupName=root)
    assert d["thingGroupId"] == r["thingGroupId"]
    assert d["thingGroupArn"] == r["thingGroupArn"]
    assert d["version"] == 1
    assert d["thingGroupProperties"] == {"thingGroupDescription": "Building A",
                                         "attributePayload": {"attributes": {"site": "berlin", "floor": "1"}}}
    assert "parentGroupName" not in d["thingGroupMetadata"]
    assert d["thingGroupMetadata"]["rootToParentThingGroups"] == []
    assert isinstance(d["thingGroupMetadata"]["creationDate"], datetime.datetime)
    assert "status" not in d  # only dynamic groups have one

    dc = iot.describe_thing_group(thingGroupName=child)
    assert dc["thingGroupId"] == c["thingGroupId"]
    assert dc["thingGroupMetadata"]["parentGroupName"] == root
    assert dc["thingGroupMetadata"]["rootToParentThingGroups"] == [{"groupName": root, "groupArn": r["thingGroupArn"]}]

    # update: merge, then replace, with version checks
    v = iot.update_thing_group(thingGroupName=root, expectedVersion=1,
                               thingGroupProperties={"attributePayload": {"attributes": {"floor": "", "zone": "eu"},
                                                                          "merge": True}})
    assert v["version"] == 2
    d = iot.describe_thing_group(thingGroupName=root)
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"site": "berlin", "zone": "eu"}
    assert d["thingGroupProperties"]["thingGroupDescription"] == "Building A"
    with pytest.raises(iot.exceptions.VersionConflictException) as e:
        iot.update_thing_group(thingGroupName=root, expectedVersion=1,
                               thingGroupProperties={"thingGroupDescription": "stale"})
    assert error_of(e) == ("VersionConflictException", 409)
    v = iot.update_thing_group(thingGroupName=root, thingGroupProperties={
        "thingGroupDescription": "Building B", "attributePayload": {"attributes": {"only": "this"}}})
    assert v["version"] == 3
    d = iot.describe_thing_group(thingGroupName=root)
    assert d["thingGroupProperties"] == {"thingGroupDescription": "Building B",
                                         "attributePayload": {"attributes": {"only": "this"}}}
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_thing_group(thingGroupName=unique("ghost"), thingGroupProperties={"thingGroupDescription": "x"})


def test_thing_group_bad_input(iot):
    g = unique("grp")
    iot.create_thing_group(thingGroupName=g)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as e:
        iot.create_thing_group(thingGroupName=g)
    assert error_of(e) == ("ResourceAlreadyExistsException", 409)
    for bad in ["bad name", "bad!name", "ü", "x" * 129]:
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_thing_group(thingGroupName=bad)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.create_thing_group(thingGroupName=unique("orphan"), parentGroupName=unique("no-parent"))
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as e:
        iot.describe_thing_group(thingGroupName=unique("ghost"))
    assert error_of(e) == ("ResourceNotFoundException", 404)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName=unique("attrs"),
                               thingGroupProperties={"attributePayload": {"attributes": {"bad key": "v"}}})


def test_thing_group_hierarchy_depth_list_and_delete(iot):
    chain = [unique(f"lvl{i}") for i in range(1, 8)]
    iot.create_thing_group(thingGroupName=chain[0])
    for parent, child in zip(chain, chain[1:]):
        iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
    d = iot.describe_thing_group(thingGroupName=chain[-1])
    assert names(d["thingGroupMetadata"]["rootToParentThingGroups"]) == chain[:-1]
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.create_thing_group(thingGroupName=unique("lvl8"), parentGroupName=chain[-1])
    assert "7" in e.value.response["Error"]["Message"]

    sibling = unique("sib")
    iot.create_thing_group(thingGroupName=sibling, parentGroupName=chain[0])

    everything = names(iot.list_thing_groups()["thingGroups"])
    assert set(chain) | {sibling} <= set(everything)
    assert everything == sorted(everything)
    roots = names(iot.list_thing_groups(recursive=False)["thingGroups"])
    assert chain[0] in roots and chain[1] not in roots and sibling not in roots
    children = names(iot.list_thing_groups(parentGroup=chain[0])["thingGroups"])
    assert sorted(children) == sorted([chain[1], sibling])
    descendants = names(iot.list_thing_groups(parentGroup=chain[0], recursive=True)["thingGroups"])
    assert sorted(descendants) == sorted(chain[1:] + [sibling])
    prefixed = names(iot.list_thing_groups(namePrefixFilter=sibling[:-1])["thingGroups"])
    assert sibling in prefixed and chain[0] not in prefixed
    arns = iot.list_thing_groups(parentGroup=chain[0])["thingGroups"]
    assert all(a["groupArn"].endswith(":thinggroup/" + a["groupName"]) for a in arns)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups(parentGroup=unique("ghost"))
    page = iot.list_thing_groups(parentGroup=chain[0], recursive=True, maxResults=2)
    assert len(page["thingGroups"]) == 2 and page["nextToken"]
    pages = iot.get_paginator("list_thing_groups").paginate(
        parentGroup=chain[0], recursive=True, PaginationConfig={"PageSize": 3})
    assert sorted(g["groupName"] for p in pages for g in p["thingGroups"]) == sorted(descendants)

    # a group with children cannot go; a leaf can, and deleting is idempotent
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.delete_thing_group(thingGroupName=chain[0])
    assert "child" in e.value.response["Error"]["Message"]
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing_group(thingGroupName=chain[-1], expectedVersion=5)
    iot.delete_thing_group(thingGroupName=chain[-1], expectedVersion=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=chain[-1])
    iot.delete_thing_group(thingGroupName=chain[-1])  # AWS: deleting a missing group succeeds
    iot.create_thing_group(thingGroupName=unique("lvl7b"), parentGroupName=chain[-2])  # depth 7 free again
    for g in [sibling]:
        iot.delete_thing_group(thingGroupName=g)
    assert sibling not in names(iot.list_thing_groups(parentGroup=chain[0])["thingGroups"])


def test_thing_group_membership(iot):
    top, mid, leaf, other = (unique(n) for n in ("top", "mid", "leaf", "other"))
    top_arn = iot.create_thing_group(thingGroupName=top)["thingGroupArn"]
    iot.create_thing_group(thingGroupName=mid, parentGroupName=top)
    iot.create_thing_group(thingGroupName=leaf, parentGroupName=mid)
    iot.create_thing_group(thingGroupName=other)
    t1, t2, t3 = (unique(n) for n in ("m1", "m2", "m3"))
    t1_arn = iot.create_thing(thingName=t1)["thingArn"]
    iot.create_thing(thingName=t2)
    iot.create_thing(thingName=t3)

    iot.add_thing_to_thing_group(thingGroupArn=top_arn, thingArn=t1_arn)  # by ARN
    iot.add_thing_to_thing_group(thingGroupName=mid, thingName=t2)
    iot.add_thing_to_thing_group(thingGroupName=mid, thingName=t2)  # again: no-op
    iot.add_thing_to_thing_group(thingGroupName=leaf, thingName=t3)
    iot.add_thing_to_thing_group(thingGroupName=other, thingName=t3, overrideDynamicGroups=False)

    assert iot.list_things_in_thing_group(thingGroupName=top)["things"] == [t1]
    assert sorted(iot.list_things_in_thing_group(thingGroupName=top, recursive=True)["things"]) == sorted([t1, t2, t3])
    assert sorted(iot.list_things_in_thing_group(thingGroupName=mid, recursive=True)["things"]) == sorted([t2, t3])
    assert iot.list_things_in_thing_group(thingGroupName=mid, recursive=False)["things"] == [t2]
    page = iot.list_things_in_thing_group(thingGroupName=top, recursive=True, maxResults=2)
    assert len(page["things"]) == 2 and page["nextToken"]
    rest = iot.list_things_in_thing_group(thingGroupName=top, recursive=True, maxResults=2, nextToken=page["nextToken"])
    assert sorted(page["things"] + rest["things"]) == sorted([t1, t2, t3]) and "nextToken" not in rest

    groups = iot.list_thing_groups_for_thing(thingName=t3)["thingGroups"]
    assert sorted(names(groups)) == sorted([leaf, other])
    assert all(g["groupArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{g['groupName']}" for g in groups)

    # one line of ancestry per thing
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=top, thingName=t3)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=leaf, thingName=t1)

    # unknown things and groups
    for kw in ({"thingGroupName": unique("ghost"), "thingName": t1},
               {"thingGroupName": top, "thingName": unique("ghost")}):
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.add_thing_to_thing_group(**kw)
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.remove_thing_from_thing_group(**kw)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingName=t1)  # no group
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupArn=t1_arn, thingName=t1)  # a thing ARN is not a group ARN
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_things_in_thing_group(thingGroupName=unique("ghost"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_thing_groups_for_thing(thingName=unique("ghost"))

    iot.remove_thing_from_thing_group(thingGroupName=other, thingName=t3)
    iot.remove_thing_from_thing_group(thingGroupName=other, thingName=t3)  # not a member: no-op
    assert names(iot.list_thing_groups_for_thing(thingName=t3)["thingGroups"]) == [leaf]

    # deleting a thing removes its memberships; deleting a group keeps its things
    iot.delete_thing(thingName=t2)
    assert iot.list_things_in_thing_group(thingGroupName=mid)["things"] == []
    iot.delete_thing_group(thingGroupName=leaf)
    assert iot.list_thing_groups_for_thing(thingName=t3)["thingGroups"] == []
    assert iot.describe_thing(thingName=t3)["thingName"] == t3


def test_ten_groups_per_thing(iot):
    thing = unique("busy")
    iot.create_thing(thingName=thing)
    groups = [unique("ten") for _ in range(11)]
    for g in groups:
        iot.create_thing_group(thingGroupName=g)
    for g in groups[:10]:
        iot.add_thing_to_thing_group(thingGroupName=g, thingName=thing)
    with pytest.raises(iot.exceptions.InvalidRequestException) as e:
        iot.add_thing_to_thing_group(thingGroupName=groups[10], thingName=thing)
    assert "10" in e.value.response["Error"]["Message"]
    assert len(iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]) == 10


# ---------------------------------------------------------------------------
# Event configurations and registry events
# ---------------------------------------------------------------------------

def test_event_configurations_round_trip(fresh_server):
    iot = iot_client(fresh_server)
    c = iot.describe_event_configurations()
    assert set(c["eventConfigurations"]) >= {"THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP",
                                             "THING_GROUP_HIERARCHY", "THING_TYPE_ASSOCIATION"}
    assert all(v == {"Enabled": False} for v in c["eventConfigurations"].values())  # off by default
    assert isinstance(c["creationDate"], datetime.datetime)
    assert isinstance(c["lastModifiedDate"], datetime.datetime)

    iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True},
                                                         "THING_GROUP": {"Enabled": True}})
    iot.update_event_configurations(eventConfigurations={"THING_GROUP": {"Enabled": False}})
    c2 = iot.describe_event_configurations()
    assert c2["eventConfigurations"]["THING"] == {"Enabled": True}
    assert c2["eventConfigurations"]["THING_GROUP"] == {"Enabled": False}
    assert c2["creationDate"] == c["creationDate"]
    assert c2["lastModifiedDate"] >= c["lastModifiedDate"]

    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_event_configurations(eventConfigurations={"NOT_A_TYPE": {"Enabled": True}})

    # persisted across a restart
    fresh_server.stop()
    fresh_server.start()
    iot = iot_client(fresh_server)
    assert iot.describe_event_configurations()["eventConfigurations"]["THING"] == {"Enabled": True}


def watcher(paho, server, device):
    w = paho(server, device, version=5)
    w.connect()
    assert w.subscribe([(f, 1) for f in EVENT_FILTERS]) == [1] * len(EVENT_FILTERS)
    return w


def event(w, topic):
    m = w.expect(topic)
    p = json.loads(m.payload)
    assert p["accountId"] == ACCOUNT
    assert isinstance(p["eventId"], str) and p["eventId"]
    assert isinstance(p["timestamp"], int)
    return p


def test_registry_events_not_published_while_disabled(fresh_server, paho):
    device = fresh_server.provision("quiet-watcher")
    iot = iot_client(fresh_server)
    w = watcher(paho, fresh_server, device)
    iot.create_thing_type(thingTypeName="qt")
    iot.create_thing(thingName="q1", thingTypeName="qt")
    iot.update_thing(thingName="q1", attributePayload={"attributes": {"a": "1"}})
    iot.create_thing_group(thingGroupName="qg")
    iot.create_thing_group(thingGroupName="qg2", parentGroupName="qg")
    iot.add_thing_to_thing_group(thingGroupName="qg", thingName="q1")
    iot.delete_thing(thingName="q1")
    w.expect_none(1.0)

    # only the enabled kind is published
    iot.update_event_configurations(eventConfigurations={"THING_GROUP": {"Enabled": True}})
    iot.create_thing(thingName="q2")
    iot.create_thing_group(thingGroupName="qg3")
    m = w.expect()
    assert m.topic == "$aws/events/thingGroup/qg3/created"
    w.expect_none(0.6)

    # and switching it off again stops it
    iot.update_event_configurations(eventConfigurations={"THING_GROUP": {"Enabled": False}})
    iot.create_thing_group(thingGroupName="qg4")
    w.expect_none(0.6)


def test_registry_events_published_when_enabled(fresh_server, paho):
    device = fresh_server.provision("event-watcher")
    iot = iot_client(fresh_server)
    w = watcher(paho, fresh_server, device)
    iot.update_event_configurations(eventConfigurations={
        t: {"Enabled": True} for t in ("THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP",
                                       "THING_GROUP_HIERARCHY", "THING_TYPE_ASSOCIATION")})

    # thing type
    tt = iot.create_thing_type(thingTypeName="evtype",
                               thingTypeProperties={"thingTypeDescription": "d", "searchableAttributes": ["s"]})
    p = event(w, "$aws/events/thingType/evtype/created")
    assert p["eventType"] == "THING_TYPE_EVENT" and p["operation"] == "CREATED"
    assert p["thingTypeId"] == tt["thingTypeId"] and p["thingTypeName"] == "evtype"
    assert p["isDeprecated"] is False and p["deprecationDate"] is None
    assert p["searchableAttributes"] == ["s"] and p["description"] == "d"

    # thing: created (with a type association), updated, deleted
    t = iot.create_thing(thingName="evthing", thingTypeName="evtype", attributePayload={"attributes": {"a": "1"}})
    p = event(w, "$aws/events/thing/evthing/created")
    assert p == {**p, "eventType": "THING_EVENT", "operation": "CREATED", "thingId": t["thingId"],
                 "thingName": "evthing", "versionNumber": 1, "thingTypeName": "evtype", "attributes": {"a": "1"}}
    p = event(w, "$aws/events/thingTypeAssociation/thing/evthing/evtype")
    assert p["eventType"] == "THING_TYPE_ASSOCIATION_EVENT" and p["operation"] == "CREATED"
    assert p["thingId"] == t["thingId"] and p["thingTypeName"] == "evtype"

    iot.update_thing(thingName="evthing", attributePayload={"attributes": {"b": "2"}, "merge": True})
    p = event(w, "$aws/events/thing/evthing/updated")
    assert p["operation"] == "UPDATED" and p["versionNumber"] == 2 and p["attributes"] == {"a": "1", "b": "2"}
    iot.update_thing(thingName="evthing", removeThingType=True)
    p = event(w, "$aws/events/thing/evthing/updated")
    assert p["thingTypeName"] is None and p["versionNumber"] == 3
    p = event(w, "$aws/events/thingTypeAssociation/thing/evthing/evtype")
    assert p["operation"] == "DELETED"

    iot.deprecate_thing_type(thingTypeName="evtype")
    p = event(w, "$aws/events/thingType/evtype/updated")
    assert p["isDeprecated"] is True and isinstance(p["deprecationDate"], int)
    iot.delete_thing_type(thingTypeName="evtype")
    p = event(w, "$aws/events/thingType/evtype/deleted")
    assert p["operation"] == "DELETED"

    # groups: created, hierarchy added, updated
    parent = iot.create_thing_group(thingGroupName="evparent")
    p = event(w, "$aws/events/thingGroup/evparent/created")
    assert p["eventType"] == "THING_GROUP_EVENT" and p["operation"] == "CREATED"
    assert p["thingGroupId"] == parent["thingGroupId"] and p["versionNumber"] == 1
    assert p["parentGroupName"] is None and p["rootToParentThingGroups"] == []
    child = iot.create_thing_group(thingGroupName="evchild", parentGroupName="evparent",
                                   thingGroupProperties={"thingGroupDescription": "kid",
                                                         "attributePayload": {"attributes": {"k": "v"}}})
    p = event(w, "$aws/events/thingGroup/evchild/created")
    assert p["parentGroupName"] == "evparent" and p["parentGroupId"] == parent["thingGroupId"]
    assert p["rootToParentThingGroups"] == [{"groupArn": parent["thingGroupArn"], "groupId": parent["thingGroupId"]}]
    assert p["description"] == "kid" and p["attributes"] == {"k": "v"}
    p = event(w, "$aws/events/thingGroupHierarchy/thingGroup/evparent/childThingGroup/evchild/added")
    assert p == {**p, "eventType": "THING_GROUP_HIERARCHY_EVENT", "operation": "ADDED",
                 "thingGroupId": parent["thingGroupId"], "thingGroupName": "evparent",
                 "childGroupId": child["thingGroupId"], "childGroupName": "evchild"}
    iot.update_thing_group(thingGroupName="evchild", thingGroupProperties={"thingGroupDescription": "new"})
    p = event(w, "$aws/events/thingGroup/evchild/updated")
    assert p["operation"] == "UPDATED" and p["versionNumber"] == 2 and p["description"] == "new"

    # membership added / removed
    iot.add_thing_to_thing_group(thingGroupName="evchild", thingName="evthing")
    p = event(w, "$aws/events/thingGroupMembership/thingGroup/evchild/thing/evthing/added")
    assert p["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT" and p["operation"] == "ADDED"
    assert p["groupArn"] == child["thingGroupArn"] and p["groupId"] == child["thingGroupId"]
    assert p["thingArn"] == t["thingArn"] and p["thingId"] == t["thingId"]
    membership = p["membershipId"]
    iot.remove_thing_from_thing_group(thingGroupName="evchild", thingName="evthing")
    p = event(w, "$aws/events/thingGroupMembership/thingGroup/evchild/thing/evthing/removed")
    assert p["operation"] == "REMOVED" and p["membershipId"] == membership

    # deleting a group with a member: membership removed, hierarchy removed, group deleted
    iot.add_thing_to_thing_group(thingGroupName="evchild", thingName="evthing")
    event(w, "$aws/events/thingGroupMembership/thingGroup/evchild/thing/evthing/added")
    iot.delete_thing_group(thingGroupName="evchild")
    event(w, "$aws/events/thingGroupMembership/thingGroup/evchild/thing/evthing/removed")
    p = event(w, "$aws/events/thingGroupHierarchy/thingGroup/evparent/childThingGroup/evchild/removed")
    assert p["operation"] == "REMOVED"
    p = event(w, "$aws/events/thingGroup/evchild/deleted")
    assert p["operation"] == "DELETED" and p["thingGroupName"] == "evchild"

    iot.delete_thing(thingName="evthing")
    p = event(w, "$aws/events/thing/evthing/deleted")
    assert p["operation"] == "DELETED" and p["thingId"] == t["thingId"]
    w.expect_none(0.6)
