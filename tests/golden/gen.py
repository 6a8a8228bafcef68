#!/usr/bin/env python3
"""Writes the golden bodies: each event written out by hand as the Python
dict the Flagsmith server would build, serialised the way it does,
json.dumps(payload, sort_keys=True).  The C structs for the same events are
in tests/support/sample_events.c; test_render compares the bytes.

Run from the repository root: python3 tests/golden/gen.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, payload, compact=False):
    seps = (",", ":") if compact else (", ", ": ")
    body = json.dumps(payload, sort_keys=True, separators=seps)
    with open(os.path.join(HERE, name + ".json"), "w", encoding="ascii", newline="") as f:
        f.write(body)


# The Flagsmith "Test webhook" samples (api/webhooks/sample_webhook_data.py).
def sample_state(enabled, value):
    return {
        "feature": {
            "id": 1,
            "created_date": "2021-02-10T20:03:43.348556Z",
            "default_enabled": False,
            "description": "This is a description",
            "initial_value": None,
            "name": "test_feature",
            "project": {"id": 1, "name": "Test Project"},
            "type": "CONFIG",
        },
        "environment": {"id": 1, "name": "Development"},
        "identity": 1,
        "identity_identifier": "test_identity",
        "feature_segment": None,
        "enabled": enabled,
        "feature_state_value": value,
        "multivariate_feature_state_values": [
            {"id": 1, "multivariate_feature_option": {"id": 1, "value": "variant_a"},
             "percentage_allocation": 50}
        ],
    }


sample_env = {
    "event_type": "FLAG_UPDATED",
    "data": {
        "changed_by": "user@domain.com",
        "timestamp": "2021-06-18T07:50:26.595298Z",
        "new_state": sample_state(True, "feature_state_value"),
        "previous_state": sample_state(False, "old_feature_state_value"),
    },
}
sample_org = {
    "event_type": "AUDIT_LOG_CREATED",
    "data": {
        "created_date": "2020-02-23T17:30:57.006318Z",
        "log": "New Flag / Remote Config created: my_feature",
        "author": {"id": 1, "email": "user@domain.com", "first_name": "Jane", "last_name": "Doe"},
        "environment": None,
        "project": {"id": 1, "name": "Test Project", "organisation": 1},
        "related_object_id": 1,
        "related_object_type": "FEATURE",
    },
}
write("sample_environment", sample_env)
write("sample_organisation", sample_org)
write("sample_environment_compact", sample_env, compact=True)

# A segment override of a multivariate flag, first version (no previous state).
write("segment_override", {
    "event_type": "FLAG_UPDATED",
    "data": {
        "changed_by": "ops@example.com",
        "timestamp": "2024-05-06T07:08:09.000001Z",
        "new_state": {
            "enabled": True,
            "environment": {"id": 7, "name": "Prod\u00e9 \U0001F680"},
            "feature": {
                "created_date": "2023-01-02T03:04:05.000000Z",
                "default_enabled": True,
                "description": None,
                "id": 9223372036854775807,
                "initial_value": "blue",
                "name": "checkout\tflow\n",
                "project": {"id": 3, "name": 'Web "App" \\ <b>'},
                "type": "MULTIVARIATE",
            },
            "feature_segment": {"priority": 1,
                                "segment": {"description": None, "id": 12, "name": "beta users"}},
            "feature_state_value": 42,
            "identity": None,
            "identity_identifier": None,
            "multivariate_feature_state_values": [
                {"id": 1, "multivariate_feature_option": {"id": 10, "value": 7},
                 "percentage_allocation": 33.3},
                {"id": 2, "multivariate_feature_option": {"id": 11, "value": True},
                 "percentage_allocation": 66.7},
            ],
        },
    },
})

# Deleting an Edge identity's override: new_state null, string identity id.
write("flag_deleted", {
    "event_type": "FLAG_DELETED",
    "data": {
        "changed_by": "",
        "timestamp": "2022-11-30T23:59:59.999999Z",
        "new_state": None,
        "previous_state": {
            "enabled": False,
            "environment": {"id": -1, "name": ""},
            "feature": {
                "created_date": "2019-07-01T12:00:00.000000Z",
                "default_enabled": False,
                "description": "\u65e5\u672c \u2028 \x7f \x01",
                "id": 0,
                "initial_value": None,
                "name": "legacy_flag",
                "project": {"id": -9223372036854775808, "name": "p"},
                "type": "FLAG",
            },
            "feature_segment": None,
            "feature_state_value": False,
            "identity": "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
            "identity_identifier": "user-123",
            "multivariate_feature_state_values": [],
        },
    },
})

# An audit log with every optional member and a richer project object.
write("audit_full", {
    "event_type": "AUDIT_LOG_CREATED",
    "data": {
        "id": 9001,
        "created_date": "2026-11-01T00:00:00Z",
        "log": "Flag state / Remote Config value updated for feature: dark_mode",
        "author": None,
        "environment": {"id": 7, "name": "Production", "api_key": "ser.abc", "project": 3},
        "project": {"id": 3, "name": "Web", "organisation": 1,
                    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "hide_disabled_flags": False, "stale_flags_limit_days": 30},
        "related_object_id": None,
        "related_object_type": "FEATURE_STATE",
        "related_object_uuid": "6b1f6c1e-1111-4a2b-9c3d-000000000001",
        "is_system_event": False,
        "x_note": [1, 2.5, None, "z", {"b": 1, "a": [1e-05, 1e16]}],
    },
})

# Versioning v2: a new version published.
write("version_published", {
    "event_type": "NEW_VERSION_PUBLISHED",
    "data": {
        "uuid": "f4b8a2e0-5c1d-4e6f-8a9b-0c1d2e3f4a5b",
        "feature": {"id": 5, "name": "checkout_v2"},
        "published_by": {"id": 4, "email": "pub@example.com"},
        "feature_states": [
            {"enabled": True, "value": "on", "multivariate_feature_state_values": [
                {"id": 1, "multivariate_feature_option": {"id": 2, "value": "a"},
                 "percentage_allocation": 50.0}]},
            {"enabled": False, "value": None, "multivariate_feature_state_values": []},
        ],
    },
})
write("version_published_by_api_key", {
    "event_type": "NEW_VERSION_PUBLISHED",
    "data": {"uuid": "00000000-0000-4000-8000-000000000000",
             "feature": {"id": 6, "name": "x"}, "published_by": None, "feature_states": []},
})


# The 2020 shape (flagsmith-docs, system-administration.md of 2020).
def state_2020(enabled, initial_value):
    return {
        "enabled": enabled,
        "environment": 23,
        "feature": {
            "created_date": "2020-02-25T22:11:16.355547Z",
            "default_enabled": False,
            "description": None,
            "id": 2411,
            "initial_value": initial_value,
            "name": "feature_name",
            "project": 12,
            "type": "CONFIG",
        },
        "feature_segment": None,
        "feature_state_value": None,
        "id": 10430,
        "identity": None,
        "identity_identifier": None,
    }


write("flag_2020", {
    "event_type": "FLAG_UPDATED",
    "data": {
        "changed_by": "Some User",
        "new_state": state_2020(True, "blue"),
        "previous_state": state_2020(False, "blue"),
        "timestamp": "2020-03-07T13:59:07.040Z",
    },
})

# Bullet Train: the audit log an environment endpoint received.
write("audit_bullet_train", {
    "event_type": "AUDIT_LOG_CREATED",
    "data": {
        "author": {"email": "ben@bullet-train.io", "first_name": "Ben", "id": 8, "last_name": "Rometsch"},
        "created_date": "2020-02-24T11:18:28.809498Z",
        "environment": {"api_key": "AF6tmkbBLywFXChJ7dTyCo", "id": 14, "name": "Development", "project": 7},
        "log": "Flag state / Remote Config value updated for feature: power_user",
        "project": {"id": 7, "name": "This is great", "organisation": 7},
        "related_object_id": 37,
        "related_object_type": "FEATURE_STATE",
    },
})
