"""Sends signed WhatsApp deliveries to an ingress, a fixed number of them, and reports failures.

Usage: webhooks.py PORT FIRST COUNT CONCURRENCY

The deliveries are the ones ingress-bench sends (one text message each, 5000 customers), signed
with the secret ingress-bench gives ingress. Each of CONCURRENCY threads keeps one keep-alive
connection. Exits non-zero if any delivery is not answered 200.
"""

import hashlib
import hmac
import http.client
import sys
import threading

SECRET = b"bench-secret"


def delivery(n: int) -> bytes:
    customer = 34_600_000_000 + n % 5000
    return (
        '{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages",'
        '"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111",'
        '"phone_number_id":"555000111"},"contacts":[{"profile":{"name":"Load %d"},"wa_id":"%d"}],'
        '"messages":[{"from":"%d","id":"wamid.bench%d","timestamp":"1750000000","type":"text",'
        '"text":{"body":"quiero una cita mañana a las 5"}}]}}]}]}' % (n, customer, customer, n)
    ).encode()


def main() -> int:
    port, first, count, concurrency = (int(a) for a in sys.argv[1:5])
    failures = []

    def send(lane: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(first + lane, first + count, concurrency):
            body = delivery(n)
            signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            try:
                connection.request(
                    "POST",
                    "/webhook",
                    body,
                    {"x-hub-signature-256": signature, "content-type": "application/json"},
                )
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"delivery {n}: HTTP {response.status}")
            except OSError as error:
                failures.append(f"delivery {n}: {error}")
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    lanes = [threading.Thread(target=send, args=(lane,)) for lane in range(concurrency)]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    print(f"sent {count} deliveries, {len(failures)} failed")
    for failure in failures[:5]:
        print(f"  {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
