"""Tell environment 1's webhook that dark_mode was switched on."""
import datetime, os, sys
import flaghook

url = os.environ.get("WEBHOOK_URL", "http://127.0.0.1:8000/hook")
secret = os.environ.get("FLAGHOOK_SECRET", "").encode()  # empty: sent unsigned
now = datetime.datetime.now(datetime.timezone.utc)
state = {"enabled": True, "environment": {"id": 1, "name": "Production"},
         "feature": {"id": 7, "name": "dark_mode", "type": "STANDARD", "created_date": now,
                     "default_enabled": False, "description": None, "initial_value": None,
                     "project": {"id": 1, "name": "Web"}},
         "feature_segment": None, "feature_state_value": None}
event = {"event_type": "FLAG_UPDATED",
         "data": {"changed_by": "alice@example.com", "new_state": state, "timestamp": now}}

body = flaghook.render(event)  # the exact bytes Flagsmith would send
if secret:
    print("X-Flagsmith-Signature:", flaghook.sign(secret, body))
# allow_cidrs: the default URL is on loopback, which is refused otherwise
with flaghook.Client(mode="sync", allow_cidrs=["127.0.0.0/8"]) as client:
    client.add_endpoint(url, secret=secret, scope="environment", scope_id=1)
    try:
        results = client.emit(event)
    except flaghook.DeliveryError as e:
        results = e.results
    for r in results:
        print(r["outcome"], r["status"], r["errclass"], r["error"])
sys.exit(0 if results and all(r["outcome"] == "delivered" for r in results) else 1)
