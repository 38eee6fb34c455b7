#!/usr/bin/env python3
"""A scripted scraper for the tests: python-requests with a Chrome user agent,
from one loopback address or spread over many (127.x.y.z, a few requests
each, as a residential-proxy fleet looks from the site), optionally sending
Chrome's Accept and Accept-Language. Prints the status counts as JSON.

    scraper.py BASE_URL PAGES ADDRESSES [--chrome-headers]
"""

import json
import sys

import requests
from requests.adapters import HTTPAdapter

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
CHROME_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                 "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")


class SourceAddress(HTTPAdapter):
    """Connects from a given local address."""

    def __init__(self, source, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, connections, maxsize, block=False, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(connections, maxsize, block, **kw)


def main():
    base, pages, addresses = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    chrome_headers = "--chrome-headers" in sys.argv[4:]
    headers = {"User-Agent": CHROME}
    if chrome_headers:
        headers["Accept"] = CHROME_ACCEPT
        headers["Accept-Language"] = "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"
    sessions = []
    for i in range(addresses):
        s = requests.Session()
        source = f"127.10.{i // 250}.{i % 250 + 1}" if addresses > 1 else "127.0.0.1"
        s.mount("http://", SourceAddress(source))
        s.headers.update(headers)
        sessions.append(s)
    counts = {}
    for n in range(pages):
        s = sessions[n % addresses]
        r = s.get(f"{base}/films/film-{n}", allow_redirects=False, timeout=10)
        counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
