"""Client: SYNC and ASYNC delivery to a real loopback receiver, flush,
stats, metrics, endpoints, and errors that carry code and message but
never a secret."""

import json
import logging
import select
import unittest

import flaghook

from support import WAIT, Receiver, flag_updated

SECRET = b"s3cret-\xc3\xa9-key"


def client(**options):
    options.setdefault("allow_private", True)      # the receiver is on loopback
    return flaghook.Client(**options)


def assertNoSecret(test, exc, *secrets):
    for text in (str(exc), repr(exc), repr(exc.args), exc.message):
        for secret in secrets:
            test.assertNotIn(secret, text)


class SyncTest(unittest.TestCase):
    def test_emit_delivers_signed(self):
        event = flag_updated()
        with Receiver(secret=SECRET) as rcv, client() as c:
            eid = c.add_endpoint(rcv.url, secret=SECRET, scope="environment", scope_id=1)
            self.assertIsInstance(eid, int)
            results = c.emit(event)
            self.assertEqual(len(results), 1)
            r = results[0]
            self.assertEqual((r["kind"], r["outcome"], r["status"], r["endpoint_id"]),
                             ("result", "delivered", 200, eid))
            self.assertEqual(r["event_type"], "FLAG_UPDATED")
            [req] = rcv.requests
            self.assertEqual(req["body"], flaghook.render(event))
            self.assertIs(req["signature_ok"], True)
            self.assertEqual(req["headers"]["x-flagsmith-signature"], flaghook.sign(SECRET, req["body"]))
            self.assertEqual(req["headers"]["x-flaghook-event-id"], r["event_id"])
            self.assertEqual(req["headers"]["content-type"], "application/json")

    def test_str_secret_is_its_utf8(self):
        with Receiver(secret=SECRET) as rcv, client() as c:
            c.add_endpoint(rcv.url, secret=SECRET.decode("utf-8"), scope_id=1)
            c.emit(flag_updated())
            self.assertIs(rcv.requests[0]["signature_ok"], True)

    def test_no_secret_no_header(self):
        with Receiver() as rcv, client() as c:
            c.add_endpoint(rcv.url, scope_id=1)
            c.emit(json.dumps(flag_updated()))
            self.assertNotIn("x-flagsmith-signature", rcv.requests[0]["headers"])

    def test_routing(self):
        with Receiver() as rcv, client() as c:
            c.add_endpoint(rcv.url, scope_id=2)
            self.assertEqual(c.emit(flag_updated(environment_id=1)), [])
            self.assertEqual(len(c.emit(flag_updated(environment_id=2))), 1)
            c.add_endpoint(rcv.url, scope_id=1, events=["FLAG_DELETED"])
            self.assertEqual(c.emit(flag_updated(environment_id=1)), [])
            self.assertEqual(len(rcv.requests), 1)

    def test_delivery_error_carries_the_results(self):
        with Receiver() as ok, Receiver(status=500) as bad, client() as c:
            good_id = c.add_endpoint(ok.url, scope_id=1)
            bad_id = c.add_endpoint(bad.url, scope_id=1)
            with self.assertRaises(flaghook.DeliveryError) as cm:
                c.emit(flag_updated())
            e = cm.exception
            self.assertEqual(e.name, "FLAGHOOK_EDELIVERY")
            self.assertEqual(e.code, flaghook.constant("FLAGHOOK_EDELIVERY"))
            self.assertTrue(e.message)
            by_id = {r["endpoint_id"]: r for r in e.results}
            self.assertEqual(set(by_id), {good_id, bad_id})
            self.assertEqual(by_id[good_id]["outcome"], "delivered")
            self.assertEqual(by_id[bad_id]["status"], 500)
            self.assertEqual([r["endpoint_id"] for r in e.failed], [bad_id])
            self.assertEqual(len(ok.requests), 1)
            self.assertEqual(len(bad.requests), 1)

    def test_endpoints(self):
        with Receiver() as rcv, client() as c:
            a = c.add_endpoint(rcv.url, scope_id=1)
            b = c.add_endpoint(rcv.url, scope_id=1, id=4242)
            self.assertEqual(b, 4242)
            self.assertNotEqual(a, b)
            c.set_endpoint_enabled(a, False)
            self.assertEqual([r["endpoint_id"] for r in c.emit(flag_updated())], [b])
            c.remove_endpoint(b)
            self.assertEqual(c.emit(flag_updated()), [])
            c.set_endpoint_enabled(a, True)
            self.assertEqual(len(c.emit(flag_updated())), 1)
            for call in (lambda: c.remove_endpoint(b), lambda: c.set_endpoint_enabled(b, True)):
                with self.assertRaises(flaghook.NotFoundError) as cm:
                    call()
                self.assertEqual(cm.exception.name, "FLAGHOOK_ENOTFOUND")
                self.assertEqual(cm.exception.code, flaghook.constant("FLAGHOOK_ENOTFOUND"))
            with self.assertRaises(ValueError):
                c.remove_endpoint(0)

    def test_sync_client_has_no_result_stream(self):
        with client() as c:
            with self.assertRaises(flaghook.InvalidArgumentError):
                next(c.results(timeout=0))

    def test_log_records_go_to_logging(self):
        with client() as c:
            c.add_endpoint("http://127.0.0.1:9/closed", scope_id=1)
            with self.assertLogs("flaghook", logging.WARNING):
                with self.assertRaises(flaghook.DeliveryError) as cm:
                    c.emit(flag_updated())
            [r] = cm.exception.results
            self.assertEqual((r["outcome"], r["errclass"]), ("gave_up", "connect"))


class AsyncTest(unittest.TestCase):
    N = 20

    def test_emit_and_results_iterator(self):
        with Receiver(secret=SECRET) as rcv, client(mode="async") as c:
            eid = c.add_endpoint(rcv.url, secret=SECRET, scope_id=1)
            for i in range(self.N):
                self.assertIsNone(c.emit(flag_updated(n=i)))
            got = []
            for r in c.results(timeout=WAIT):
                got.append(r)
                if len(got) == self.N:
                    break
            self.assertEqual(len(got), self.N)
            self.assertTrue(all(r["outcome"] == "delivered" and r["endpoint_id"] == eid for r in got))
            self.assertEqual(len({r["event_id"] for r in got}), self.N)
            reqs = rcv.wait_for(self.N)
            self.assertTrue(all(q["signature_ok"] for q in reqs))
            self.assertEqual({q["headers"]["x-flaghook-event-id"] for q in reqs},
                             {r["event_id"] for r in got})
            self.assertIsNone(c.get_result(0))

    def test_flush_stats_metrics(self):
        with Receiver(hold=True) as rcv, client(mode="async") as c:
            eid = c.add_endpoint(rcv.url, scope_id=1)
            for i in range(self.N):
                c.emit(flag_updated(n=i))
            rcv.wait_for(1)             # one is in flight, held by the receiver
            with self.assertRaises(flaghook.TimeoutError) as cm:
                c.flush(timeout=0.3)
            self.assertEqual(cm.exception.name, "FLAGHOOK_ETIMEOUT")
            self.assertIsInstance(cm.exception, TimeoutError)
            self.assertGreater(c.stats()["client"]["pending"], 0)
            rcv.gate.set()
            c.flush(timeout=WAIT)
            stats = c.stats()
            self.assertEqual(stats["client"]["pending"], 0)
            [ep] = stats["endpoints"]
            self.assertEqual((ep["id"], ep["delivered"], ep["gave_up"]), (eid, self.N, 0))
            text = c.metrics()
            self.assertIn('flaghook_deliveries_total{endpoint="%d",outcome="delivered"} %d'
                          % (eid, self.N), text.splitlines())
            self.assertNotIn("127.0.0.1", text)
            # The queue's descriptor is readable exactly while a record waits.
            fd = c._core.fd
            self.assertEqual(select.select([fd], [], [], 0)[0], [fd])
            self.assertEqual(len(list(c.results(timeout=0))), self.N)
            self.assertEqual(select.select([fd], [], [], 0)[0], [])

    def test_standard_webhooks_headers(self):
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        with Receiver() as rcv, client(mode="async") as c:
            c.add_endpoint(rcv.url, scope_id=1, standard_secrets=[secret])
            c.emit(flag_updated())
            c.flush(WAIT)
            [req] = rcv.wait_for(1)
            h = req["headers"]
            self.assertEqual(h["webhook-id"], h["x-flaghook-event-id"])
            self.assertIs(flaghook.standard_verify(secret, h["webhook-id"], h["webhook-timestamp"],
                                                   h["webhook-signature"], req["body"],
                                                   now=int(h["webhook-timestamp"])), True)


class ErrorTest(unittest.TestCase):
    def test_options(self):
        with self.assertRaises(ValueError):
            flaghook.Client(mode="sometimes")
        with self.assertRaises(ValueError):
            flaghook.Client(result_queue=False)
        with self.assertRaises(flaghook.InvalidArgumentError) as cm:
            flaghook.Client(no_such_option=1)
        self.assertIn("no_such_option", cm.exception.message)
        with self.assertRaises(flaghook.InvalidArgumentError) as cm:
            flaghook.Client({"retry": {"kind": "forever"}})
        self.assertIn("$.retry.kind", cm.exception.message)

    def test_urls_and_the_guard(self):
        with flaghook.Client() as c:
            with self.assertRaises(flaghook.RefusedError) as cm:
                c.add_endpoint("http://127.0.0.1:8/hook", secret=SECRET, scope_id=1)
            self.assertEqual(cm.exception.name, "FLAGHOOK_EREFUSED")
            with self.assertRaises(flaghook.URLError):
                c.add_endpoint("ftp://example.com/x", scope_id=1)
            with self.assertRaises(flaghook.RefusedError):
                c.url_check("http://10.1.2.3/hook")
        with self.assertRaises(flaghook.RefusedError):
            flaghook.url_check("http://[::1]/hook")
        with client() as c:
            c.url_check("http://127.0.0.1:8/hook")

    def test_secrets_never_in_errors(self):
        marker = b"MARKER-1b9e"
        with client() as c:
            # Refused secrets (CR/LF/NUL), said without quoting them.
            for bad in (b"line\r\n" + marker, marker + b"\0tail"):
                with self.assertRaises(flaghook.SecretError) as cm:
                    c.add_endpoint("http://127.0.0.1:8/hook", secret=bad, scope_id=1)
                assertNoSecret(self, cm.exception, marker.decode(), marker.hex())
            # Another error with a secret in the same call.
            with self.assertRaises(flaghook.URLError) as cm:
                c.add_endpoint("http://user:PASS-" + marker.decode() + "@", secret=marker, scope_id=1)
            assertNoSecret(self, cm.exception, marker.decode(), marker.hex())
            self.assertNotIn(marker.decode(), repr(c))

    def test_credentials_in_a_url_stay_out_of_results(self):
        with client() as c:
            c.add_endpoint("http://user:PASS-77e1@127.0.0.1:9/hook", scope_id=1)
            with self.assertRaises(flaghook.DeliveryError) as cm:
                c.emit(flag_updated())
            text = json.dumps(cm.exception.results) + str(cm.exception) + c.metrics()
            self.assertNotIn("PASS-77e1", text)

    def test_closed_client(self):
        c = client(mode="async")
        c.close()
        c.close()
        self.assertTrue(c.closed)
        for call in (lambda: c.emit(flag_updated()), lambda: c.stats(), lambda: c.flush(1),
                     lambda: c.add_endpoint("http://127.0.0.1:8/", scope_id=1),
                     lambda: c.get_result(0)):
            with self.assertRaises(flaghook.ClosedError) as cm:
                call()
            self.assertEqual(cm.exception.name, "FLAGHOOK_ESTATE")
        self.assertEqual(list(c.results()), [])


if __name__ == "__main__":
    unittest.main()
