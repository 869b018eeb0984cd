"""103 Early Hints, links learned from earlier responses, and the push cache digest, with the
libnghttp2 test client against the scriptable upstream. "Before the upstream answered" is
asserted with an upstream that holds the page until the test releases it, never with sleeps."""
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


if __name__ == "__main__":
    main()
