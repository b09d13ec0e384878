"""A burst against a real server: 2,000 mixed requests from 8 clients, no 5xx, no dropped
connection, and the serving process's memory levels off."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.helpers.images import poster
from tests.hostile.corpus import cases


def test_mixed_burst(start_server):
    server = start_server(THREADS=8)
    bodies = [(c.data, c.content_type) for c in cases() if c.method == "POST" and c.files is None and c.status in (200, 400)]
    bodies += [(poster(colour), "image/jpeg") for colour in ("Red", "Green", "Blue")] * 4
    per_worker: list[Counter] = [Counter() for _ in range(8)]  # no shared counter: no lost updates
    failures: list[str] = []
    rss: list[float] = []

    def client(worker: int) -> None:
        with requests.Session() as session:
            for i in range(250):
                data, ctype = bodies[(worker * 31 + i) % len(bodies)]
                try:
                    r = session.post(server.url, data=data, headers={"Content-Type": ctype} if ctype else {}, timeout=30)
                    per_worker[worker][r.status_code] += 1
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                if worker == 0 and i % 25 == 0:
                    rss.append(server.rss_bytes() / 2**20)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    statuses = sum(per_worker, Counter())
    assert failures == []
    assert sum(statuses.values()) == 2000
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.get(200, 0) > 500 and statuses.get(400, 0) > 200
    # warm-up allocations happen early; after that the process must not keep growing
    assert rss[-1] - rss[len(rss) // 2] < 25, rss
