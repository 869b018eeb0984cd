"""The deployment surface, checked offline against the built binary: the systemd units
(systemd-analyze verify and security), the Containerfile (stages, user, probe, and its runtime
packages against the binary's NEEDED libraries), the Kubernetes manifests (parse, required
fields, ports and probe paths against the flags they pass, selectors), what `meson install`
installs, the man page against `pushgate --help`, every flag any of them passes against the
flags --help lists, and each deployment's command line through `pushgate --check`.
"""
import glob
import json
import math
import os
import re
import shlex
import shutil
import tempfile
import unittest

import yaml

from harness import BUILD_ROOT, PUSHGATE, SOURCE_ROOT, make_cert, require_tool, run, main

DEPLOY = os.path.join(SOURCE_ROOT, "deploy")
SYSTEMD = os.path.join(DEPLOY, "systemd")
SERVICE = os.path.join(SYSTEMD, "pushgate.service")
SOCKET = os.path.join(SYSTEMD, "pushgate.socket")
ENV_FILE = os.path.join(SYSTEMD, "pushgate.default")
CONTAINERFILE = os.path.join(DEPLOY, "container", "Containerfile")
KUBERNETES = os.path.join(DEPLOY, "kubernetes")
MAN_PAGE = os.path.join(BUILD_ROOT, "pushgate.1")

# Defaults of the flags whose values the checks below compare (docs/operations.md).
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 10000
DEFAULT_UPSTREAM_MAX_CONNECTIONS = 256
# Stands in for the deployments' upstreams (backend:8080, upstream:8080) when --check runs
# here: those names resolve only where the deployments run.
LOCAL_UPSTREAM = "http://127.0.0.1:9"
LOOPBACK_REACHABLE = {"*", "0.0.0.0", "127.0.0.1", "localhost"}
# Runtime packages that are not a NEEDED library, each with the reason it is there.
CONTAINER_EXTRA_PACKAGES = {"curl": "the HEALTHCHECK probe"}
# NEEDED libraries whose package every Debian base image holds.
BASE_IMAGE_PACKAGES = {"libc6": "the C library"}


# ---------------------------------------------------------------------------------------------
# What the binary says about itself

_help_cache = {}


def help_text():
    if "text" not in _help_cache:
        p = run([PUSHGATE, "--help"])
        assert p.returncode == 0, p.stderr
        _help_cache["text"] = p.stdout.decode()
    return _help_cache["text"]


def help_options():
    """{flag: takes_a_value} for every option line of --help ("    -l, --listen HOST:PORT")."""
    options = {}
    for line in help_text().splitlines():
        if not re.match(r"^ {4}-", line):
            continue
        for piece in line.strip().split(", "):
            m = re.match(r"^(--?[A-Za-z0-9][\w-]*)(?:[ =](\S+))?$", piece)
            if m:
                options[m.group(1)] = m.group(2) is not None
    return options


def long_flags(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", text))


def help_sections():
    return [l for l in help_text().splitlines() if re.match(r"^[A-Z][A-Z ]*[A-Z]$", l)]


def build_options():
    """The build's meson options (b_sanitize, allocator, ...) from meson-info."""
    path = os.path.join(BUILD_ROOT, "meson-info", "intro-buildoptions.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {o["name"]: o["value"] for o in json.load(f)}


# ---------------------------------------------------------------------------------------------
# Command lines, durations, addresses

def parse_args(args):
    """A pushgate command line as [(flag, value or None)], for --flag=value and --flag value.
    A flag --help does not list takes the next word as its value unless that is another flag
    (test_flags_are_known reports such flags)."""
    known = help_options()
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            out.append((None, a))
            i += 1
            continue
        if a.startswith("--") and "=" in a:
            out.append(tuple(a.split("=", 1)))
            i += 1
            continue
        takes = known.get(a)
        if takes is None:
            takes = i + 1 < len(args) and (args[i + 1] == "-" or not args[i + 1].startswith("-"))
        if takes:
            out.append((a, args[i + 1] if i + 1 < len(args) else None))
            i += 2
        else:
            out.append((a, None))
            i += 1
    return out


def values(parsed, *names):
    return [v for f, v in parsed if f in names]


def value(parsed, *names, default=None):
    found = values(parsed, *names)
    return found[-1] if found else default


def duration_seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


def host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def shutdown_timeout(parsed):
    t = value(parsed, "--shutdown-timeout")
    return duration_seconds(t) if t else DEFAULT_SHUTDOWN_TIMEOUT


# ---------------------------------------------------------------------------------------------
# systemd units and the environment file

def read_unit(path):
    """{section: [(key, value)]}: unit files repeat keys, so no dict per section."""
    sections = {}
    current = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                current = sections.setdefault(line.strip("[]"), [])
                continue
            key, _, val = line.partition("=")
            current.append((key.strip(), val.strip()))
    return sections


def unit_values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def unit_value(unit, section, key):
    found = unit_values(unit, section, key)
    return found[-1] if found else None


def env_file_opts():
    """PUSHGATE_OPTS as systemd would pass it: the file read with shell quoting rules (systemd's
    EnvironmentFile= follows them, line continuations included; no globbing), the value then
    split at whitespace respecting quotes (what `$PUSHGATE_OPTS` in ExecStart does)."""
    p = run(["sh", "-c", 'set -f; . "$1"; printf %s "$PUSHGATE_OPTS"', "sh", ENV_FILE])
    assert p.returncode == 0, p.stderr
    return shlex.split(p.stdout.decode())


def systemd_seconds(text):
    total = 0.0
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "": 1}
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text):
        total += float(number) * units[unit]
    return total


# ---------------------------------------------------------------------------------------------
# The Containerfile

def containerfile_stages():
    """[{'from': image, 'name': alias, 'instructions': [(INSTRUCTION, argument)]}]."""
    with open(CONTAINERFILE) as f:
        text = f.read()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, arg = line.partition(" ")
        word = word.upper()
        arg = arg.strip()
        if word == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", arg, re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "instructions": []})
        else:
            stages[-1]["instructions"].append((word, arg))
    return stages


def exec_form(arg):
    return json.loads(arg) if arg.startswith("[") else shlex.split(arg)


def apt_packages(stage):
    pkgs = []
    for word, arg in stage["instructions"]:
        if word != "RUN":
            continue
        for m in re.finditer(r"apt-get install ((?:\s*[-\w.+=]+)+)", arg):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def instruction(stage, name):
    found = [a for w, a in stage["instructions"] if w == name]
    return found[-1] if found else None


def container_command(stage):
    return exec_form(instruction(stage, "ENTRYPOINT") or "[]") + \
        exec_form(instruction(stage, "CMD") or "[]")


# ---------------------------------------------------------------------------------------------
# Kubernetes

def k8s_documents():
    docs = []
    for path in sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((os.path.basename(path), doc))
    return docs


def k8s_objects(kind):
    return [d for _, d in k8s_documents() if d.get("kind") == kind]


def one(kind):
    found = k8s_objects(kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pushgate_container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == "pushgate"]
    assert found, "no container named pushgate"
    return found[0]


def container_args(container):
    return parse_args(list(container.get("command", [])[1:]) + list(container.get("args", [])))


def resolve_port(container, port):
    """A probe's or a Service's target port (name or number) as the container port number."""
    for p in container.get("ports", []):
        if port in (p.get("name"), p["containerPort"]):
            return p["containerPort"]
    raise AssertionError(f"port {port!r} names no port of container {container['name']}")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def cpu_cores(text):
    text = str(text)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


# ---------------------------------------------------------------------------------------------

class SystemdUnits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.service = read_unit(SERVICE)
        cls.socket = read_unit(SOCKET)
        cls.opts = parse_args(env_file_opts())

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pg-deploy-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def copies(self):
        """The units in a temporary directory, pointed at the built binary (verify insists that
        every Exec path exists) and at a copy of the environment file."""
        env = os.path.join(self.dir, "pushgate.default")
        shutil.copy(ENV_FILE, env)
        paths = []
        for src in (SERVICE, SOCKET):
            with open(src) as f:
                text = f.read()
            text = text.replace("/usr/bin/pushgate", os.path.abspath(PUSHGATE))
            text = text.replace("EnvironmentFile=/etc/default/pushgate", "EnvironmentFile=" + env)
            dst = os.path.join(self.dir, os.path.basename(src))
            with open(dst, "w") as f:
                f.write(text)
            paths.append(dst)
        return paths

    def analyze(self, *args):
        require_tool(self, "systemd-analyze", "systemd")
        env = dict(os.environ)
        if os.path.exists(MAN_PAGE) and shutil.which("man"):
            # Documentation=man:pushgate(1) must find the generated page.
            os.makedirs(os.path.join(self.dir, "man", "man1"), exist_ok=True)
            shutil.copy(MAN_PAGE, os.path.join(self.dir, "man", "man1"))
            env["MANPATH"] = os.path.join(self.dir, "man")
            man = []
        else:
            man = ["--man=no"]  # ManPage.test_exists reports a missing page
        return run(["systemd-analyze", *args[:1], *man, *args[1:]], env=env, cwd=self.dir)

    def test_verify(self):
        """systemd-analyze verify exits 0 even for unknown keys or unparsable values, which it
        only prints: any output is a failure too."""
        p = self.analyze("verify", *self.copies())
        out = (p.stdout + p.stderr).decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(out.strip(), "", out)

    def test_security_exposure(self):
        service = self.copies()[0]
        p = self.analyze("security", "--offline=yes", "--threshold=25", service)
        self.assertEqual(p.returncode, 0, p.stdout.decode()[-3000:] + p.stderr.decode())

    def test_service_settings(self):
        s = lambda key: unit_value(self.service, "Service", key)
        self.assertEqual(s("Type"), "notify")
        # The upgraded process, a child of the old one, reports READY=1 and MAINPID=.
        self.assertEqual(s("NotifyAccess"), "all")
        self.assertTrue(s("DynamicUser") == "yes" or s("User") not in (None, "", "root", "0"))
        self.assertEqual(s("AmbientCapabilities"), "CAP_NET_BIND_SERVICE")
        self.assertEqual(s("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE")
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("KillSignal", "SIGTERM")):
            self.assertEqual(s(key), want, key)
        self.assertEqual(s("EnvironmentFile"), "/etc/default/pushgate")
        start = unit_values(self.service, "Service", "ExecStart")
        self.assertEqual(len(start), 1)
        # $VAR is split into words; ${VAR} would be a single argument.
        self.assertEqual(start[0].split(), ["/usr/bin/pushgate", "$PUSHGATE_OPTS"])
        reload = unit_values(self.service, "Service", "ExecReload")
        self.assertEqual(reload[-1].split()[1:], ["-HUP", "$MAINPID"])
        self.assertTrue(reload[-1].split()[0].endswith("/kill"), reload[-1])
        # Logs go to the journal: nothing redirects stderr elsewhere.
        self.assertIn(s("StandardError"), (None, "journal", "inherit"))

    def test_stop_timeout_covers_the_drain(self):
        drain = shutdown_timeout(self.opts)
        stop = systemd_seconds(unit_value(self.service, "Service", "TimeoutStopSec"))
        self.assertGreater(stop, drain, "TimeoutStopSec must exceed --shutdown-timeout")

    def test_descriptor_limit(self):
        limit = int(unit_value(self.service, "Service", "LimitNOFILE").split(":")[-1])
        workers = int(value(self.opts, "--workers", default="1"))
        need = int(value(self.opts, "--max-connections", default=str(DEFAULT_MAX_CONNECTIONS))) + \
            workers * int(value(self.opts, "--upstream-max-connections",
                                default=str(DEFAULT_UPSTREAM_MAX_CONNECTIONS)))
        self.assertGreater(limit, need + 1024, "LimitNOFILE below client + upstream connections")

    def test_written_paths_are_writable_under_protect_system_strict(self):
        """ProtectSystem=strict leaves only the unit's own directories writable."""
        log = value(self.opts, "--access-log")
        if log in (None, "-"):
            return
        logs_dirs = unit_values(self.service, "Service", "LogsDirectory")
        self.assertTrue(logs_dirs, "--access-log to a file needs LogsDirectory=")
        allowed = ["/var/log/" + d for d in " ".join(logs_dirs).split()]
        self.assertIn(os.path.dirname(log), allowed)

    def test_socket_unit(self):
        listen = unit_values(self.socket, "Socket", "ListenStream")
        self.assertTrue(listen, "no ListenStream")
        self.assertEqual(unit_value(self.socket, "Socket", "Service"), "pushgate.service")
        self.assertEqual(unit_value(self.socket, "Install", "WantedBy"), "sockets.target")
        # The socket serves what the environment file would have pushgate bind itself.
        ports = {host_port(v)[1] for v in values(self.opts, "--listen", "-l")}
        self.assertEqual({int(l.rpartition(":")[2]) for l in listen}, ports)

    def test_environment_file_passes_check(self):
        """The example's flags, with a real certificate at its paths, pass `pushgate --check`."""
        args = substitute_for_check(env_file_opts(), self.dir)
        p = run([PUSHGATE, "--check", *args])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("pushgate: configuration OK", (p.stdout + p.stderr).decode())


def substitute_for_check(args, directory):
    """The deployment's arguments with what only exists where it runs replaced: a certificate
    made here, a resolvable upstream, the access log in a temporary directory."""
    cert, key = make_cert(directory, "deploy")
    out = []
    for flag, val in parse_args(args):
        if flag == "--tls-cert":
            val = cert
        elif flag == "--tls-key":
            val = key
        elif flag in ("--upstream", "-u"):
            val = LOCAL_UPSTREAM
        elif flag == "--access-log" and val != "-":
            val = os.path.join(directory, "access.log")
        out += [w for w in (flag, val) if w is not None]
    return out


class Container(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = containerfile_stages()
        cls.runtime = cls.stages[-1]
        cls.command = container_command(cls.runtime)
        cls.args = parse_args(cls.command[1:])

    def test_stages(self):
        self.assertGreaterEqual(len(self.stages), 2, "not multi-stage")
        for stage in self.stages:
            self.assertRegex(stage["from"], r"^debian:bookworm(-slim)?$")
        build = self.stages[0]
        self.assertTrue(build["name"], "the build stage needs a name for COPY --from")
        copies = [a for w, a in self.runtime["instructions"] if w == "COPY"]
        self.assertTrue(any(f"--from={build['name']}" in c for c in copies))
        runs = " ".join(a for w, a in build["instructions"] if w == "RUN")
        self.assertIn("meson setup", runs)
        self.assertIn("ninja", runs)
        # The runtime stage compiles nothing.
        self.assertFalse([p for p in apt_packages(self.runtime) if p.endswith("-dev")])

    def test_build_stage_has_the_build_packages_of_dev_sh(self):
        with open(os.path.join(DEPLOY, "dev.sh")) as f:
            m = re.search(r"PACKAGES=\(([^)]*)\)", f.read())
        dev = m.group(1).split()
        needed = {p for p in dev if p.endswith("-dev") and not p.startswith("libclang")}
        needed |= {"build-essential", "meson", "ninja-build", "pkg-config"}
        with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
            if "help2man" in f.read():
                needed.add("help2man")
        missing = needed - set(apt_packages(self.stages[0]))
        self.assertFalse(missing, f"the build stage lacks {sorted(missing)}")

    def test_user_is_not_root(self):
        user = instruction(self.runtime, "USER")
        self.assertIsNotNone(user, "no USER: the image would run as root")
        uid = user.split(":")[0]
        self.assertNotIn(uid, ("root", "0"))
        # Numeric, so Kubernetes' runAsNonRoot can check it; the same id as the Deployment.
        self.assertTrue(uid.isdigit(), user)
        pod = one("Deployment")["spec"]["template"]["spec"]["securityContext"]
        self.assertEqual(int(uid), pod["runAsUser"])

    def test_stop_signal(self):
        self.assertEqual(instruction(self.runtime, "STOPSIGNAL"), "SIGTERM")

    def test_entrypoint_is_the_installed_binary(self):
        binary = self.command[0]
        copies = [a.split() for w, a in self.runtime["instructions"] if w == "COPY"]
        self.assertIn(binary, [c[-1] for c in copies])
        self.assertEqual(binary, pushgate_container(one("Deployment"))["command"][0])

    def test_healthcheck_probes_the_metrics_listener(self):
        hc = instruction(self.runtime, "HEALTHCHECK")
        self.assertIsNotNone(hc, "no HEALTHCHECK")
        m = re.search(r"\bCMD\s+(.*)$", hc)
        probe = exec_form(m.group(1))
        self.assertIn(probe[0], CONTAINER_EXTRA_PACKAGES)
        self.assertIn(probe[0], apt_packages(self.runtime), "the probe program is not installed")
        url = [a for a in probe if a.startswith("http://")]
        self.assertEqual(len(url), 1, probe)
        um = re.fullmatch(r"http://(127\.0\.0\.1|localhost|\[::1\]):(\d+)(/\S*)", url[0])
        self.assertTrue(um, url[0])
        self.assertEqual(um.group(3), "/healthz")
        self.assertIn("-f", " ".join(probe), "the probe must fail on an HTTP error status")
        metrics = value(self.args, "--metrics-listen")
        self.assertIsNotNone(metrics, "the probe needs --metrics-listen in ENTRYPOINT or CMD")
        # In ENTRYPOINT, so that replacing CMD cannot drop what the probe relies on.
        self.assertIn("--metrics-listen", exec_form(instruction(self.runtime, "ENTRYPOINT")))
        host, port = host_port(metrics)
        self.assertEqual(int(um.group(2)), port)
        self.assertIn(host, LOOPBACK_REACHABLE)

    def test_exposed_ports_match_the_flags(self):
        exposed = {int(p.split("/")[0]) for p in instruction(self.runtime, "EXPOSE").split()}
        listen = {host_port(v)[1] for v in values(self.args, "--listen", "-l")}
        metrics = host_port(value(self.args, "--metrics-listen"))[1]
        self.assertEqual(exposed, listen | {metrics})
        # USER is not root and no capability is granted: nothing below 1024.
        self.assertTrue(all(p >= 1024 for p in exposed), exposed)

    def test_stop_timeout_note_covers_the_drain(self):
        with open(CONTAINERFILE) as f:
            m = re.search(r"--stop-timeout (\d+)", f.read())
        self.assertTrue(m, "the run example must raise the engine's 10 s stop timeout")
        self.assertGreater(int(m.group(1)), shutdown_timeout(self.args))

    def test_runtime_packages_are_the_needed_libraries(self):
        """Each NEEDED library of the built binary comes from a runtime package (or from the
        base image: Priority required), and each runtime package provides one of them."""
        opts = build_options()
        if opts.get("b_sanitize", "none") != "none" or opts.get("allocator") == "system":
            self.skipTest("this build's libraries differ from the image's (sanitizers or "
                          "-Dallocator=system); the plain build checks them")
        require_tool(self, "dpkg", "dpkg")
        p = run(["objdump", "-p", PUSHGATE])
        self.assertEqual(p.returncode, 0, p.stderr)
        needed = re.findall(r"^\s*NEEDED\s+(\S+)", p.stdout.decode(), re.M)
        self.assertTrue(needed)
        # Where the loader finds each one, to tell the native package from e.g. libc6-i386.
        resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", PUSHGATE]).stdout.decode(),
                                   re.M))
        listed = set(apt_packages(self.runtime))
        used = set()
        for soname in needed:
            q = run(["dpkg", "-S", "*/" + soname])
            self.assertEqual(q.returncode, 0, f"no package ships {soname}")
            libdir = os.path.basename(os.path.dirname(resolved.get(soname, "")))
            pkgs = set()
            for line in q.stdout.decode().splitlines():
                pkg, _, path = line.partition(": ")
                if not libdir or os.path.basename(os.path.dirname(path)) == libdir:
                    pkgs.add(pkg.split(":")[0])
            self.assertTrue(pkgs, f"no package ships {soname} in {libdir}")
            if pkgs & listed:
                used |= pkgs & listed
            else:
                self.assertTrue(pkgs & set(BASE_IMAGE_PACKAGES), f"{soname} (package "
                                f"{', '.join(sorted(pkgs))}) is missing from the runtime stage")
        unused = listed - used - set(CONTAINER_EXTRA_PACKAGES)
        self.assertFalse(unused, f"runtime packages no NEEDED library comes from: {sorted(unused)}")

    def test_container_command_passes_check(self):
        with tempfile.TemporaryDirectory(prefix="pg-deploy-") as d:
            p = run([PUSHGATE, "--check", *substitute_for_check(self.command[1:], d)])
        self.assertEqual(p.returncode, 0, p.stderr.decode())


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deployment = one("Deployment")
        cls.pod = cls.deployment["spec"]["template"]
        cls.container = pushgate_container(cls.deployment)
        cls.args = container_args(cls.container)
        cls.hpa = one("HorizontalPodAutoscaler")

    def test_every_document_parses_and_is_complete(self):
        docs = k8s_documents()
        self.assertTrue(docs)
        kinds = {}
        for name, doc in docs:
            for key in ("apiVersion", "kind"):
                self.assertIn(key, doc, name)
            if doc["kind"] != "Kustomization":
                self.assertTrue(doc.get("metadata", {}).get("name"), name)
            kinds[doc["kind"]] = doc["apiVersion"]
        self.assertEqual(kinds.get("Deployment"), "apps/v1")
        self.assertEqual(kinds.get("Service"), "v1")
        self.assertEqual(kinds.get("PodDisruptionBudget"), "policy/v1")
        self.assertEqual(kinds.get("HorizontalPodAutoscaler"), "autoscaling/v2")

    def test_kustomization_lists_every_manifest(self):
        path = os.path.join(KUBERNETES, "kustomization.yaml")
        if not os.path.exists(path):
            return
        with open(path) as f:
            resources = set(yaml.safe_load(f)["resources"])
        files = {os.path.basename(p) for p in glob.glob(os.path.join(KUBERNETES, "*.yaml"))}
        self.assertEqual(resources, files - {"kustomization.yaml"})

    def test_replicas_and_selector(self):
        self.assertGreaterEqual(self.deployment["spec"]["replicas"], 2)
        self.assertTrue(selects(self.deployment["spec"]["selector"]["matchLabels"],
                                self.pod["metadata"]["labels"]))

    def test_ports_agree_with_the_flags(self):
        listen = values(self.args, "--listen", "-l")
        self.assertTrue(listen, "no --listen")
        https = resolve_port(self.container, "https")
        self.assertEqual({host_port(l)[1] for l in listen}, {https})
        # All interfaces: the Service reaches the pod's IP, not its loopback.
        self.assertTrue(all(host_port(l)[0] in ("*", "0.0.0.0", "::") for l in listen), listen)
        host, port = host_port(value(self.args, "--metrics-listen"))
        self.assertEqual(resolve_port(self.container, "metrics"), port)
        self.assertNotIn(host, ("127.0.0.1", "localhost", "::1"),
                         "the kubelet probes and Prometheus scrapes the pod's IP")
        # capabilities drop ALL: no port below 1024 can be bound.
        self.assertGreaterEqual(https, 1024)
        self.assertGreaterEqual(port, 1024)
        annotations = self.pod["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:
            self.assertEqual(int(annotations["prometheus.io/port"]), port)

    def test_probes(self):
        metrics = host_port(value(self.args, "--metrics-listen"))[1]
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                            ("startupProbe", "/healthz")):
            if probe == "startupProbe" and probe not in self.container:
                continue
            get = self.container[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertEqual(resolve_port(self.container, get["port"]), metrics, probe)
            self.assertIn(get.get("scheme", "HTTP"), ("HTTP",), "the metrics listener is plain")

    def test_grace_period_covers_prestop_and_drain(self):
        pre = 0.0
        hook = self.container.get("lifecycle", {}).get("preStop")
        if hook:
            if "sleep" in hook:
                pre = float(hook["sleep"]["seconds"])
            else:
                cmd = hook["exec"]["command"]
                self.assertTrue(cmd[0].endswith("sleep"), cmd)
                pre = duration_seconds(cmd[1])
        grace = self.pod["spec"]["terminationGracePeriodSeconds"]
        self.assertGreater(grace, pre + shutdown_timeout(self.args))

    def test_certificate_from_a_read_only_secret(self):
        volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        for flag, key in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")):
            path = value(self.args, flag)
            self.assertIsNotNone(path, flag)
            mounts = [m for m in self.container["volumeMounts"]
                      if path.startswith(m["mountPath"].rstrip("/") + "/")]
            self.assertEqual(len(mounts), 1, f"{flag} {path} is on no single volume mount")
            mount = mounts[0]
            self.assertTrue(mount.get("readOnly"), mount)
            self.assertNotIn("subPath", mount, "a subPath mount never sees a renewed Secret")
            secret = volumes[mount["name"]].get("secret")
            self.assertIsNotNone(secret, f"{flag} is not on a Secret volume")
            # A kubernetes.io/tls Secret's keys are tls.crt and tls.key; with items, only the
            # listed keys appear, under the listed paths.
            file = path[len(mount["mountPath"].rstrip("/")) + 1:]
            if "items" in secret:
                items = {i["path"]: i["key"] for i in secret["items"]}
                self.assertEqual(items.get(file), key, f"{flag} {path}")
            else:
                self.assertEqual(file, key, f"{flag} {path}")

    def test_resources(self):
        res = self.container["resources"]
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                self.assertIn(r, res.get(kind, {}), f"{kind}.{r}")
        self.assertLessEqual(cpu_cores(res["requests"]["cpu"]), cpu_cores(res["limits"]["cpu"]))
        # More event loops than CPUs only contend for them.
        workers = int(value(self.args, "--workers", default="1"))
        self.assertLessEqual(workers, math.ceil(cpu_cores(res["limits"]["cpu"])))

    def test_security_context(self):
        pod = self.pod["spec"].get("securityContext", {})
        ctr = self.container["securityContext"]
        self.assertTrue(ctr.get("runAsNonRoot", pod.get("runAsNonRoot")))
        self.assertNotEqual(ctr.get("runAsUser", pod.get("runAsUser")), 0)
        self.assertTrue(ctr["readOnlyRootFilesystem"])
        self.assertFalse(ctr["allowPrivilegeEscalation"])
        self.assertIn("ALL", ctr["capabilities"]["drop"])
        self.assertFalse(ctr["capabilities"].get("add"))
        # A read-only root: the access log must go to stdout or to a writable volume.
        log = value(self.args, "--access-log")
        if log not in (None, "-"):
            writable = [m["mountPath"] for m in self.container.get("volumeMounts", [])
                        if not m.get("readOnly")]
            self.assertTrue(any(log.startswith(w.rstrip("/") + "/") for w in writable), log)

    def test_services_target_the_container(self):
        services = k8s_objects("Service")
        self.assertTrue(services)
        labels = self.pod["metadata"]["labels"]
        targets = {}
        for svc in services:
            self.assertTrue(selects(svc["spec"]["selector"], labels), svc["metadata"]["name"])
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                targets[port.get("name")] = resolve_port(self.container, target)
        self.assertEqual(targets.get("https"), resolve_port(self.container, "https"))
        self.assertEqual(targets.get("metrics"),
                         host_port(value(self.args, "--metrics-listen"))[1])
        # The metrics listener is plain HTTP for operators: never on a public load balancer.
        for svc in services:
            if any(p.get("name") == "metrics" for p in svc["spec"]["ports"]):
                self.assertIn(svc["spec"].get("type", "ClusterIP"), ("ClusterIP",),
                              svc["metadata"]["name"])

    def test_disruption_budget(self):
        pdb = one("PodDisruptionBudget")
        self.assertTrue(selects(pdb["spec"]["selector"]["matchLabels"],
                                self.pod["metadata"]["labels"]))
        # It must let at least one replica go at the smallest scale, or a node drain blocks.
        smallest = self.hpa["spec"].get("minReplicas", 1)
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            self.assertGreaterEqual(int(str(spec["maxUnavailable"]).rstrip("%")), 1)
        else:
            self.assertLess(int(spec["minAvailable"]), smallest)

    def test_autoscaler(self):
        spec = self.hpa["spec"]
        ref = spec["scaleTargetRef"]
        self.assertEqual((ref["apiVersion"], ref["kind"], ref["name"]),
                         ("apps/v1", "Deployment", self.deployment["metadata"]["name"]))
        self.assertGreaterEqual(spec["minReplicas"], 2)
        self.assertGreaterEqual(spec["maxReplicas"], spec["minReplicas"])
        cpu = [m for m in spec["metrics"]
               if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
        self.assertTrue(cpu, "no CPU metric")
        self.assertEqual(cpu[0]["resource"]["target"]["type"], "Utilization")
        # Utilization is relative to the request: without one the HPA cannot act.
        self.assertIn("cpu", self.container["resources"]["requests"])

    def test_deployment_passes_check(self):
        args = list(self.container.get("command", [])[1:]) + list(self.container["args"])
        with tempfile.TemporaryDirectory(prefix="pg-deploy-") as d:
            p = run([PUSHGATE, "--check", *substitute_for_check(args, d)])
        self.assertEqual(p.returncode, 0, p.stderr.decode())


class Flags(unittest.TestCase):
    def test_flags_are_known(self):
        """Every flag a deployment file passes is one `pushgate --help` documents."""
        known = set(help_options())
        used = {}
        sources = {
            "deploy/systemd/pushgate.default": env_file_opts(),
            "deploy/container/Containerfile": container_command(containerfile_stages()[-1])[1:],
        }
        c = pushgate_container(one("Deployment"))
        sources["deploy/kubernetes/deployment.yaml"] = list(c.get("command", [])[1:]) + c["args"]
        service = read_unit(SERVICE)
        for key in ("ExecStart", "ExecReload"):
            for line in unit_values(service, "Service", key):
                words = line.split()
                if words[0].endswith("/pushgate"):
                    sources[f"deploy/systemd/pushgate.service {key}"] = \
                        [w for w in words[1:] if not w.startswith("$")]
        for source, args in sources.items():
            for flag, _ in parse_args(args):
                if flag is not None and flag not in known:
                    used.setdefault(flag, []).append(source)
        if used:
            self.fail("flags pushgate --help does not list: " +
                      "; ".join(f"{f} ({', '.join(s)})" for f, s in sorted(used.items())))


class Install(unittest.TestCase):
    """What `meson install` puts where (meson-info/intro-installed.json, no install needed)."""

    def test_binary_man_page_and_units(self):
        path = os.path.join(BUILD_ROOT, "meson-info", "intro-installed.json")
        if not os.path.exists(path):
            self.skipTest("no meson-info in the build directory")
        with open(path) as f:
            installed = {os.path.basename(src): dst for src, dst in json.load(f).items()}
        binary = installed.get("pushgate")
        self.assertTrue(binary and binary.endswith("/bin/pushgate"), binary)
        if os.path.exists(MAN_PAGE):
            self.assertRegex(installed.get("pushgate.1", ""), r"/man/man1/pushgate\.1$")
        for unit in ("pushgate.service", "pushgate.socket"):
            self.assertRegex(installed.get(unit, ""), r"/lib/systemd/system/" + re.escape(unit))
        # The installed service starts the installed binary.
        service = read_unit(os.path.join(BUILD_ROOT, "pushgate.service"))
        for key in ("ExecStart", "ExecReload"):
            for line in unit_values(service, "Service", key):
                if "pushgate" in line.split()[0]:
                    self.assertEqual(line.split()[0], binary, key)


class ManPage(unittest.TestCase):
    def read(self):
        if not os.path.exists(MAN_PAGE):
            self.fail(f"no pushgate.1 in the build directory: was help2man installed when "
                      f"meson setup ran? (Debian package help2man)")
        with open(MAN_PAGE) as f:
            return f.read()

    @staticmethod
    def plain(roff):
        text = re.sub(r"\\f[BIRP]|\\f\(\w\w", "", roff)
        text = text.replace("\\-", "-").replace("\\(co", "(c)").replace("\\&", "")
        return re.sub(r"\\(.)", r"\1", text)

    def test_exists(self):
        self.assertTrue(self.read().startswith('.\\" DO NOT MODIFY THIS FILE!'))

    def test_names_every_long_flag_of_help(self):
        man = long_flags(self.plain(self.read()))
        helped = long_flags(help_text())
        self.assertFalse(helped - man, f"--help has flags the man page lacks: {helped - man}")
        self.assertFalse(man - helped, f"the man page has flags --help lacks: {man - helped}")

    def test_sections_follow_help(self):
        roff = self.read()
        sh = [s.strip('"') for s in re.findall(r"^\.SH (.*)$", roff, re.M)]
        for section in help_sections():
            self.assertIn(section, sh)
        # NAME: the man page's one-line description is --help's.
        m = re.search(r"^NAME\n((?: {4}.*\n)+)", help_text(), re.M)
        name = " ".join(m.group(1).split())
        man_name = re.search(r"^\.SH NAME\n(.*?)\n\.SH", roff, re.M | re.S).group(1)
        self.assertEqual(" ".join(self.plain(man_name).split()), name)

    def test_version(self):
        p = run([PUSHGATE, "--version"])
        version = p.stdout.decode().split()[1]
        th = re.search(r'^\.TH PUSHGATE "1" "[^"]*" "pushgate ([^"]+)"', self.read(), re.M)
        self.assertTrue(th, "no .TH line naming the version")
        self.assertEqual(th.group(1), version)

    def test_renders_without_warnings(self):
        require_tool(self, "groff", "groff-base")
        p = run(["groff", "-man", "-ww", "-z", MAN_PAGE])
        self.assertEqual((p.returncode, p.stderr.decode()), (0, ""))


if __name__ == "__main__":
    main()
