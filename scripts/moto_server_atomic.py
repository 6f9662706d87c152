"""moto's S3 server with conditional writes made atomic; started by scripts/s3-server.sh.

moto 5.2 checks If-Match / If-None-Match and then stores the object as two separate steps with no
lock (moto/s3/responses.py, S3Response.put_object), and serves requests on many threads. Under
contention two writers holding the same e-tag can both pass the check: Floe's conformance suite saw
2 winners of one compare-and-swap round within a few hundred rounds of 16 racing threads. Real S3
evaluates the condition atomically, so this wrapper serializes moto's object-level writes (PUT,
POST, DELETE of a key) behind one lock. Reads stay concurrent.

For latency measurements, requests to objects in a bucket whose name ends in `-delay<N>` wait N
milliseconds before they are served (outside the lock), like S3's first-byte latency; moto on
loopback otherwise answers in about a millisecond and hides whether a client keeps requests in
flight.

Usage: python moto_server_atomic.py [moto_server arguments, e.g. -H 127.0.0.1 -p 0]
"""

import functools
import re
import sys
import threading
import time
from urllib.parse import urlparse

from moto import server
from moto.s3.responses import S3Response

_WRITE_LOCK = threading.Lock()


def _serialized(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _WRITE_LOCK:
            return method(self, *args, **kwargs)

    return wrapper


for _name in ("_key_response_put", "_key_response_post", "_key_response_delete"):
    setattr(S3Response, _name, _serialized(getattr(S3Response, _name)))

_DELAY = re.compile(r"-delay(\d+)$")
_key_response = S3Response.key_response


@functools.wraps(_key_response)
def _delayed_key_response(self, request, full_url, headers):
    bucket = urlparse(full_url).path.lstrip("/").split("/", 1)[0]
    match = _DELAY.search(bucket)
    if match:
        time.sleep(int(match.group(1)) / 1000)
    return _key_response(self, request, full_url, headers)


S3Response.key_response = _delayed_key_response

if __name__ == "__main__":
    server.main(sys.argv[1:])
