"""sign/verify and Standard Webhooks against the shared vectors; errors
that carry the code and never the secret."""

import unittest

import flaghook

from support import load_vectors


def assertNoSecret(test, exc, secret):
    for text in (str(exc), repr(exc), repr(exc.args), exc.message):
        test.assertNotIn(secret, text)


class FlagsmithSignatureTest(unittest.TestCase):
    def test_vectors(self):
        cases = load_vectors("flagsmith-signature.json")["cases"]
        self.assertTrue(cases)
        for case in cases:
            with self.subTest(case=case["name"]):
                body = case["body"].encode("utf-8")
                want = case["x_flagsmith_signature"]
                # str secrets are their UTF-8; bytes as given.
                self.assertEqual(flaghook.sign(case["secret"], body), want)
                self.assertEqual(flaghook.sign(case["secret"].encode("utf-8"), body), want)
                self.assertIs(flaghook.verify(case["secret"], body, want), True)
                self.assertIs(flaghook.verify(case["secret"], body, want.upper()), True)
                flipped = ("0" if want[0] != "0" else "1") + want[1:]
                self.assertIs(flaghook.verify(case["secret"], body, flipped), False)
                self.assertIs(flaghook.verify(case["secret"], body + b" ", want), False)
                self.assertIs(flaghook.verify(case["secret"], body, want[:-1]), False)

    def test_hmac_vectors(self):
        for case in load_vectors("hmac-sha256.json")["cases"]:
            with self.subTest(case=case["name"]):
                key = bytes.fromhex(case["key_hex"])
                data = bytes.fromhex(case["data_hex"])
                self.assertEqual(flaghook.sign(key, data), case["hmac_sha256_hex"])
                self.assertIs(flaghook.verify(key, bytearray(data), case["hmac_sha256_hex"]), True)

    def test_body_types(self):
        sig = flaghook.sign(b"k", b"body")
        self.assertEqual(flaghook.sign(b"k", bytearray(b"body")), sig)
        self.assertEqual(flaghook.sign(b"k", memoryview(b"body")), sig)
        self.assertEqual(flaghook.sign(b"k", b"a\0b"), flaghook.sign(b"k", bytes([97, 0, 98])))
        self.assertNotEqual(flaghook.sign(b"k", b"a\0b"), flaghook.sign(b"k", b"a"))

    def test_empty_secret(self):
        for call in (lambda: flaghook.sign(b"", b"x"), lambda: flaghook.verify(b"", b"x", "00" * 32)):
            with self.assertRaises(flaghook.SecretError) as cm:
                call()
            e = cm.exception
            self.assertEqual(e.name, "FLAGHOOK_ESECRET")
            self.assertEqual(e.code, flaghook.constant("FLAGHOOK_ESECRET"))
            self.assertLess(e.code, 0)
            self.assertTrue(e.message)


class StandardWebhooksTest(unittest.TestCase):
    def setUp(self):
        self.cases = load_vectors("standard-webhooks.json")["cases"]
        self.assertTrue(self.cases)

    def test_vectors(self):
        for case in self.cases:
            body = case["body"].encode("utf-8")
            ts = case["webhook_timestamp"]
            sig = flaghook.standard_sign(case["secret"], case["webhook_id"], int(ts), body)
            self.assertEqual(sig, case["webhook_signature"])
            now = int(ts)
            ok = flaghook.standard_verify(case["secret"], case["webhook_id"], ts, sig, body, now=now)
            self.assertIs(ok, True)
            self.assertIs(flaghook.standard_verify([case["secret"]], case["webhook_id"], int(ts),
                                                   sig, body, now=now + 299), True)

    def test_rejections(self):
        case = self.cases[0]
        body = case["body"].encode("utf-8")
        ts, mid, sec, sig = (case["webhook_timestamp"], case["webhook_id"], case["secret"],
                             case["webhook_signature"])
        now = int(ts)

        def check(*args, **kw):
            return flaghook.standard_verify(*args, **kw)

        self.assertIs(check(sec, mid, ts, sig, body, now=now + 301), False)        # too old
        self.assertIs(check(sec, mid, ts, sig, body, now=now - 301), False)        # too new
        self.assertIs(check(sec, mid, ts, sig, body, now=now + 900, tolerance=1000), True)
        self.assertIs(check(sec, mid, ts, sig, body + b" ", now=now), False)
        self.assertIs(check(sec, mid + "x", ts, sig, body, now=now), False)
        self.assertIs(check(sec, mid, "soon", sig, body, now=now), False)
        # A rotation: several secrets, several signatures in one header.
        other = "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="
        other_sig = flaghook.standard_sign(other, mid, now, body)
        self.assertIs(check([other, sec], mid, ts, sig, body, now=now), True)
        self.assertIs(check(other, mid, ts, sig + " " + other_sig, body, now=now), True)
        self.assertIs(check(other, mid, ts, sig, body, now=now), False)

    def test_errors_never_carry_the_secret(self):
        bad = "whsec_not*base64*MARKER-7c1f"
        with self.assertRaises(flaghook.SecretError) as cm:
            flaghook.standard_sign(bad, "msg_1", 1, b"x")
        assertNoSecret(self, cm.exception, "MARKER-7c1f")
        with self.assertRaises(flaghook.SecretError) as cm:
            flaghook.standard_verify([bad], "msg_1", "1", "v1,AAAA", b"x", now=1)
        assertNoSecret(self, cm.exception, "MARKER-7c1f")
        with self.assertRaises(flaghook.InvalidArgumentError):
            flaghook.standard_verify(self.cases[0]["secret"], "m", "1", "v1,AAAA", b"x", now=1,
                                     tolerance=-1)

    def test_nul_in_text_is_refused(self):
        with self.assertRaises(ValueError):
            flaghook.standard_sign(self.cases[0]["secret"], "msg\0id", 1, b"x")


if __name__ == "__main__":
    unittest.main()
