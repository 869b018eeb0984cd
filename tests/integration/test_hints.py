"""103 Early Hints, links learned from earlier responses, and the push cache digest, with the
libnghttp2 test client against the scriptable upstream. "Before the upstream answered" is
asserted with an upstream that holds the page until the test releases it, never with sleeps.

The browser rules (issue 13): one complete first 103 (the upstream's own 103 links are learned
too, and a later upstream 103 is forwarded only for links ours did not name), preload,
modulepreload and preconnect only, navigations only, a non-2xx final response forgets the
page."""
import itertools
import unittest
from urllib.parse import quote

from harness import H2ClientRun, Pushgate, UpstreamTestCase, h2client, main

_names = itertools.count()


def events_of(ev, kind):
    return [e for e in ev if e["ev"] == kind]


def promised_paths(ev):
    return sorted(dict(p["headers"]).get(":path") for p in events_of(ev, "push_promise"))


def links_of(event):
    return [v for n, v in event["headers"] if n == "link"]


def page_heads(ev):
    """The HEADERS events of the page's stream (1), 103s and final, in order."""
    return [e for e in events_of(ev, "headers") if e["stream"] == 1]


NAV = ("-H", "sec-fetch-mode: navigate", "-H", "sec-fetch-dest: document")


class Hints(UpstreamTestCase):
    def setUp(self):
        self.name = f"n{next(_names)}"  # a fresh page and gate per test

    def page(self, extra=""):
        return f"/{self.name}/page?links_from={self.name}&hold={self.name}&size=100{extra}"

    def fetch(self, pg, *flags, path=None):
        """One full exchange on a new connection; the held page is released up front."""
        self.upstream.release(self.name)
        rc, ev = h2client(*flags, "127.0.0.1", pg.port, path or self.page())
        self.assertEqual(rc, 0, ev)
        return ev

    def held_fetch(self, pg, *flags, path=None):
        """Starts a request for the held page; the test releases it."""
        return H2ClientRun(*flags, "127.0.0.1", pg.port, path or self.page())

    def test_upstream_103_is_pushed_at_once_and_only_once(self):
        link = "</hinted.css?size=500>; rel=preload; as=style"
        path = f"/{self.name}?early_hints={quote(link, safe='')}&link={quote(link, safe='')}"
        with Pushgate(self.upstream.url) as pg:
            rc, ev = h2client("127.0.0.1", pg.port, path)
        self.assertEqual(rc, 0, ev)
        self.assertEqual(promised_paths(ev), ["/hinted.css?size=500"])
        order = [e["ev"] if e["ev"] != "headers" else e["status"] for e in ev
                 if e["ev"] in ("push_promise", "headers") and e.get("stream", 1) == 1]
        self.assertEqual(order[:3], ["push_promise", 103, 200], "pushed from the 103 itself")

    def test_learned_page_is_pushed_before_the_upstream_answers(self):
        self.upstream.set_links(self.name, "</l1.css?size=2000>; rel=preload; as=style",
                                "</l2.js?size=3000>; rel=preload; as=script")
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg)  # learns
            run = self.held_fetch(pg)
            first = run.wait_event(lambda e: e["ev"] in ("push_promise", "headers"))
            self.assertEqual(first["ev"], "push_promise", "promised while the page is held")
            self.upstream.release(self.name)
            rc, ev = run.finish()
        self.assertEqual(rc, 0, ev)
        self.assertEqual(promised_paths(ev), ["/l1.css?size=2000", "/l2.js?size=3000"])
        closes = {e["stream"]: e for e in events_of(ev, "close")}
        self.assertEqual((closes[1]["status"], closes[1]["error_code"]), (200, 0))
        self.assertEqual(sorted(c["bytes"] for c in closes.values() if c["promised"]),
                         [2000, 3000])
        self.assertEqual([e["status"] for e in events_of(ev, "headers") if e["stream"] == 1],
                         [200], "no 103 for a client whose pushes cover the page")

    def test_push_disabled_client_gets_a_103_before_the_final_response(self):
        links = ("</h1.css>; rel=preload; as=style", "<https://cdn.example/f.woff2>; "
                 "rel=preload; as=font; crossorigin")
        self.upstream.set_links(self.name, *links)
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg, "--no-push")
            run = self.held_fetch(pg, "--no-push")
            hint = run.wait_event(lambda e: e["ev"] == "headers")
            self.assertEqual(hint["status"], 103, "the hint arrives while the page is held")
            self.assertEqual(links_of(hint), list(links))
            self.upstream.release(self.name)
            rc, ev = run.finish()
        self.assertEqual(rc, 0, ev)
        self.assertEqual([e["status"] for e in events_of(ev, "headers")], [103, 200])
        self.assertEqual(events_of(ev, "push_promise"), [])

    def test_no_early_hints_flag(self):
        self.upstream.set_links(self.name, "</h1.css>; rel=preload; as=style")
        with Pushgate(self.upstream.url, "--no-early-hints") as pg:
            self.fetch(pg, "--no-push")
            ev = self.fetch(pg, "--no-push")
        self.assertEqual([e["status"] for e in events_of(ev, "headers")], [200])

    def test_unpushable_links_are_hinted_to_push_enabled_clients(self):
        self.upstream.set_links(self.name, "</p.css>; rel=preload; as=style",
                                "</np.js>; rel=preload; as=script; nopush")
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg)
            ev = self.fetch(pg)
        self.assertEqual(promised_paths(ev), ["/p.css"])
        heads = [e for e in events_of(ev, "headers") if e["stream"] == 1]
        self.assertEqual([h["status"] for h in heads], [103, 200])

    def test_targets_beyond_the_push_limit_are_hinted(self):
        self.upstream.set_links(self.name, *(f"</x{i}.js>; rel=preload" for i in range(5)))
        with Pushgate(self.upstream.url, "--max-pushes-per-response", "3") as pg:
            self.fetch(pg)
            ev = self.fetch(pg)
        self.assertEqual(len(events_of(ev, "push_promise")), 3)
        heads = [e for e in events_of(ev, "headers") if e["stream"] == 1]
        self.assertEqual([h["status"] for h in heads], [103, 200])
        self.assertEqual(len(links_of(heads[0])), 5, "the 103 names every preload")

    def test_a_changed_link_set_updates_the_table(self):
        self.upstream.set_links(self.name, "</a.css>; rel=preload", "</b.css>; rel=preload")
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg)
            self.upstream.set_links(self.name, "</b.css>; rel=preload", "</c.css>; rel=preload")
            ev = self.fetch(pg)
            # learned a and b were promised early and are served; c comes from the response
            self.assertEqual(promised_paths(ev), ["/a.css", "/b.css", "/c.css"])
            self.assertTrue(all(c["error_code"] == 0 for c in events_of(ev, "close")), ev)
            self.upstream.set_links(self.name)  # the page now lists nothing
            run = self.held_fetch(pg)
            first = run.wait_event(lambda e: e["ev"] in ("push_promise", "headers"))
            self.assertEqual(first["ev"], "push_promise")
            self.upstream.release(self.name)
            rc, ev = run.finish()
            self.assertEqual(promised_paths(ev), ["/b.css", "/c.css"], "a was forgotten")
            ev = self.fetch(pg)
            self.assertEqual(promised_paths(ev), [], "a response without links empties it")

    def test_private_responses_and_authorized_requests_are_not_learned(self):
        self.upstream.set_links(self.name, "</secret.css>; rel=preload")
        cases = (("&header=Cache-Control:private,max-age=60", ()),
                 ("&header=Cache-Control:no-store", ()),
                 ("", ("-H", "authorization: Bearer t")))
        with Pushgate(self.upstream.url) as pg:
            for extra, flags in cases:
                self.upstream.set_links(self.name, "</secret.css>; rel=preload")
                ev = self.fetch(pg, *flags, path=self.page(extra))
                self.assertEqual(promised_paths(ev), ["/secret.css"], "pushed, not learned")
                self.upstream.set_links(self.name)
                ev = self.fetch(pg, *flags, path=self.page(extra))
                self.assertEqual(promised_paths(ev), [], (extra, flags))
        with Pushgate(self.upstream.url, "--push-learn-private") as pg:
            extra = "&header=Cache-Control:private"
            self.upstream.set_links(self.name, "</secret.css>; rel=preload")
            self.fetch(pg, path=self.page(extra))
            self.upstream.set_links(self.name)
            ev = self.fetch(pg, path=self.page(extra))
            self.assertEqual(promised_paths(ev), ["/secret.css"], "learned when allowed")

    def test_no_push_learn_flag(self):
        self.upstream.set_links(self.name, "</a.css>; rel=preload")
        with Pushgate(self.upstream.url, "--no-push-learn") as pg:
            self.fetch(pg)
            self.upstream.set_links(self.name)
            self.assertEqual(promised_paths(self.fetch(pg)), [])

    def test_cache_digest_cookie_stops_a_repeat_push_on_a_new_connection(self):
        self.upstream.set_links(self.name, "</d1.css>; rel=preload", "</d2.js>; rel=preload")
        with Pushgate(self.upstream.url, "--push-cache-digest", "--no-push-learn") as pg:
            ev = self.fetch(pg)
            self.assertEqual(promised_paths(ev), ["/d1.css", "/d2.js"])
            head = [e for e in events_of(ev, "headers") if e["stream"] == 1][0]
            cookies = [v for n, v in head["headers"] if n == "set-cookie"]
            self.assertEqual(len(cookies), 1, head)
            self.assertTrue(cookies[0].startswith("pg_pushed="), cookies)
            self.assertIn("HttpOnly", cookies[0])
            cookie = cookies[0].split(";")[0]
            ev = self.fetch(pg, "-H", f"cookie: a=1; {cookie}")
            self.assertEqual(promised_paths(ev), [], "the browser has them")
            self.upstream.set_links(self.name, "</d1.css>; rel=preload", "</d3.png>; rel=preload")
            ev = self.fetch(pg, "-H", f"cookie: {cookie}")
            self.assertEqual(promised_paths(ev), ["/d3.png"], "only what it lacks")
            ev = self.fetch(pg)
            self.assertEqual(promised_paths(ev), ["/d1.css", "/d3.png"], "no cookie, no memory")

    # ---- Issue 13: Early Hints as browsers act on them. ----

    def hinted_page(self, extra=""):
        """A page whose upstream sends its own 103 (links of set name+"-103") and then, once
        released, its final response (links of set name, status of name if set)."""
        return self.page(f"&hints_from={self.name}-103&status_from={self.name}{extra}")

    def held_heads(self, pg, *flags, path=None):
        """A held request that must get a 103 or a promise while the page is held: (that 103
        or None, every page HEADERS, every event)."""
        run = self.held_fetch(pg, *flags, path=path)
        first = run.wait_event(lambda e: e["ev"] == "headers" or e["ev"] == "push_promise")
        self.upstream.release(self.name)
        rc, ev = run.finish()
        self.assertEqual(rc, 0, ev)
        return first if first["ev"] == "headers" else None, page_heads(ev), ev

    def test_the_first_103_names_the_upstreams_103_links_and_the_final_links(self):
        s = "</s.css?size=10>; rel=preload; as=style"
        f = "</f.js?size=10>; rel=preload; as=script"
        n = "</n.js?size=10>; rel=modulepreload"
        self.upstream.set_links(f"{self.name}-103", s)
        self.upstream.set_links(self.name, f)
        with Pushgate(self.upstream.url) as pg:
            heads = page_heads(self.fetch(pg, "--no-push", *NAV, path=self.hinted_page()))
            self.assertEqual([h["status"] for h in heads], [103, 200], "cold: the upstream's 103")
            self.assertEqual(links_of(heads[0]), [s])

            first, heads, _ = self.held_heads(pg, "--no-push", *NAV, path=self.hinted_page())
            self.assertIsNotNone(first, "a 103 while the upstream thinks")
            self.assertEqual((first["status"], links_of(first)), (103, [s, f]),
                             "one 103 naming what the upstream hinted and what it listed")
            self.assertEqual([h["status"] for h in heads], [103, 200],
                             "the upstream's 103 names nothing new: not forwarded")

            # The upstream now hints one more link: its 103 is forwarded after ours ...
            self.upstream.set_links(f"{self.name}-103", s, n)
            first, heads, _ = self.held_heads(pg, "--no-push", *NAV, path=self.hinted_page())
            self.assertEqual(links_of(first), [s, f])
            self.assertEqual([h["status"] for h in heads], [103, 103, 200])
            self.assertEqual(links_of(heads[1]), [s, n], "forwarded as the upstream sent it")
            # ... and learned: the next first 103 is complete again.
            first, heads, _ = self.held_heads(pg, "--no-push", *NAV, path=self.hinted_page())
            self.assertEqual(links_of(first), [s, n, f])
            self.assertEqual([h["status"] for h in heads], [103, 200])

    def test_a_push_enabled_client_is_pushed_what_a_later_upstream_103_adds(self):
        s = "</s2.css?size=10>; rel=preload; as=style"
        f = "</f2.js?size=10>; rel=preload; as=script"
        c = "<https://cdn.example>; rel=preconnect"
        self.upstream.set_links(f"{self.name}-103", s)
        self.upstream.set_links(self.name, f, c)
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg, path=self.hinted_page())
            self.upstream.set_links(f"{self.name}-103", s, "</new.css?size=10>; rel=preload")
            first, heads, ev = self.held_heads(pg, path=self.hinted_page())
        self.assertEqual(promised_paths(ev), ["/f2.js?size=10", "/new.css?size=10",
                                              "/s2.css?size=10"])
        self.assertEqual([h["status"] for h in heads], [103, 103, 200])
        self.assertEqual(links_of(heads[0]), [s, f, c], "ours first (the preconnect needs it)")

    def test_a_cross_origin_preconnect_is_hinted_and_never_pushed(self):
        links = ("<https://cdn.example>; rel=preconnect; crossorigin",
                 "</p.css>; rel=preload; as=style")
        self.upstream.set_links(self.name, *links)
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg)
            first, heads, ev = self.held_heads(pg)
            self.assertEqual(promised_paths(ev), ["/p.css"], "the preconnect is not pushed")
            self.assertEqual([h["status"] for h in heads], [103, 200])
            self.assertEqual(links_of(heads[0]), list(links), "but it is in our 103")
            first, heads, ev = self.held_heads(pg, "--no-push")
            self.assertEqual(links_of(first), list(links))
            self.assertEqual(events_of(ev, "push_promise"), [])

    def test_only_preload_modulepreload_and_preconnect_are_hinted_as_written(self):
        hinted = ("</r1.css>; rel=preload; as=style; media=\"(min-width: 600px)\"; "
                  "fetchpriority=high",
                  "</r2.png>; rel=preload; as=image; imagesrcset=\"/r2.png 1x, /r2x2.png 2x\"",
                  "</r3.js>; rel=modulepreload",
                  "<https://fonts.example/f.woff2>; rel=preload; as=font; type=\"font/woff2\"; "
                  "crossorigin",
                  "<https://cdn.example>; rel=preconnect")
        ignored = ("<https://dns.example>; rel=dns-prefetch", "</next.html>; rel=prefetch",
                   "</r1.css>; rel=stylesheet")
        # One field holding every link, as many applications write it.
        self.upstream.set_links(self.name, ", ".join(hinted + ignored))
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg)
            first, heads, ev = self.held_heads(pg)
            self.assertEqual(links_of(heads[0]), list(hinted), "one field per link, byte for byte")
            self.assertEqual(promised_paths(ev), ["/r1.css", "/r2.png", "/r3.js"],
                             "same-origin preload and modulepreload only")
            first, heads, ev = self.held_heads(pg, "--no-push")
            self.assertEqual(links_of(first), list(hinted))

    def test_requests_that_are_not_navigations_get_no_103_of_ours(self):
        self.upstream.set_links(self.name, "</nav.css>; rel=preload; as=style")
        cases = ((("-H", "sec-fetch-mode: cors", "-H", "sec-fetch-dest: empty"), [200]),
                 (("-H", "sec-fetch-mode: no-cors", "-H", "sec-fetch-dest: script"), [200]),
                 (("-H", "sec-fetch-mode: navigate", "-H", "sec-fetch-dest: iframe"), [200]),
                 (("-H", "sec-fetch-dest: image"), [200]),
                 (NAV, [103, 200]),
                 (("-H", "sec-fetch-mode: navigate"), [103, 200]),
                 ((), [103, 200]))  # no Sec-Fetch fields: not a browser, today's behaviour
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg, "--no-push")
            for flags, statuses in cases:
                ev = self.fetch(pg, "--no-push", *flags)
                self.assertEqual([h["status"] for h in page_heads(ev)], statuses, flags)
            # Pushes are not hints: a push-enabled client fetching with cors is still pushed.
            ev = self.fetch(pg, "-H", "sec-fetch-mode: cors")
            self.assertEqual(promised_paths(ev), ["/nav.css"])

    def test_an_upstream_103_is_still_forwarded_to_other_requests(self):
        s = "</fw.css>; rel=preload; as=style"
        self.upstream.set_links(f"{self.name}-103", s)
        self.upstream.set_links(self.name, "</fw.js>; rel=preload")
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg, "--no-push", path=self.hinted_page())
            ev = self.fetch(pg, "--no-push", "-H", "sec-fetch-mode: cors",
                            path=self.hinted_page())
        heads = page_heads(ev)
        self.assertEqual([h["status"] for h in heads], [103, 200])
        self.assertEqual(links_of(heads[0]), [s], "the upstream's own, not ours")

    def test_a_final_response_other_than_2xx_forgets_the_page(self):
        self.upstream.set_links(self.name, "</gone.css>; rel=preload; as=style")
        with Pushgate(self.upstream.url) as pg:
            for status in (302, 301, 401, 403, 404, 500, 503):
                self.upstream.control("/_status", name=self.name, status=200)
                self.fetch(pg, "--no-push", path=self.hinted_page())  # learned
                self.upstream.control("/_status", name=self.name, status=status)
                heads = page_heads(self.fetch(pg, "--no-push", path=self.hinted_page()))
                self.assertEqual([h["status"] for h in heads], [103, status],
                                 "at most one response carries stale hints")
                self.upstream.control("/_status", name=self.name, status=200)
                heads = page_heads(self.fetch(pg, "--no-push", path=self.hinted_page()))
                self.assertEqual([h["status"] for h in heads], [200], f"forgotten after {status}")
            # 304: the client has the page, which is still the page: the entry stays.
            self.upstream.control("/_status", name=self.name, status=304)
            heads = page_heads(self.fetch(pg, "--no-push", path=self.hinted_page()))
            self.assertEqual([h["status"] for h in heads], [103, 304])
            self.upstream.control("/_status", name=self.name, status=200)
            first, heads, _ = self.held_heads(pg, "--no-push", path=self.hinted_page())
            self.assertEqual([h["status"] for h in heads], [103, 200], "kept after a 304")

    def test_our_103_stays_within_64_links_and_16_kib(self):
        many = [f"</m{i}.js>; rel=preload; as=script" for i in range(70)]
        self.upstream.set_links(self.name, *many)
        with Pushgate(self.upstream.url) as pg:
            self.fetch(pg, "--no-push")
            first, heads, _ = self.held_heads(pg, "--no-push")
            self.assertEqual(links_of(first), many[:64])
            big = [f"</b{i}.css>; rel=preload; as=style; x=\"{'y' * 3000}\"" for i in range(8)]
            self.upstream.set_links(self.name, *big)
            self.fetch(pg, "--no-push")
            first, heads, _ = self.held_heads(pg, "--no-push")
            self.assertEqual(links_of(first), big[:5])
            self.assertLessEqual(sum(len(v) for v in links_of(first)), 16384)

    def test_a_forwarded_103_carries_no_content_length(self):
        raw = ("HTTP/1.1 103 Early Hints\r\nLink: </cl.css>; rel=preload\r\n"
               "Content-Length: 0\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        with Pushgate(self.upstream.url) as pg:
            rc, ev = h2client("--no-push", "127.0.0.1", pg.port,
                              f"/{self.name}?raw={quote(raw, safe='')}")
        self.assertEqual(rc, 0, ev)
        heads = page_heads(ev)
        self.assertEqual([h["status"] for h in heads], [103, 200])
        self.assertEqual(links_of(heads[0]), ["</cl.css>; rel=preload"])
        self.assertNotIn("content-length", [n for n, _ in heads[0]["headers"]])


if __name__ == "__main__":
    main()
