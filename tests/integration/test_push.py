"""Link rel=preload -> HTTP/2 server push, with real clients (h2client on libnghttp2, nghttp)
against the scriptable upstream and the built-in demo."""
import unittest
from urllib.parse import quote

from harness import Pushgate, UpstreamTestCase, h2client, pattern_sha256, run, main


def page(*links, status=200, size=100, extra=""):
    """A path on the scriptable upstream answering with the given Link values."""
    q = "&".join("link=" + quote(l, safe="") for l in links)
    return f"/page?status={status}&size={size}&{q}{extra}"


def target(path, size):
    return f"{path}?size={size}"


def events_of(ev, kind):
    return [e for e in ev if e["ev"] == kind]


def pseudo(promise, name):
    return dict(promise["headers"]).get(name)


class Push(UpstreamTestCase):
    def fetch(self, *paths, flags=(), proxy_flags=()):
        with Pushgate(self.upstream.url, *proxy_flags) as pg:
            rc, ev = h2client(*flags, "127.0.0.1", pg.port, *paths)
        self.assertEqual(rc, 0, ev)
        return ev

    def test_promises_precede_the_parent_headers_and_pushed_bodies_arrive(self):
        ev = self.fetch(page(f"<{target('/a.css', 3000)}>; rel=preload; as=style",
                             f"<{target('/b.js', 70000)}>; rel=preload; as=script"))
        kinds = [(e["ev"], e.get("stream", e.get("parent"))) for e in ev
                 if e["ev"] in ("push_promise", "headers")]
        self.assertEqual(kinds[:3], [("push_promise", 1), ("push_promise", 1), ("headers", 1)])
        promises = events_of(ev, "push_promise")
        self.assertEqual([pseudo(p, ":path") for p in promises],
                         ["/a.css?size=3000", "/b.js?size=70000"])
        self.assertEqual(pseudo(promises[0], ":method"), "GET")
        self.assertEqual(pseudo(promises[0], "accept"), "text/css,*/*;q=0.1")
        closes = {e["stream"]: e for e in events_of(ev, "close")}
        for p, size in zip(promises, (3000, 70000)):
            c = closes[p["promised"]]
            self.assertTrue(c["promised"])
            self.assertEqual((c["status"], c["bytes"], c["error_code"]), (200, size, 0))
            self.assertEqual(c["sha256"], pattern_sha256(size))
        parent = [e for e in events_of(ev, "headers") if e["stream"] == 1][0]
        self.assertEqual(len([v for n, v in parent["headers"] if n == "link"]), 2,
                         "the Link fields are still forwarded")

    def test_push_disabled_by_the_client(self):
        ev = self.fetch(page("</a.css>; rel=preload"), flags=["--no-push"])
        self.assertEqual(events_of(ev, "push_promise"), [])
        self.assertEqual(events_of(ev, "close")[0]["status"], 200)

    def test_push_disabled_by_the_operator(self):
        ev = self.fetch(page("</a.css>; rel=preload"), proxy_flags=["--no-push"])
        self.assertEqual(events_of(ev, "push_promise"), [])

    def test_parents_that_never_push(self):
        link = "</a.css>; rel=preload"
        for flags, path in ((["--method", "POST", "--data-size", "10"], page(link)),
                            (["--method", "HEAD"], page(link)),
                            ([], page(link, status=404)),
                            ([], page(link, status=304, size=0)),
                            ([], page(link, status=500))):
            ev = self.fetch(path, flags=flags)
            self.assertEqual(events_of(ev, "push_promise"), [], (flags, path))

    def test_redirect_parent_pushes(self):
        ev = self.fetch(page("</a.css>; rel=preload", status=302))
        self.assertEqual(len(events_of(ev, "push_promise")), 1)

    def test_links_that_are_not_pushed(self):
        ev = self.fetch(page("<//other.example/a.css>; rel=preload",
                             "<http://127.0.0.1:1/a.css>; rel=preload",
                             "<https://127.0.0.1/a.css>; rel=preload",
                             "</n.css>; rel=preload; nopush",
                             "</anchored.css>; rel=preload; anchor=\"/x\"",
                             "</s.css>; rel=stylesheet",
                             "<>; rel=preload",
                             "<#frag>; rel=preload",
                             "</ok.css>; rel=\"preload stylesheet\""))
        self.assertEqual([pseudo(p, ":path") for p in events_of(ev, "push_promise")], ["/ok.css"])

    def test_relative_targets_are_resolved_against_the_request(self):
        q = "link=" + quote("<style.css>; rel=preload, <../up.js?v=1#f>; rel=preload", safe="")
        ev = self.fetch(f"/dir/sub/page?{q}")
        self.assertEqual(sorted(pseudo(p, ":path") for p in events_of(ev, "push_promise")),
                         ["/dir/sub/style.css", "/dir/up.js?v=1"])

    def test_same_target_is_pushed_once_per_connection(self):
        link = "</shared.css>; rel=preload"
        ev = self.fetch(page(link, extra="&n=1"), page(link, extra="&n=2"),
                        flags=["--concurrency", "1"])
        self.assertEqual(len(events_of(ev, "push_promise")), 1)
        # and a target the client already asked for is not pushed
        ev = self.fetch("/shared.css", page(link), flags=["--concurrency", "1"])
        self.assertEqual(events_of(ev, "push_promise"), [])

    def test_client_resets_every_promise_and_the_parent_completes(self):
        links = [f"</r{i}.js?size=200000>; rel=preload" for i in range(5)]
        ev = self.fetch(page(*links, size=50000), "/after?size=10", flags=["--rst-promised"])
        closes = {e["stream"]: e for e in events_of(ev, "close")}
        self.assertEqual(len(events_of(ev, "push_promise")), 5)
        self.assertEqual((closes[1]["status"], closes[1]["bytes"], closes[1]["error_code"]),
                         (200, 50000, 0))
        self.assertEqual((closes[3]["status"], closes[3]["error_code"]), (200, 0))

    def test_500_link_targets_stay_within_the_limits(self):
        links = ", ".join(f"</t{i}.css>; rel=preload" for i in range(500))
        ev = self.fetch(page(links), "/after?size=10", flags=["--concurrency", "1"])
        self.assertEqual(len(events_of(ev, "push_promise")), 16)
        self.assertEqual([c["status"] for c in events_of(ev, "close") if not c["promised"]],
                         [200, 200])
        ev = self.fetch(page(links), proxy_flags=["--max-pushes-per-response", "3"])
        self.assertEqual(len(events_of(ev, "push_promise")), 3)

    def test_pushed_streams_respect_the_clients_max_concurrent_streams(self):
        links = [f"</m{i}.js?size=300000>; rel=preload" for i in range(6)]
        ev = self.fetch(page(*links, size=10), flags=["--max-concurrent", "2"])
        promised = {p["promised"] for p in events_of(ev, "push_promise")}
        self.assertEqual(len(promised), 6)
        open_now, most = set(), 0
        for e in ev:
            if e["ev"] == "headers" and e["stream"] in promised:
                open_now.add(e["stream"])
                most = max(most, len(open_now))
            elif e["ev"] == "close" and e["stream"] in promised:
                self.assertEqual((e["status"], e["bytes"], e["error_code"]), (200, 300000, 0))
                open_now.discard(e["stream"])
        self.assertEqual(most, 2, "at most 2 pushed streams open at once")

    def test_never_push_from_a_pushed_response(self):
        child = "/child?link=" + quote("</grand.css>; rel=preload", safe="")
        ev = self.fetch(page(f"<{child}>; rel=preload"))
        self.assertEqual([pseudo(p, ":path") for p in events_of(ev, "push_promise")], [child])

    def test_pushed_request_as_the_upstream_sees_it(self):
        self.fetch(page("</seen.png?tag=pushed-req>; rel=preload; as=image"),
                   flags=["-H", "user-agent: ua-test", "-H", "accept-language: fr",
                          "-H", "accept-encoding: gzip", "-H", "cookie: secret=1",
                          "-H", "authorization: Bearer x", "-H", "x-http2-push: 1"])
        r = self.upstream.wait_for_request(lambda r: "tag=pushed-req" in r["target"])
        fields = {n.lower(): v for n, v in r["headers"]}
        self.assertEqual(r["method"], "GET")
        self.assertEqual(fields["x-http2-push"], "1")
        self.assertTrue(fields["accept"].startswith("image/"))
        self.assertEqual(fields["user-agent"], "ua-test")
        self.assertEqual(fields["accept-language"], "fr")
        self.assertEqual(fields["accept-encoding"], "gzip")
        self.assertNotIn("cookie", fields)
        self.assertNotIn("authorization", fields)
        parent = self.upstream.wait_for_request(lambda r: r["target"].startswith("/page") and
                                                "pushed-req" in r["target"])
        self.assertNotIn("x-http2-push", [n.lower() for n, _ in parent["headers"]],
                         "a client-supplied X-Http2-Push never reaches the upstream")

    def test_push_copy_cookies(self):
        self.fetch(page("</seen.css?tag=pushed-cookie>; rel=preload"),
                   flags=["-H", "cookie: s=1"], proxy_flags=["--push-copy-cookies"])
        r = self.upstream.wait_for_request(lambda r: "tag=pushed-cookie" in r["target"])
        self.assertEqual({n.lower(): v for n, v in r["headers"]}.get("cookie"), "s=1")

    def test_upstream_failure_on_a_pushed_fetch_resets_only_that_stream(self):
        ev = self.fetch(page("</bad?size=100000&reset_after=10>; rel=preload",
                             "</good.css?size=10>; rel=preload"))
        closes = {e["stream"]: e for e in events_of(ev, "close")}
        promised = {pseudo(p, ":path"): p["promised"] for p in events_of(ev, "push_promise")}
        self.assertNotEqual(closes[promised["/bad?size=100000&reset_after=10"]]["error_code"], 0)
        self.assertEqual(closes[promised["/good.css?size=10"]]["error_code"], 0)
        self.assertEqual((closes[1]["status"], closes[1]["error_code"]), (200, 0))


class Demo(unittest.TestCase):
    def test_demo_page_shows_pushes_with_nghttp(self):
        with Pushgate(None, "--demo") as pg:
            p = run(["nghttp", "-nv", pg.url("/")])
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(out.count("recv PUSH_PROMISE frame"), 3, out)
        for path in ("/demo/style.css", "/demo/app.js", "/demo/logo.svg"):
            self.assertIn(f":path: {path}", out)


if __name__ == "__main__":
    main()
