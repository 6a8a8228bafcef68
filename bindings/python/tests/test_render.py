"""flaghook.render: the golden bodies byte for byte, exact int64, Python's
JSON rules, and errors that name the JSON path."""

import copy
import glob
import json
import os
import unittest

import flaghook

from support import GOLDEN, feature_state, flag_updated, load_vectors


def _state_2020_input(state):
    """The current-shape feature state that the 2020 profile renders as
    `state` (a state of the 2020 golden body)."""
    s = copy.deepcopy(state)
    s["environment"] = {"id": s["environment"], "name": "unused in 2020"}
    s["feature"]["project"] = {"id": s["feature"]["project"], "name": "unused"}
    return s


def golden_input(name, body):
    """The event and render options that give golden body `name`."""
    payload = json.loads(body)
    options = {}
    if name.endswith("_compact"):
        options["compact"] = True
    if name == "audit_bullet_train":
        options["profile"] = "bullet_train"
    if name == "flag_2020":
        options["profile"] = "flagsmith_2020"
        data = payload["data"]
        for key in ("new_state", "previous_state"):
            data[key] = _state_2020_input(data[key])
        # The 2020 shape has milliseconds; the microseconds are dropped.
        data["timestamp"] = data["timestamp"].replace(".040Z", ".040123Z")
    if payload["event_type"] == "NEW_VERSION_PUBLISHED":
        payload["environment_id"] = 7
    return payload, options


class GoldenTest(unittest.TestCase):
    def test_every_golden_body(self):
        files = sorted(glob.glob(os.path.join(GOLDEN, "*.json")))
        self.assertGreaterEqual(len(files), 10, GOLDEN)
        for path in files:
            name = os.path.basename(path)[:-len(".json")]
            with open(path, "rb") as f:
                want = f.read()
            event, options = golden_input(name, want)
            for form, given in (("dict", event), ("str", json.dumps(event)),
                                ("bytes", json.dumps(event, ensure_ascii=False).encode("utf-8"))):
                with self.subTest(golden=name, given=form):
                    self.assertEqual(flaghook.render(given, **options), want)

    def test_golden_bytes_render_as_themselves(self):
        # The payload is the event: a golden body given back as JSON bytes
        # (not parsed by Python at all) renders as the same bytes.
        path = os.path.join(GOLDEN, "segment_override.json")
        with open(path, "rb") as f:
            want = f.read()
        self.assertEqual(flaghook.render(want), want)


class Int64Test(unittest.TestCase):
    def event(self, feature_id, project_id):
        ev = flag_updated()
        ev["data"]["new_state"]["feature"]["id"] = feature_id
        ev["data"]["new_state"]["feature"]["project"]["id"] = project_id
        return ev

    def test_extremes_are_exact(self):
        for hi, lo in ((2**63 - 1, -2**63), (2**53 + 1, -(2**53 + 1)), (2**63 - 2, -2**63 + 1)):
            with self.subTest(hi=hi):
                body = flaghook.render(self.event(hi, lo))
                self.assertIn(b'"id": %d' % hi, body)
                self.assertIn(b'"id": %d' % lo, body)
                data = json.loads(body)["data"]["new_state"]["feature"]
                self.assertEqual((data["id"], data["project"]["id"]), (hi, lo))

    def test_beyond_int64_names_the_path(self):
        for value in (2**63, -2**63 - 1, 10**30):
            with self.subTest(value=value):
                with self.assertRaises(flaghook.EventError) as cm:
                    flaghook.render(self.event(value, 1))
                self.assertIn("$.data.new_state.feature.id", cm.exception.message)
                self.assertEqual(cm.exception.name, "FLAGHOOK_EEVENT")


class PythonJSONTest(unittest.TestCase):
    """../shared/vectors/python-json.json through an audit log's extra
    member: what json.dumps(value, sort_keys=True) writes, every byte."""

    def test_vectors(self):
        cases = load_vectors("python-json.json")["cases"]
        for case in cases:
            with self.subTest(case=case["name"]):
                event = {
                    "event_type": "AUDIT_LOG_CREATED",
                    "data": {"created_date": "2024-01-02T03:04:05Z", "log": "x",
                             "project": {"id": 1, "name": "p", "organisation": 1},
                             "x_value": case["value"]},
                }
                want = b'"x_value": ' + case["python_json_dumps_sort_keys"].encode("ascii") + b"}"
                if "\\u0000" in case["python_json_dumps_sort_keys"]:
                    # U+0000 cannot pass through the C API's NUL-terminated
                    # strings: the library may refuse it, naming the path,
                    # but must not drop it (or what follows it) silently.
                    try:
                        body = flaghook.render(event)
                    except flaghook.EventError as e:
                        self.assertIn("$.data.x_value", e.message)
                        continue
                    self.assertIn(want, body, "U+0000 in a string was dropped without an error")
                    continue
                self.assertIn(want, flaghook.render(event))


class ErrorPathTest(unittest.TestCase):
    def assertPath(self, event, path, name="FLAGHOOK_EEVENT"):
        with self.assertRaises(flaghook.EventError) as cm:
            flaghook.render(event)
        e = cm.exception
        self.assertTrue(e.message.startswith(path + ":"), e.message)
        self.assertEqual(e.name, name)
        self.assertEqual(e.code, flaghook.constant(name))
        self.assertIn(path, str(e))
        return e

    def test_missing_member(self):
        ev = flag_updated()
        del ev["data"]["new_state"]["feature"]["name"]
        self.assertPath(ev, "$.data.new_state.feature.name")

    def test_wrong_type_in_a_list(self):
        ev = flag_updated()
        ev["data"]["new_state"]["multivariate_feature_state_values"] = [
            {"id": 1, "multivariate_feature_option": {"id": 2, "value": "a"},
             "percentage_allocation": "half"}]
        self.assertPath(ev, "$.data.new_state.multivariate_feature_state_values[0]"
                            ".percentage_allocation")

    def test_unknown_member(self):
        ev = flag_updated()
        ev["data"]["new_state"]["colour"] = "blue"
        self.assertPath(ev, "$.data.new_state.colour")

    def test_invalid_utf8_bytes(self):
        body = json.dumps(flag_updated()).encode("ascii").replace(b'"dark_mode"', b'"dark\xffmode"', 1)
        e = self.assertPath(body, "$.data.new_state.feature.name", "FLAGHOOK_EUTF8")
        self.assertIn("invalid UTF-8 at byte 4", e.message)

    def test_lone_surrogate_in_a_str(self):
        ev = flag_updated()
        ev["data"]["changed_by"] = "al\ud800ice"
        self.assertPath(ev, "$.data.changed_by", "FLAGHOOK_EUTF8")

    def test_bad_time(self):
        ev = flag_updated()
        ev["data"]["timestamp"] = "yesterday"
        self.assertPath(ev, "$.data.timestamp")

    def test_not_json(self):
        with self.assertRaises(flaghook.FlaghookError) as cm:
            flaghook.render(b'{"event_type": ')
        self.assertIn("JSON", cm.exception.message)

    def test_too_big(self):
        with self.assertRaises(flaghook.EventError) as cm:
            flaghook.render(flag_updated(), max_body_bytes=100)
        self.assertEqual(cm.exception.name, "FLAGHOOK_ETOOBIG")

    def test_python_side_errors(self):
        with self.assertRaises(TypeError):
            flaghook.render(42)
        with self.assertRaises(ValueError):
            flaghook.render(flag_updated(), profile="flagsmith_1999")
        ev = flag_updated()
        ev["data"]["new_state"]["feature_state_value"] = float("nan")
        with self.assertRaises(ValueError):
            flaghook.render(ev)


class DatetimeTest(unittest.TestCase):
    def test_aware_datetimes_are_times(self):
        import datetime
        tz = datetime.timezone(datetime.timedelta(hours=2))
        ev = flag_updated()
        ev["data"]["timestamp"] = datetime.datetime(2024, 6, 1, 14, 0, 0, 1, tzinfo=tz)
        self.assertEqual(flaghook.render(ev), flaghook.render(flag_updated()))
        ev["data"]["timestamp"] = datetime.datetime(2024, 6, 1, 12, 0, 0, 1)
        with self.assertRaises(TypeError):
            flaghook.render(ev)

    def test_profiles_and_compact(self):
        ev = flag_updated()
        compact = flaghook.render(ev, compact=True)
        self.assertNotIn(b", ", compact)
        self.assertEqual(json.loads(compact), json.loads(flaghook.render(ev)))
        st = feature_state()
        st["id"] = 5
        ev["data"]["new_state"] = st
        body = json.loads(flaghook.render(ev, profile="flagsmith_2020"))
        self.assertEqual(body["data"]["new_state"]["environment"], 1)


if __name__ == "__main__":
    unittest.main()
