-- wrk script for `make bench` (tests/bench/run.sh): POST the bytes
-- libflaghook sends for the environment sample, with the headers it sends.
--
-- wrk formats this one request once and sends it again and again: it does
-- not render or sign per request (its Lua has no HMAC), so the signature
-- header is the precomputed one.  That makes wrk the ceiling of what the
-- receiver can take over this many connections, which is what the
-- deliver_vs_wrk ratio compares against.
--
-- FLAGHOOK_BENCH_BODY and FLAGHOOK_BENCH_SIGNATURE name the files written
-- by `bench body DIR`.

local function slurp(name)
  local path = assert(os.getenv(name), name .. " is not set")
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.body = slurp("FLAGHOOK_BENCH_BODY")
-- The same header lines libcurl sends for a delivery (Host and
-- Content-Length are added by wrk itself).
wrk.headers["User-Agent"] = "libflaghook/0.1.0"
wrk.headers["Accept"] = "*/*"
wrk.headers["Content-Type"] = "application/json"
-- A fixed event id, the length of the UUID the library sends (bench.c's
-- curl baselines send the same).
wrk.headers["X-Flaghook-Event-Id"] = "00000000-0000-4000-8000-000000000000"
wrk.headers["X-Flagsmith-Signature"] = slurp("FLAGHOOK_BENCH_SIGNATURE")
